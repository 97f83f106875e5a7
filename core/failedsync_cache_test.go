package core

import (
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// After a failed sync the pending entries never commit, so the durable
// generation never moves again; reads of uncached keys must still keep the
// committed part of the record cache within its budget (C1, D6). Found by
// review: an eviction pass that found only pending entries skipped every
// later one until the next commit, which never came.
func TestCacheStaysBoundedAfterAFailedSync_C1_D6(t *testing.T) {
	ctx := ctxT(t)
	budget := 4 * (entryOverhead + 24)
	s := storeWithAFailedBatch(t, budget, 8) // more pending bytes than the budget
	for i := range 5000 {
		if _, _, err := s.Get(ctx, "a", "absent"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pending := 0
	for k, e := range s.mu.mem {
		if e.gen > s.mu.durable {
			pending += entryCost(k, e)
		}
	}
	if committed := s.mu.memBytes - pending; committed > budget {
		t.Fatalf("committed entries take %d bytes (%d entries in all) after 5,000 reads, budget %d (C1)", committed, len(s.mu.mem), budget)
	}
}

// While the pending entries of a failed batch alone fill the budget, a
// read of an uncached key must not walk the whole record cache under the
// apply lock: each read installs one entry, and an eviction pass that
// evicted only it, having walked every pending entry, did not count as
// stuck, so the next read walked them all again (found by review: 10 ms a
// read with 200,000 pending entries). Passes are counted, not timed.
func TestReadsAfterAFailedBatchLargerThanTheCacheDoNotEachWalkIt_C1_D6(t *testing.T) {
	ctx := ctxT(t)
	s := storeWithAFailedBatch(t, 16<<10, 1000) // ~160 KB pending against 16 KiB
	s.mu.Lock()
	before := s.mu.evictPasses
	s.mu.Unlock()
	const reads = 2000
	for i := range reads {
		if _, _, err := s.Get(ctx, "a", "absent"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	passes := s.mu.evictPasses - before
	s.mu.Unlock()
	// A pass may look again once loads added a tenth of the budget
	// (~10 entries of ~150 B here): ~200 passes, not one per read.
	if passes > reads/4 {
		t.Fatalf("%d eviction passes over the whole cache for %d reads", passes, reads)
	}
}

// storeWithAFailedBatch opens a store with a record cache of budget bytes
// (and no ring) whose batch of n one-byte MSETs failed its sync (D6): the
// n entries stay in the cache for good.
func storeWithAFailedBatch(t *testing.T, budget, n int) *testStore {
	ctx := ctxT(t)
	fs := faultfs.New(vfs.NewMem())
	s := openStore(t, fs, "db", Config{Clock: newFakeClock(), CacheBytes: budget, RingBytes: -1})
	if _, err := s.CtrAdd(ctx, "a", "first", 1); err != nil {
		t.Fatal(err)
	}
	fs.HoldSyncs()
	var pairs []KeyValue
	for i := range n {
		pairs = append(pairs, KeyValue{ID: "p" + strconv.Itoa(i), Value: []byte("x")})
	}
	c := goCall(func() (any, error) { return s.MSet(ctx, "a", pairs, false) })
	<-fs.Held
	fs.FailSyncs()
	if r := recv(t, c); r.err == nil {
		t.Fatal("MSet acknowledged although its sync failed")
	}
	return s
}

// A value given as nil is an empty value, not an absent key, also while
// its entry is cached (found by review: KVSet and MSet kept it nil, which
// Get reads as "no key", until the entry was reloaded from Pebble).
func TestANilValueIsStoredAsAnEmptyOne(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	if _, err := s.KVSet(ctx, "a", "k", nil, KVSetOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.Get(ctx, "a", "k"); !ok || err != nil || len(v) != 0 {
		t.Fatalf("KVSet(nil) then Get = (%q, %v, %v), want an empty value", v, ok, err)
	}
	if _, err := s.MSet(ctx, "a", []KeyValue{{ID: "m"}}, false); err != nil {
		t.Fatal(err)
	}
	if vs, err := s.MGet(ctx, "a", []string{"m"}); err != nil || vs[0] == nil {
		t.Fatalf("MSet(nil) then MGet = %q, %v, want an empty value", vs, err)
	}
}
