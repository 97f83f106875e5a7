package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"

	"github.com/concurrencydb/concurrencydb/persist"
)

// TestMain fails the package when a test leaves a goroutine behind
// (STYLE 13: every goroutine is owned, and Close waits for it).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a Clock that only moves when a test calls Advance. Timers
// whose deadline is reached run in their own goroutine, as with
// time.AfterFunc; Settle waits until every fired timer has returned.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	gate   chan struct{} // when set, fired timers wait for it to close
	wg     sync.WaitGroup
}

type fakeTimer struct {
	at    time.Time
	f     func()
	state int // 0 pending, 1 stopped, 2 fired
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	if d <= 0 {
		c.Advance(0)
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.state == 0 {
			t.state = 1
			return true
		}
		return false
	}
}

// Advance moves the clock by d and starts every timer that is due, in
// deadline order (each in its own goroutine, so their relative order is
// not guaranteed).
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.state != 0:
		case !t.at.After(c.now):
			t.state = 2
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	gate := c.gate
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	c.wg.Add(len(due))
	c.mu.Unlock()
	for _, t := range due {
		go func() {
			defer c.wg.Done()
			if gate != nil {
				<-gate
			}
			t.f()
		}()
	}
}

// Settle waits for every fired timer function to return.
func (c *fakeClock) Settle() { c.wg.Wait() }

// testStore is a Store over a persist.DB, closed (both) at test cleanup
// unless the test closed it first.
type testStore struct {
	*Store
	t      testing.TB
	db     *persist.DB
	fs     vfs.FS
	dir    string
	cfg    Config
	closed bool
}

// openStore opens a store on fs/dir (fs nil: the real disk).
func openStore(t testing.TB, fs vfs.FS, dir string, cfg Config) *testStore {
	t.Helper()
	db, err := persist.Open(dir, persist.Options{FS: fs})
	if err != nil {
		t.Fatalf("persist.Open: %v", err)
	}
	s, err := Open(db, cfg)
	if err != nil {
		db.Close()
		t.Fatalf("core.Open: %v", err)
	}
	ts := &testStore{Store: s, t: t, db: db, fs: fs, dir: dir, cfg: cfg}
	t.Cleanup(func() { ts.close() })
	return ts
}

// newStore opens a store on a fresh in-memory filesystem with a fake clock.
func newStore(t testing.TB) (*testStore, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	return openStore(t, vfs.NewMem(), "db", Config{Clock: clock}), clock
}

// close closes the store, then its DB, and returns the store's error.
func (ts *testStore) close() error {
	if ts.closed {
		return nil
	}
	ts.closed = true
	err := ts.Store.Close()
	// NB: after a storage failure (P6) persist's Close reports it (the
	// shutdown was not clean), although the store wrote nothing since.
	if derr := ts.db.Close(); derr != nil && err == nil && ts.db.StorageErr() == nil {
		ts.t.Errorf("persist close: %v", derr)
	}
	return err
}

// reopen closes the store and its DB and opens both again on the same data.
func (ts *testStore) reopen() *testStore {
	ts.t.Helper()
	if err := ts.close(); err != nil {
		ts.t.Fatalf("close: %v", err)
	}
	return openStore(ts.t, ts.fs, ts.dir, ts.cfg)
}

// result is the outcome of a call run in the background.
type result struct {
	v   any
	err error
}

// goCall runs fn in a goroutine and delivers its result on the channel.
func goCall(fn func() (any, error)) <-chan result {
	c := make(chan result, 1)
	go func() {
		v, err := fn()
		c <- result{v, err}
	}()
	return c
}

func recv(t testing.TB, c <-chan result) result {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("call did not return within 20s")
		return result{}
	}
}

// mustNotReturn fails if c delivers within a short while. A short wait is
// the only way to see that something does not happen; it cannot make a
// correct store fail, only a broken one pass by luck on a slow machine.
func mustNotReturn(t testing.TB, c <-chan result, what string) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("%s returned (%v, %v) while it should still block", what, r.v, r.err)
	case <-time.After(50 * time.Millisecond):
	}
}

func ctxT(t testing.TB) context.Context { return t.Context() }

// TestLoadNeverInstallsAStaleRecord_D5: loadLocked reads Pebble without the
// apply lock; with a tiny cache that evicts constantly, increments racing
// those reads must all count (a stale record installed in the cache would
// lose some).
func TestLoadNeverInstallsAStaleRecord_D5(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{CacheBytes: 4 * (entryOverhead + 32)})
	const workers, perWorker, keys = 16, 200, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := "k" + strconv.Itoa((w+i)%keys)
				if _, err := s.CtrAdd(ctx, "a", k, 1); err != nil {
					t.Error(err)
					return
				}
				// Reads of other keys churn the cache.
				if _, err := s.KVGet(ctx, "a", "other"+strconv.Itoa(i%50)); err != nil && !errors.Is(err, ErrNotFound) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var total int64
	for k := range keys {
		v, err := s.CtrGet(ctx, "a", "k"+strconv.Itoa(k))
		if err != nil {
			t.Fatal(err)
		}
		total += v
	}
	if total != workers*perWorker {
		t.Fatalf("counters sum to %d, want %d: an increment was lost", total, workers*perWorker)
	}
}

// TestGatherNeverDelaysALoneWriter_D5: the committer waits for a batch to
// fill only while it holds fewer writes than the last batch released, and
// never longer than the last commit took (capped).
func TestGatherNeverDelaysALoneWriter_D5(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		n, expect int
		last      time.Duration
		want      time.Duration
	}{
		{1, 1, ms, 0},   // a lone writer, again alone: commit now
		{1, 0, ms, 0},   // first batch ever
		{0, 10, ms, 0},  // nothing to commit
		{12, 10, ms, 0}, // already fuller than the last batch
		{3, 10, 200 * time.Microsecond, 200 * time.Microsecond},
		{3, 10, 5 * ms, maxGather}, // a slow disk does not stretch the wait
	}
	for _, tt := range tests {
		if got := gatherWait(tt.n, tt.expect, tt.last); got != tt.want {
			t.Errorf("gatherWait(%d, %d, %v) = %v, want %v", tt.n, tt.expect, tt.last, got, tt.want)
		}
	}
}

// TestCacheStaysWithinItsByteBudget_C1: the cache is bounded in bytes, so
// large values cannot grow it past the budget (a count bound would hold
// its count × 1 MiB), and its byte count matches its contents.
func TestCacheStaysWithinItsByteBudget_C1(t *testing.T) {
	ctx := ctxT(t)
	const budget = 1 << 20
	s := openStore(t, vfs.NewMem(), "db", Config{CacheBytes: budget})
	val := bytes.Repeat([]byte("v"), 64<<10)
	for i := range 100 {
		k := "big" + strconv.Itoa(i)
		if _, err := s.KVSet(ctx, "a", k, val, KVSetOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.KVGet(ctx, "a", k); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 { // reads load evicted records again
		if _, err := s.KVGet(ctx, "a", "big"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Cached small records overwritten with large values: no read misses
	// the cache, so the writes themselves must evict.
	for i := range 200 {
		if _, err := s.KVSet(ctx, "a", "small"+strconv.Itoa(i), []byte("x"), KVSetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		if _, err := s.KVSet(ctx, "a", "small"+strconv.Itoa(i), val, KVSetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Multi-key writes that evict between their reads and their writes,
	// rewrite a key twice, or name it twice (storeLocked's old entry may
	// be gone by then).
	for i := range 50 {
		a, b := "small"+strconv.Itoa(i), "big"+strconv.Itoa(i)
		if _, err := s.MSet(ctx, "a", []KeyValue{{ID: a, Value: val}, {ID: b, Value: []byte("y")}, {ID: a, Value: []byte("z")}}, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rename(ctx, "a", a, "moved"+strconv.Itoa(i), false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Del(ctx, "a", []string{b, b, "moved" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := 0
	for k, e := range s.mu.mem {
		sum += entryCost(k, e)
	}
	if sum != s.mu.memBytes {
		t.Fatalf("memBytes = %d, entries add up to %d", s.mu.memBytes, sum)
	}
	if limit := budget + len(val) + entryOverhead + 64; sum > limit {
		t.Fatalf("cache holds %d bytes in %d entries, budget %d", sum, len(s.mu.mem), budget)
	}
}

// TestRingServesEvictedRecordsWithTheirLatestValue_C2: with a cache far
// smaller than the keyspace, records evicted from it are read back from
// the record ring — no Pebble read — and always with their latest value,
// however often each key was written, evicted and read back since.
func TestRingServesEvictedRecordsWithTheirLatestValue_C2(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock(), CacheBytes: 8 * (entryOverhead + 32), RingBytes: 1 << 20})
	const n = 12000 // a 1 MiB ring turns its log over several times
	for round := range 4 {
		for i := range n {
			if _, err := s.CtrAdd(ctx, "a", "c"+strconv.Itoa(i), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if round > 0 {
			// Absent keys are remembered as absent too.
			before := s.stats.DiskReads.Load()
			for i := range 1000 {
				if _, err := s.KVGet(ctx, "a", "none"+strconv.Itoa(i)); !errors.Is(err, ErrNotFound) {
					t.Fatalf("KVGet(none%d) = %v, want ErrNotFound", i, err)
				}
			}
			if d := s.stats.DiskReads.Load() - before; round > 1 && d > 10 {
				t.Fatalf("round %d: 1000 keys known to be absent took %d Pebble reads", round, d)
			}
		}
		disk, hits := s.stats.DiskReads.Load(), s.stats.RingHits.Load()
		for i := range n {
			v, err := s.CtrGet(ctx, "a", "c"+strconv.Itoa(i))
			if want := int64(i * (round + 1)); err != nil || v != want {
				t.Fatalf("round %d: counter %d = (%d, %v), want %d", round, i, v, err, want)
			}
		}
		if d, h := s.stats.DiskReads.Load()-disk, s.stats.RingHits.Load()-hits; d > n/100 || h < n*9/10 {
			t.Fatalf("round %d: reading %d evicted counters took %d Pebble reads and %d ring hits", round, n, d, h)
		}
	}
	// Deleted keys read back as deleted, not as their last value.
	for i := range n {
		if _, err := s.Del(ctx, "a", []string{"c" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if v, err := s.CtrGet(ctx, "a", "c"+strconv.Itoa(i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted counter %d = (%d, %v), want ErrNotFound", i, v, err)
		}
	}
}

// TestCommitObserverRunsBeforeTheWritersHear: a write is counted by the
// commit observer (metrics) before its caller gets the acknowledgement, so
// metrics read right after a reply never lag it. The observer is slow on
// purpose: called after the writers were released, it would lose the race.
func TestCommitObserverRunsBeforeTheWritersHear(t *testing.T) {
	ctx := ctxT(t)
	var observed atomic.Int64
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock(), CommitObserver: func(writes int, _ time.Duration) {
		time.Sleep(2 * time.Millisecond)
		observed.Add(int64(writes))
	}})
	for i := 1; i <= 20; i++ {
		if _, err := s.CtrAdd(ctx, "a", "c", 1); err != nil {
			t.Fatal(err)
		}
		if n := observed.Load(); n < int64(i) {
			t.Fatalf("after %d acknowledged writes the observer had counted %d", i, n)
		}
	}
}

// TestARecordReadFromTheRingSurvivesTheEvictionItCauses_C2: a record read
// back from the ring aliases the ring's log until it is copied; installing
// it in a full cache evicts a tenth of the cache into the ring, which can
// clean and rewrite the very segment the record was read from. So the
// record is copied first (fromRingLocked): with a cache large enough that
// one eviction spans segments, every value read back is the key's own —
// small ones (kept inside the entry) and larger ones alike.
func TestARecordReadFromTheRingSurvivesTheEvictionItCauses_C2(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock(), CacheBytes: 256 << 10, RingBytes: 1 << 20})
	const n = 20000 // beyond what the ring keeps whole: it cleans its oldest segments
	value := func(i, round int) []byte {
		v := fmt.Sprintf("%d/%d", i, round) // inside the entry
		if i%3 == 0 {
			v += strings.Repeat("-", 40) // kept apart
		}
		return []byte(v)
	}
	for round := range 3 {
		for i := range n {
			if _, err := s.KVSet(ctx, "a", "k"+strconv.Itoa(i), value(i, round), KVSetOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		hits := s.stats.RingHits.Load()
		for pass := range 2 {
			for i := range n {
				kv, err := s.KVGet(ctx, "a", "k"+strconv.Itoa(i))
				if want := value(i, round); err != nil || !bytes.Equal(kv.Value, want) {
					t.Fatalf("round %d, pass %d: k%d = (%q, %v), want %q", round, pass, i, kv.Value, err, want)
				}
			}
		}
		if h := s.stats.RingHits.Load() - hits; h < n {
			t.Fatalf("round %d: %d ring hits, want the reads to come from the ring", round, h)
		}
	}
}
