package core

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist"
)

// holdApplies makes s's applies to Pebble wait until the returned release
// is called (at the latest by the test's cleanup, before the store's
// close); entered receives once per apply that starts waiting.
func holdApplies(t *testing.T, s *testStore) (entered <-chan struct{}, release func()) {
	in, gate := make(chan struct{}, 16), make(chan struct{})
	s.Applied() // the last apply has read env (it happens before this)
	apply := s.env.apply
	s.env.apply = func(b *persist.Batch) error {
		in <- struct{}{}
		<-gate
		return apply(b)
	}
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	return in, release
}

// A write is acknowledged once it is synced, before Pebble has it; until
// then the cache keeps it whatever the pressure on it, listings show it,
// and INFO's count (which reads Pebble alone) waits for it (C3).
func TestASyncedWriteNotYetInPebbleIsReadListedAndCounted_C3(t *testing.T) {
	ctx := ctxT(t)
	// A cache of a few entries and no ring: every other read evicts, and
	// a key evicted is read back from Pebble.
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock(), CacheBytes: 4 * (entryOverhead + 32), RingBytes: -1})
	for i := range 20 {
		ksSet(t, s.Store, "a", fmt.Sprintf("other%02d", i), "v")
	}
	entered, release := holdApplies(t, s)
	done := goCall(func() (any, error) { return s.Set(ctx, "a", "k", []byte("new"), SetOptions{}) })
	<-entered
	if r := recv(t, done); r.err != nil {
		t.Fatalf("Set while its batch waits to reach Pebble: %v", r.err)
	}
	for i := range 20 { // loads that evict
		if _, ok, err := s.Get(ctx, "a", fmt.Sprintf("other%02d", i)); err != nil || !ok {
			t.Fatalf("Get other%02d = %v, %v", i, ok, err)
		}
	}
	if v, ok, err := s.Get(ctx, "a", "k"); err != nil || !ok || string(v) != "new" {
		t.Fatalf("Get k before Pebble has it = %q, %v, %v; want the acknowledged value", v, ok, err)
	}
	if ids, err := s.Keys(ctx, "a", "k*"); err != nil || !slices.Equal(ids, []string{"k"}) {
		t.Fatalf("KEYS before Pebble has k = %v, %v", ids, err)
	}
	counted := goCall(func() (any, error) { return s.Keyspace(ctx) })
	mustNotReturn(t, counted, "INFO's key count, before Pebble has every acknowledged write")
	release()
	r := recv(t, counted)
	if ks, _ := r.v.([]AccountKeys); r.err != nil || len(ks) != 1 || ks[0].Keys != 21 {
		t.Fatalf("Keyspace = %v, %v; want 21 keys in a", r.v, r.err)
	}
}

// A batch whose apply to Pebble fails was acknowledged and is in the log:
// the store fail-stops (D6), but the write stays readable and listed, and
// the next open has it (C3).
func TestAFailedApplyStopsWritesAndKeepsTheAcknowledgedOne_C3_D6(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock(), CacheBytes: 4 * (entryOverhead + 32), RingBytes: -1})
	for i := range 20 {
		ksSet(t, s.Store, "a", fmt.Sprintf("other%02d", i), "v")
	}
	broken := errors.New("injected apply failure")
	s.Applied() // the last apply has read env (it happens before this)
	s.env.apply = func(b *persist.Batch) error {
		return broken // as Pebble's: not applied (persist then keeps the log)
	}
	if _, err := s.Set(ctx, "a", "k", []byte("new"), SetOptions{}); err != nil {
		t.Fatalf("Set whose apply fails after its sync: %v (it is durable)", err)
	}
	s.Applied()
	if _, err := s.Set(ctx, "a", "later", []byte("v"), SetOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Set after a failed apply = %v, want ErrUnavailable", err)
	}
	for i := range 20 {
		if _, _, err := s.Get(ctx, "a", fmt.Sprintf("other%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if v, ok, err := s.Get(ctx, "a", "k"); err != nil || !ok || string(v) != "new" {
		t.Fatalf("Get k after its apply failed = %q, %v, %v", v, ok, err)
	}
	if ids, err := s.Keys(ctx, "a", "k*"); err != nil || !slices.Equal(ids, []string{"k"}) {
		t.Fatalf("KEYS after k's apply failed = %v, %v", ids, err)
	}
	if ks, err := s.Keyspace(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("INFO's count, from Pebble, which lacks k = %v, %v; want the failure", ks, err)
	}
	if err := s.close(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Close after a failed apply = %v", err)
	}
	r := openStore(t, s.fs, s.dir, s.cfg)
	if v, ok, err := r.Get(ctx, "a", "k"); err != nil || !ok || string(v) != "new" {
		t.Fatalf("Get k after reopening = %q, %v, %v", v, ok, err)
	}
}

// A pipeline's batch applied by another goroutine (ApplyLater) is in
// Pebble before Close returns.
func TestCloseWaitsForABatchAppliedLater_C3(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock()})
	pctx, _ := WithPipeline(ctx) // its writes wait for Sync
	for i := range 2 * asyncApplyMin {
		if _, err := s.Set(pctx, "a", fmt.Sprintf("k%03d", i), []byte("v"), SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	entered, release := holdApplies(t, s)
	s.Sync()
	s.ApplyLater()
	<-entered // in another goroutine
	closing := goCall(func() (any, error) { return nil, s.close() })
	mustNotReturn(t, closing, "Close, while a batch is being applied")
	release()
	if r := recv(t, closing); r.err != nil {
		t.Fatal(r.err)
	}
	r := openStore(t, s.fs, s.dir, s.cfg)
	if ids, err := r.Keys(ctx, "a", "*"); err != nil || len(ids) != 2*asyncApplyMin {
		t.Fatalf("after Close and reopen: %d keys, %v", len(ids), err)
	}
}

// A commit applies the batch the last one left (an event loop's Sync
// leaves it to its caller) before it logs its own (persist's W4): two
// Syncs in a row both return, and Pebble ends with the second's value.
func TestACommitAppliesTheBatchLeftBeforeIt_C3(t *testing.T) {
	ctx := ctxT(t)
	// No reaper: its pass would apply the batch left too.
	cfg := Config{Clock: newFakeClock(), CacheBytes: 4 * (entryOverhead + 32), RingBytes: -1, ReapInterval: time.Hour}
	s := openStore(t, vfs.NewMem(), "db", cfg)
	pctx, _ := WithPipeline(ctx) // its writes wait for Sync
	for _, v := range []string{"1", "2"} {
		if _, err := s.Set(pctx, "a", "k", []byte(v), SetOptions{}); err != nil {
			t.Fatal(err)
		}
		done := goCall(func() (any, error) { s.Sync(); return nil, nil })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Sync of k=%s did not return: its log waits for the last batch's apply", v)
		}
	}
	if err := s.Applied(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 { // evict k: it is read back from Pebble
		ksSet(t, s.Store, "a", fmt.Sprintf("other%02d", i), "v")
	}
	if v, ok, err := s.Get(ctx, "a", "k"); err != nil || !ok || string(v) != "2" {
		t.Fatalf("Get k = %q, %v, %v; want 2", v, ok, err)
	}
}
