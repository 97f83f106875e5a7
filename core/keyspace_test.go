package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// ksStore opens a Store on a temporary directory for the keyspace,
// strings and pipeline tests.
func ksStore(t *testing.T) *Store {
	t.Helper()
	db, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, Config{ReapInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		db.Close()
	})
	return s
}

var ksbg = context.Background()

func ksMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ksSet(t *testing.T, s *Store, acc, id, v string) {
	t.Helper()
	_, err := s.Set(ksbg, acc, id, []byte(v), SetOptions{})
	ksMust(t, err)
}

func TestMatchGlobFollowsRedis(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"*", "abc", true}, {"a*", "abc", true}, {"a*", "bac", false},
		{"*c", "abc", true}, {"a*c", "abbbc", true}, {"a*c", "abcd", false},
		{"h?llo", "hello", true}, {"h?llo", "hllo", false},
		{"h[ae]llo", "hallo", true}, {"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true}, {"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true}, {"h[a-b]llo", "hcllo", false}, {"h[b-a]llo", "hallo", true},
		{`h\*llo`, "h*llo", true}, {`h\*llo`, "hallo", false}, {`[\]]`, "]", true},
		{"**a**", "xxa", true}, {"user:*:name", "user:1:name", true}, {"user:*:name", "user:1:age", false},
		{"", "", true}, {"", "a", false}, {"a", "", false},
		// As Redis's stringmatchlen (KEYS * lists "" by a shortcut).
		{"*", "", false}, {"**", "", false}, {"a*", "a", true}, {"a**", "a", true},
		{"[a-]", "]", true}, {"[a-]", "a", true}, {"[a-]", "-", false}, {"h[a-]llo", "h-llo", false},
	} {
		if got := MatchGlob(tc.p, tc.s); got != tc.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

// A pipeline's writes do not start a commit until the pipeline waits:
// several commands share one fsync; a reader outside the pipeline that
// sees them starts the commit instead of waiting for the pipeline (D1).
func TestPipelineWritesShareOneCommitAndReadersDoNotHang_D1(t *testing.T) {
	s := ksStore(t)
	ctx, p := WithPipeline(ksbg)
	before := s.Stats().Commits.Load()
	var pend []Pending
	for range 8 {
		if _, err := s.IncrBy(ctx, "a", "n", 1); err != nil {
			t.Fatal(err)
		}
		pend = append(pend, p.Take())
	}
	s.mu.Lock()
	n, kicked, inflight := s.mu.open.n, s.mu.open.kicked, s.mu.inflight
	s.mu.Unlock()
	if n != 8 || kicked || inflight != nil || len(s.kick) != 0 {
		t.Fatalf("before the pipeline waited: open batch has %d writes, kicked %v, inflight %v, kick pending %d; want 8 writes, no commit started",
			n, kicked, inflight != nil, len(s.kick))
	}
	for _, w := range pend {
		ksMust(t, w.Wait(ksbg))
	}
	if got := s.Stats().Commits.Load() - before; got != 1 {
		t.Fatalf("8 pipelined writes took %d commits, want 1", got)
	}
	// A plain reader of a deferred write does not hang.
	if _, err := s.IncrBy(ctx, "a", "n", 1); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		v, _, err := s.Get(ksbg, "a", "n")
		if err == nil && string(v) != "9" {
			err = fmt.Errorf("GET = %q", v)
		}
		got <- err
	}()
	select {
	case err := <-got:
		ksMust(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a reader of a pipeline's write hung until the pipeline waited")
	}
	ksMust(t, p.Take().Wait(ksbg))
}

// Scan merges pending writes over Pebble in key order: keys written or
// deleted in a batch not yet synced are seen as they will be (D1: the
// reply then waits for that batch).
func TestScanMergesPendingWritesInKeyOrder_D1(t *testing.T) {
	s := ksStore(t)
	var want []string
	for i := range 20 {
		id := fmt.Sprintf("k%02d", i)
		ksSet(t, s, "a", id, "v")
		if i != 5 {
			want = append(want, id)
		}
	}
	ksSet(t, s, "b", "other-account", "v")
	// Pending (pipelined, not yet committed): delete k05, add k05a and k99.
	ctx, p := WithPipeline(ksbg)
	_, err := s.Del(ctx, "a", []string{"k05"})
	ksMust(t, err)
	ksSet(t, s, "a", "zz-durable", "v")
	_, err = s.Set(ctx, "a", "k05a", []byte("v"), SetOptions{})
	ksMust(t, err)
	_, err = s.Set(ctx, "a", "k99", []byte("v"), SetOptions{})
	ksMust(t, err)
	want = append(want, "k05a", "k99", "zz-durable")
	slices.Sort(want)

	var got []string
	opts := ScanOptions{Count: 3}
	for {
		ids, next, more, err := s.Scan(ksbg, "a", opts)
		ksMust(t, err)
		got = append(got, ids...)
		if !more {
			break
		}
		opts = ScanOptions{After: next, Resume: true, Count: 3}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Scan = %v\nwant   %v", got, want)
	}
	keys, err := s.Keys(ksbg, "a", "k0*")
	ksMust(t, err)
	if len(keys) != 10 || keys[5] != "k05a" || slices.Contains(keys, "k05") {
		t.Fatalf("Keys k0* = %v", keys)
	}
	// DBSIZE walks a view of Pebble without the apply lock, counting a
	// pending key by its pending state: a pending overwrite of a durable
	// key once, a pending delete not at all, a pending new key.
	_, err = s.Set(ctx, "a", "k00", []byte("again"), SetOptions{})
	ksMust(t, err)
	n, err := s.DBSize(ctx, "a")
	ksMust(t, err)
	if n != len(want) {
		t.Fatalf("DBSize over pending writes = %d, want %d", n, len(want))
	}
	ksMust(t, p.Take().Wait(ksbg))
	n, err = s.DBSize(ksbg, "a")
	ksMust(t, err)
	if n != len(want) {
		t.Fatalf("DBSize = %d, want %d", n, len(want))
	}
	ks, err := s.Keyspace(ksbg)
	ksMust(t, err)
	if len(ks) != 2 || ks[0] != (AccountKeys{"a", len(want), 0}) || ks[1].Keys != 1 {
		t.Fatalf("Keyspace = %+v", ks)
	}
	typed, _, _, err := s.Scan(ksbg, "a", ScanOptions{Count: 100, Type: "sequence"})
	ksMust(t, err)
	if len(typed) != 0 {
		t.Fatalf("Scan TYPE sequence = %v", typed)
	}
}

func TestExpireConditionsAndPastDeadlines_T1_D4(t *testing.T) {
	s := ksStore(t)
	ksSet(t, s, "a", "k", "v")
	in := func(ms int64) Expiry { return Expiry{Mode: ExpiryIn, Ms: ms} }
	for i, tc := range []struct {
		x    Expiry
		cond ExpireCond
		want bool
	}{
		{in(60000), ExpireIfTTL, false},
		{in(60000), ExpireIfNoTTL, true},
		{in(120000), ExpireIfNoTTL, false},
		{in(30000), ExpireIfGreater, false},
		{in(120000), ExpireIfGreater, true},
		{in(300000), ExpireIfLess, false},
		{in(90000), ExpireIfLess, true},
	} {
		done, err := s.Expire(ksbg, "a", "k", tc.x, tc.cond)
		ksMust(t, err)
		if done != tc.want {
			t.Fatalf("step %d: Expire = %v, want %v", i, done, tc.want)
		}
	}
	at, left, err := s.KeyExpiry(ksbg, "a", "k")
	ksMust(t, err)
	if left <= 89000 || left > 90000 || at <= 0 {
		t.Fatalf("KeyExpiry = %d, %d", at, left)
	}
	if done, _ := s.Persist(ksbg, "a", "k"); !done {
		t.Fatal("Persist with a TTL")
	}
	if at, left, _ := s.KeyExpiry(ksbg, "a", "k"); at != NoExpiry || left != NoExpiry {
		t.Fatalf("KeyExpiry after Persist = %d, %d", at, left)
	}
	if at, _, _ := s.KeyExpiry(ksbg, "a", "none"); at != NoSuchKey {
		t.Fatalf("KeyExpiry absent = %d", at)
	}
	// A deadline in the past deletes.
	done, err := s.Expire(ksbg, "a", "k", Expiry{Mode: ExpiryAt, Ms: 1}, ExpireAlways)
	ksMust(t, err)
	if n, _ := s.Exists(ksbg, "a", []string{"k"}); !done || n != 0 {
		t.Fatal("Expire in the past did not delete")
	}
	// A deadline of exactly 0 (PEXPIRE k -now) deletes too: 0 stored as
	// the deadline means "no expiry" and kept the key for ever.
	clock := newFakeClock()
	db, err := persist.Open(t.TempDir(), persist.Options{})
	ksMust(t, err)
	defer db.Close()
	cs, err := Open(db, Config{Clock: clock, ReapInterval: time.Hour})
	ksMust(t, err)
	defer cs.Close()
	for _, x := range []Expiry{{Mode: ExpiryIn, Ms: -clock.Now().UnixMilli()}, {Mode: ExpiryAt, Ms: 0}} {
		ksSet(t, cs, "a", "z", "v")
		done, err := cs.Expire(ksbg, "a", "z", x, ExpireAlways)
		ksMust(t, err)
		if n, _ := cs.Exists(ksbg, "a", []string{"z"}); !done || n != 0 {
			t.Fatalf("Expire to the deadline 0 (%+v): done %v, the key is still there", x, done)
		}
	}
	// Bounds and sequences.
	ksSet(t, s, "a", "k", "v")
	if _, err := s.Expire(ksbg, "a", "k", in((25 * time.Hour).Milliseconds()), ExpireAlways); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Expire over MaxDuration: %v", err)
	}
	if _, err := s.Expire(ksbg, "a", "k", in(math.MaxInt64), ExpireAlways); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Expire by the largest amount: %v", err) // now+amount must not wrap round to a past deadline
	}
	if n, _ := s.Exists(ksbg, "a", []string{"k"}); n != 1 {
		t.Fatal("a refused Expire deleted the key")
	}
	// As Redis: an absent key answers 0 whatever the amount.
	if done, err := s.Expire(ksbg, "a", "absent", in((25 * time.Hour).Milliseconds()), ExpireAlways); err != nil || done {
		t.Fatalf("Expire of an absent key over MaxDuration = %v, %v; want false, nil", done, err)
	}
	_, err = s.SeqNext(ksbg, "a", "seq", 1)
	ksMust(t, err)
	if _, err := s.Expire(ksbg, "a", "seq", in(1000), ExpireAlways); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Expire on a sequence: %v", err)
	}
}

// Rename gives the destination a new create revision (a lock renamed onto
// it fences above every earlier holder, D3) and refuses to replace a
// sequence.
func TestRenameCreatesANewKeyAndProtectsSequences_D3(t *testing.T) {
	s := ksStore(t)
	ksSet(t, s, "a", "src", "v")
	old, err := s.KVGet(ksbg, "a", "src")
	ksMust(t, err)
	moved, err := s.Rename(ksbg, "a", "src", "dst", false)
	ksMust(t, err)
	kv, err := s.KVGet(ksbg, "a", "dst")
	ksMust(t, err)
	if !moved || string(kv.Value) != "v" || kv.Created <= old.Created {
		t.Fatalf("Rename: moved %v, dst %+v (src created %d)", moved, kv, old.Created)
	}
	if _, err := s.Rename(ksbg, "a", "src", "x", false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rename of an absent key: %v", err)
	}
	_, err = s.SeqNext(ksbg, "a", "seq", 5)
	ksMust(t, err)
	if _, err := s.Rename(ksbg, "a", "dst", "seq", false); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Rename onto a sequence: %v", err)
	}
	ksSet(t, s, "a", "other", "w")
	if moved, _ := s.Rename(ksbg, "a", "dst", "other", true); moved {
		t.Fatal("Rename nx onto an existing key moved it")
	}
	if v, _, _ := s.Get(ksbg, "a", "other"); string(v) != "w" {
		t.Fatal("Rename nx replaced the value")
	}
}

func TestFlushDBTouchesOneAccountFlushAllEvery(t *testing.T) {
	s := ksStore(t)
	ksSet(t, s, "a", "1", "v")
	ksSet(t, s, "a", "2", "v")
	ksSet(t, s, "b", "1", "v")
	_, err := s.SeqNext(ksbg, "a", "seq", 3)
	ksMust(t, err)
	ksMust(t, s.FlushDB(ksbg, "a"))
	if n, _ := s.DBSize(ksbg, "a"); n != 0 {
		t.Fatalf("DBSize a after FlushDB = %d", n)
	}
	if n, _ := s.DBSize(ksbg, "b"); n != 1 {
		t.Fatalf("FlushDB a touched b: %d", n)
	}
	if v, _ := s.SeqNext(ksbg, "a", "seq", 1); v != 1 {
		t.Fatalf("sequence after FlushDB = %d, want reset", v)
	}
	ksMust(t, s.FlushAll(ksbg))
	ks, err := s.Keyspace(ksbg)
	ksMust(t, err)
	if len(ks) != 0 {
		t.Fatalf("Keyspace after FlushAll = %+v", ks)
	}
	if _, ok, _ := s.RandomKey(ksbg, "a"); ok {
		t.Fatal("RandomKey on an empty account")
	}
}

// TestListingsMergeTheBatchBeingSyncedAndAFailedOne_D1_D6: a listing merges
// Pebble with the writes it does not have yet, which pendingIn finds from
// the batches' key lists (not by walking the cache): the open batch's, the
// one being synced (applied to Pebble only once its sync returns), and,
// after a failed sync, the failed batch's, which a listing then answers
// with the failure rather than as if they had never been written (D6).
func TestListingsMergeTheBatchBeingSyncedAndAFailedOne_D1_D6(t *testing.T) {
	ctx := ctxT(t)
	fs := faultfs.New(vfs.NewMem())
	s := openStore(t, fs, "db", Config{Clock: newFakeClock()})
	ksSet(t, s.Store, "a", "durable", "v")
	pending := func() []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		start, end := accountRange("a")
		var ids []string
		for _, k := range (&txn{s: s.Store}).pendingIn(start, end) {
			_, id, _ := persist.SplitDataKey([]byte(k))
			ids = append(ids, id)
		}
		return ids
	}

	fs.HoldSyncs()
	t.Cleanup(fs.ReleaseSyncs) // runs before the store's close
	done := goCall(func() (any, error) { return s.Set(ctx, "a", "syncing", []byte("v"), SetOptions{}) })
	<-fs.Held
	pctx, _ := WithPipeline(ctx)
	for _, id := range []string{"open", "open", "another"} { // repeats listed once
		_, err := s.Set(pctx, "a", id, []byte("v"), SetOptions{})
		ksMust(t, err)
	}
	_, err := s.Set(pctx, "b", "other-account", []byte("v"), SetOptions{})
	ksMust(t, err)
	if got, want := pending(), []string{"another", "open", "syncing"}; !slices.Equal(got, want) {
		t.Fatalf("pending with a batch being synced = %v, want %v", got, want)
	}
	fs.ReleaseSyncs()
	if r := recv(t, done); r.err != nil {
		t.Fatal(r.err)
	}
	s.Sync()
	s.Applied() // a synced batch is listed until Pebble has it (C3)
	if got := pending(); len(got) != 0 {
		t.Fatalf("pending after the commits = %v", got)
	}

	fs.FailSyncs()
	if _, err := s.Set(ctx, "a", "failed", []byte("v"), SetOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Set with a failing sync = %v", err)
	}
	if got, want := pending(), []string{"failed"}; !slices.Equal(got, want) {
		t.Fatalf("pending after a failed sync = %v, want %v", got, want)
	}
	if ids, err := s.Keys(ctx, "a", "*"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("KEYS over a key of the failed batch = %v, %v; want the failure, not a listing without it", ids, err)
	}
	if ids, err := s.Keys(ctx, "b", "*"); err != nil || !slices.Equal(ids, []string{"other-account"}) {
		t.Fatalf("KEYS of another account = %v, %v", ids, err)
	}
}

// The key list kept for the next batches is bounded: a batch of 20,000
// writes (a FLUSHDB, a large MSET) does not leave its list pinned for good
// outside the cache's budget (found by review: 16 B a key, for ever).
func TestALargeBatchsKeyListIsNotKeptForReuse(t *testing.T) {
	s := ksStore(t)
	pairs := make([]KeyValue, 20000)
	for i := range pairs {
		pairs[i] = KeyValue{ID: fmt.Sprintf("k%05d", i), Value: []byte("v")}
	}
	_, err := s.MSet(ksbg, "a", pairs, false)
	ksMust(t, err)
	for range 3 {
		ksSet(t, s, "a", "small", "v")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := max(cap(s.mu.spareKeys), cap(s.mu.open.keys)); c > maxSpareKeys {
		t.Fatalf("a key list of capacity %d is kept after a large batch", c)
	}
}

// errAfterFirst is a context whose Err is nil once, then Canceled: its
// client goes while the call that checks it runs.
type errAfterFirst struct {
	context.Context
	calls int
}

func (c *errAfterFirst) Err() error {
	if c.calls++; c.calls > 1 {
		return context.Canceled
	}
	return nil
}

// A KEYS whose client goes stops its walk, which holds the apply lock,
// instead of walking on for nobody (found by review: 20 clients that sent
// KEYS * over 1.16M keys and left held every other client back for 11 s).
func TestKeysStopsWhenItsClientGoes(t *testing.T) {
	s, _ := newStore(t)
	ctx := ctxT(t)
	var kvs []KeyValue
	for i := range 12000 { // past two of Keys' looks at ctx (every 4096 keys)
		kvs = append(kvs, KeyValue{ID: fmt.Sprintf("k%05d", i), Value: []byte("v")})
	}
	if _, err := s.MSet(ctx, "a", kvs, false); err != nil {
		t.Fatal(err)
	}
	ids, err := s.Keys(&errAfterFirst{Context: ctx}, "a", "*")
	if !errors.Is(err, context.Canceled) || len(ids) >= 12000 {
		t.Fatalf("KEYS whose client went = %d ids, %v; want context.Canceled, the walk cut short", len(ids), err)
	}
	if ids, err := s.Keys(ctx, "a", "*"); err != nil || len(ids) != 12000 {
		t.Fatalf("KEYS = %d ids, %v; want 12000", len(ids), err)
	}
}
