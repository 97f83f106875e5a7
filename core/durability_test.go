package core

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// durableOp is a write and a read of the same key, for tests that run
// every family through one durability check.
type durableOp struct {
	name  string
	write func(s *Store) (any, error) // must change the value read returns
	read  func(s *Store) (any, error)
	want  any // what read returns after write, and what write returns
}

func durableOps(t *testing.T) []durableOp {
	ctx := ctxT(t)
	return []durableOp{
		{
			name:  "sequence",
			write: func(s *Store) (any, error) { return s.SeqNext(ctx, "a", "seq", 1) },
			read:  func(s *Store) (any, error) { return s.SeqGet(ctx, "a", "seq") },
			want:  uint64(2),
		},
		{
			name:  "counter",
			write: func(s *Store) (any, error) { return s.CtrAdd(ctx, "a", "ctr", 1) },
			read:  func(s *Store) (any, error) { return s.CtrGet(ctx, "a", "ctr") },
			want:  int64(2),
		},
		{
			name: "kv",
			write: func(s *Store) (any, error) {
				_, err := s.KVSet(ctx, "a", "kv", []byte("2"), KVSetOptions{})
				return "2", err
			},
			read: func(s *Store) (any, error) {
				kv, err := s.KVGet(ctx, "a", "kv")
				return string(kv.Value), err
			},
			want: "2",
		},
		{
			name: "lock",
			write: func(s *Store) (any, error) {
				_, err := s.LockAcquire(ctx, "a", "lock2", "2", time.Hour)
				return "2", err
			},
			read: func(s *Store) (any, error) {
				li, err := s.LockGet(ctx, "a", "lock2")
				return li.Owner, err
			},
			want: "2",
		},
	}
}

// setupValue writes the value "1" of op's family durably before the test.
func setupValue(t *testing.T, s *Store) {
	ctx := ctxT(t)
	if _, err := s.SeqNext(ctx, "a", "seq", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CtrAdd(ctx, "a", "ctr", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVSet(ctx, "a", "kv", []byte("1"), KVSetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LockAcquire(ctx, "a", "lock", "1", time.Hour); err != nil {
		t.Fatal(err)
	}
}

// TestWriteNotAcknowledgedBeforeSync_D1 holds every fsync back and checks
// that neither the write nor a read of the written key returns until the
// sync is let go. A store that acknowledged before its batch's sync returned
// (say, closing the flight before env.commit) would return the write while
// the sync is held, with released still false, and fail here.
func TestWriteNotAcknowledgedBeforeSync_D1(t *testing.T) {
	for _, op := range durableOps(t) {
		t.Run(op.name, func(t *testing.T) {
			fs := faultfs.New(vfs.NewMem())
			s := openStore(t, fs, "db", Config{Clock: newFakeClock()})
			setupValue(t, s.Store)

			fs.HoldSyncs()
			t.Cleanup(fs.ReleaseSyncs) // runs before the store's close
			var released atomic.Bool
			type ack struct {
				result
				early bool
			}
			wc := make(chan ack, 1)
			go func() {
				v, err := op.write(s.Store)
				wc <- ack{result{v, err}, !released.Load()}
			}()
			select {
			case <-fs.Held:
			case a := <-wc:
				t.Fatalf("write returned (%v, %v) before its batch was synced", a.v, a.err)
			case <-time.After(20 * time.Second):
				t.Fatal("no sync started within 20s of the write")
			}
			// The write is applied in memory and its batch is being synced:
			// a read now must wait for that sync too.
			rc := goCall(func() (any, error) { return op.read(s.Store) })
			select {
			case a := <-wc:
				t.Fatalf("write returned (%v, %v) while its sync is held", a.v, a.err)
			case r := <-rc:
				t.Fatalf("read returned (%v, %v) while the write it sees is not synced", r.v, r.err)
			case <-time.After(50 * time.Millisecond):
			}

			released.Store(true)
			fs.ReleaseSyncs()
			var a ack
			select {
			case a = <-wc:
			case <-time.After(20 * time.Second):
				t.Fatal("write did not return after the sync was released")
			}
			if a.early {
				t.Fatal("write was acknowledged before the sync was released")
			}
			if a.err != nil || a.v != op.want {
				t.Fatalf("write = (%v, %v), want %v", a.v, a.err, op.want)
			}
			if r := recv(t, rc); r.err != nil || r.v != op.want {
				t.Fatalf("read = (%v, %v), want %v", r.v, r.err, op.want)
			}
		})
	}
}

// TestFailedSyncFailStops_D6 fails every fsync from one moment on: the
// write in that batch gets ErrUnavailable (never success), later writes are
// refused, Healthy says so, and data made durable before stays readable.
func TestFailedSyncFailStops_D6(t *testing.T) {
	ctx := ctxT(t)
	fs := faultfs.New(vfs.NewMem())
	s := openStore(t, fs, "db", Config{Clock: newFakeClock()})
	setupValue(t, s.Store)
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy before failure: %v", err)
	}

	fs.FailSyncs()
	if v, err := s.SeqNext(ctx, "a", "seq", 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("SeqNext with a failing sync = (%d, %v), want ErrUnavailable", v, err)
	}
	if _, err := s.CtrAdd(ctx, "a", "other", 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("later CtrAdd = %v, want ErrUnavailable", err)
	}
	if _, err := s.KVSet(ctx, "a", "kv", []byte("x"), KVSetOptions{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("later KVSet = %v, want ErrUnavailable", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Healthy after failure = %v, want ErrUnavailable", err)
	}
	// Durable data is still served.
	if v, err := s.CtrGet(ctx, "a", "ctr"); err != nil || v != 1 {
		t.Fatalf("CtrGet of durable counter = (%d, %v), want 1", v, err)
	}
	if kv, err := s.KVGet(ctx, "a", "kv"); err != nil || string(kv.Value) != "1" {
		t.Fatalf("KVGet of durable value = (%q, %v), want \"1\"", kv.Value, err)
	}
	// The write whose sync failed is never shown as if durable.
	if v, err := s.SeqGet(ctx, "a", "seq"); err == nil && v != 1 {
		t.Fatalf("SeqGet after failed SeqNext = %d, want 1 or an error", v)
	}
	if err := s.Store.Close(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Close after a failed sync = %v, want ErrUnavailable", err)
	}
	s.closed = true
	_ = s.db.Close() // Pebble reports the WAL error again; it must not panic.
}

// TestGroupCommitSharesFsyncsOnHotKey_D5 runs 50 writers on one key on a
// real disk: the final value is exact and the number of synced commits is
// well below the number of writes, so writers shared fsyncs.
func TestGroupCommitSharesFsyncsOnHotKey_D5(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, nil, t.TempDir(), Config{})
	const writers, each = 50, 40
	base := s.Stats().Commits.Load()
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.CtrAdd(ctx, "a", "hot", 1); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if v, err := s.CtrGet(ctx, "a", "hot"); err != nil || v != writers*each {
		t.Fatalf("hot counter = (%d, %v), want %d", v, err, writers*each)
	}
	commits := s.Stats().Commits.Load() - base
	t.Logf("%d writes in %d synced commits", writers*each, commits)
	if commits > writers*each/4 {
		t.Fatalf("%d writes took %d synced commits: writes are not sharing fsyncs", writers*each, commits)
	}
}

// TestStateSurvivesRestart_D3 writes every kind of state, closes store and
// DB, reopens them on the same directory and reads it all back.
func TestStateSurvivesRestart_D3(t *testing.T) {
	ctx := ctxT(t)
	clock := newFakeClock()
	s := openStore(t, nil, t.TempDir(), Config{Clock: clock})
	if _, err := s.SeqNext(ctx, "a", "seq", 41); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CtrAdd(ctx, "a", "ctr", -7); err != nil {
		t.Fatal(err)
	}
	ver, err := s.KVSet(ctx, "a", "kv", []byte("hello"), KVSetOptions{HasTTL: true, TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := s.LockAcquire(ctx, "a", "lock", "me", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var maxVer uint64
	for _, id := range []string{"seq", "ctr", "kv", "lock"} {
		kv, err := s.KVGet(ctx, "a", id)
		if err != nil {
			t.Fatal(err)
		}
		maxVer = max(maxVer, kv.Version)
	}

	clock.Advance(4 * time.Second)
	s = s.reopen()

	if v, err := s.SeqGet(ctx, "a", "seq"); err != nil || v != 41 {
		t.Fatalf("SeqGet after restart = (%d, %v), want 41", v, err)
	}
	if v, err := s.SeqNext(ctx, "a", "seq", 1); err != nil || v != 42 {
		t.Fatalf("sequence does not continue after restart: (%d, %v), want 42", v, err)
	}
	if v, err := s.CtrGet(ctx, "a", "ctr"); err != nil || v != -7 {
		t.Fatalf("CtrGet after restart = (%d, %v), want -7", v, err)
	}
	kv, err := s.KVGet(ctx, "a", "kv")
	if err != nil || string(kv.Value) != "hello" || kv.Version != ver {
		t.Fatalf("KVGet after restart = (%q v%d, %v), want hello v%d", kv.Value, kv.Version, err, ver)
	}
	if want := clock.Now().Add(56 * time.Second).UnixMilli(); kv.ExpireAt != want {
		t.Fatalf("kv expiry after restart = %d, want %d (absolute, T1)", kv.ExpireAt, want)
	}
	li, err := s.LockGet(ctx, "a", "lock")
	if err != nil || li.Owner != "me" || li.Token != lock.Token || li.RemainingMs != 6000 {
		t.Fatalf("LockGet after restart = (%+v, %v), want me token %d 6000 ms left", li, err, lock.Token)
	}
	clock.Advance(6 * time.Second)
	if _, err := s.LockGet(ctx, "a", "lock"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lock held across restart did not expire on time: %v", err)
	}
	nv, err := s.KVSet(ctx, "a", "new", []byte("x"), KVSetOptions{})
	if err != nil || nv <= maxVer {
		t.Fatalf("version after restart = (%d, %v), want > %d", nv, err, maxVer)
	}
}

// TestVersionsAboveAllBeforeRestartAfterDelete_D2_D3 makes a delete the
// last write before a clean restart and before a crash: versions afterwards
// are above the delete's revision, so a re-created key never repeats a
// version that a client may hold as a compare-and-set token.
func TestVersionsAboveAllBeforeRestartAfterDelete_D2_D3(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			ctx := ctxT(t)
			mem := vfs.NewCrashableMem()
			s := openStore(t, mem, "db", Config{Clock: newFakeClock()})
			var last uint64
			for i := range 5 {
				v, err := s.KVSet(ctx, "a", "k", []byte(strconv.Itoa(i)), KVSetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				last = v
			}
			// Several deletes and re-creates: each takes a revision that
			// no later write may reuse.
			for range 3 {
				if _, err := s.KVDelete(ctx, "a", "k", Precondition{}); err != nil {
					t.Fatal(err)
				}
				v, err := s.KVSet(ctx, "a", "k", []byte("x"), KVSetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				last = v
			}
			if _, err := s.KVDelete(ctx, "a", "k", Precondition{}); err != nil {
				t.Fatal(err)
			}
			deleteRev := last + 1 // the delete took the revision after the last set

			var s2 *testStore
			if crash {
				clone := mem.CrashClone(vfs.CrashCloneCfg{})
				s2 = openStore(t, clone, "db", s.cfg)
			} else {
				s2 = s.reopen()
			}
			v, err := s2.KVSet(ctx, "a", "k", []byte("again"), KVSetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if v <= deleteRev {
				t.Fatalf("version after restart = %d, not above the delete's revision %d", v, deleteRev)
			}
		})
	}
}

// TestAcknowledgedWritesSurviveCrash_D1_D3 acknowledges writes of every
// family, keeps only what was synced (CrashClone), and checks that every
// acknowledged write is there and that sequences, versions and tokens
// continue above every value handed out.
func TestAcknowledgedWritesSurviveCrash_D1_D3(t *testing.T) {
	ctx := ctxT(t)
	mem := vfs.NewCrashableMem()
	fs := faultfs.New(mem)
	clock := newFakeClock()
	s := openStore(t, fs, "db", Config{Clock: clock})
	fs.SlowSyncs(time.Millisecond)

	seq, err := s.SeqNext(ctx, "a", "seq", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if seq, err = s.SeqNext(ctx, "a", "seq", 1); err != nil {
			t.Fatal(err)
		}
	}
	ctr, err := s.CtrAdd(ctx, "a", "ctr", 5)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := s.KVSet(ctx, "b", "kv", []byte("v"), KVSetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := s.LockAcquire(ctx, "a", "lock", "me", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.MutexLock(ctx, "a", "m", time.Minute, 0)
	if err != nil {
		t.Fatal(err)
	}

	clone := mem.CrashClone(vfs.CrashCloneCfg{})
	c := openStore(t, clone, "db", s.cfg)
	if v, err := c.SeqGet(ctx, "a", "seq"); err != nil || v != seq {
		t.Fatalf("sequence after crash = (%d, %v), want %d", v, err, seq)
	}
	if v, err := c.SeqNext(ctx, "a", "seq", 1); err != nil || v != seq+1 {
		t.Fatalf("SeqNext after crash = (%d, %v), want %d", v, err, seq+1)
	}
	if v, err := c.CtrGet(ctx, "a", "ctr"); err != nil || v != ctr {
		t.Fatalf("counter after crash = (%d, %v), want %d", v, err, ctr)
	}
	if kv, err := c.KVGet(ctx, "b", "kv"); err != nil || string(kv.Value) != "v" || kv.Version != ver {
		t.Fatalf("kv after crash = (%q v%d, %v), want v v%d", kv.Value, kv.Version, err, ver)
	}
	li, err := c.LockGet(ctx, "a", "lock")
	if err != nil || li.Owner != "me" || li.Token != lock.Token {
		t.Fatalf("lock after crash = (%+v, %v), want me token %d", li, err, lock.Token)
	}
	// A new holder after the crash gets a higher fencing token.
	if _, err := c.LockRelease(ctx, "a", "lock", "me"); err != nil {
		t.Fatal(err)
	}
	li2, err := c.LockAcquire(ctx, "a", "lock", "you", time.Minute)
	if err != nil || li2.Token <= lock.Token {
		t.Fatalf("token after crash = (%d, %v), want > %d", li2.Token, err, lock.Token)
	}
	h2, err := c.MutexLock(ctx, "a", "m", time.Minute, 0)
	if err != nil || h2 <= h {
		t.Fatalf("mutex handle after crash = (%d, %v), want > %d", h2, err, h)
	}
}

// TestConcurrentAcknowledgedWritesSurviveCrash_D1 crashes (CrashClone) at
// a random moment while 50 goroutines write: every write acknowledged
// before the clone started is in the clone.
func TestConcurrentAcknowledgedWritesSurviveCrash_D1(t *testing.T) {
	// Several rounds, each crashing at a different random moment.
	for round := range 3 {
		t.Run("round"+strconv.Itoa(round), concurrentCrashRound)
	}
}

func concurrentCrashRound(t *testing.T) {
	ctx := ctxT(t)
	mem := vfs.NewCrashableMem()
	fs := faultfs.New(mem)
	s := openStore(t, fs, "db", Config{Clock: newFakeClock()})
	fs.SlowSyncs(time.Millisecond)

	const writers = 50
	var cloning, stop atomic.Bool
	var hotAcked atomic.Int64           // hot-key increments acknowledged before the clone
	ackedSeq := make([]uint64, writers) // per writer, highest sequence value acknowledged before the clone
	ackedKV := make([]int, writers)     // per writer, highest kv value acknowledged before the clone
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			id := strconv.Itoa(w)
			for i := 1; !stop.Load(); i++ {
				v, err := s.SeqNext(ctx, "a", "seq"+id, 1)
				if err != nil {
					errc <- err
					return
				}
				if !cloning.Load() {
					ackedSeq[w] = v
				}
				if _, err := s.KVSet(ctx, "a", "kv"+id, []byte(strconv.Itoa(i)), KVSetOptions{}); err != nil {
					errc <- err
					return
				}
				if !cloning.Load() {
					ackedKV[w] = i
				}
				if _, err := s.CtrAdd(ctx, "a", "hot", 1); err != nil {
					errc <- err
					return
				}
				if !cloning.Load() {
					hotAcked.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Duration(5+rand.IntN(30)) * time.Millisecond)
	cloning.Store(true)
	// Everything recorded above happened before this point.
	clone := mem.CrashClone(vfs.CrashCloneCfg{})
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}

	c := openStore(t, clone, "db", s.cfg)
	for w := range writers {
		id := strconv.Itoa(w)
		if ackedSeq[w] > 0 {
			v, err := c.SeqGet(ctx, "a", "seq"+id)
			if err != nil || v < ackedSeq[w] {
				t.Errorf("writer %d: sequence after crash = (%d, %v), acknowledged %d", w, v, err, ackedSeq[w])
			}
		}
		if ackedKV[w] > 0 {
			kv, err := c.KVGet(ctx, "a", "kv"+id)
			n, _ := strconv.Atoi(string(kv.Value))
			if err != nil || n < ackedKV[w] {
				t.Errorf("writer %d: kv after crash = (%q, %v), acknowledged %d", w, kv.Value, err, ackedKV[w])
			}
		}
	}
	if n := hotAcked.Load(); n > 0 {
		v, err := c.CtrGet(ctx, "a", "hot")
		if err != nil || v < n {
			t.Errorf("hot counter after crash = (%d, %v), %d increments acknowledged", v, err, n)
		}
	}
	t.Logf("acknowledged before crash: %d hot increments", hotAcked.Load())
}

// TestStoreReopenedOnSameDBContinuesRevisions_D3: a Store closed and opened
// again on the same, still open persist.DB continues versions above every
// version it issued, rather than from the revision read when the DB opened.
func TestStoreReopenedOnSameDBContinuesRevisions_D3(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock()})
	var last uint64
	for range 3 {
		last = mustSet(t, s, "k", "v")
	}
	if err := s.Store.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.db, s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Store = s2 // closed with the DB at cleanup
	v, err := s2.KVSet(ctx, "a", "other", []byte("x"), KVSetOptions{})
	if err != nil || v <= last {
		t.Fatalf("version after reopening the store = (%d, %v), want > %d", v, err, last)
	}
}

// TestSmallCacheServesCommittedValues_D1: with a cache far smaller than the
// keyspace, evicted keys are read back from disk with their latest value.
func TestSmallCacheServesCommittedValues_D1(t *testing.T) {
	ctx := ctxT(t)
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: newFakeClock(), CacheBytes: 8 * (entryOverhead + 32)})
	const n = 200
	for round := range 3 {
		for i := range n {
			if _, err := s.CtrAdd(ctx, "a", "c"+strconv.Itoa(i), int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			v, err := s.CtrGet(ctx, "a", "c"+strconv.Itoa(i))
			if want := int64(i * (round + 1)); err != nil || v != want {
				t.Fatalf("round %d: counter %d = (%d, %v), want %d", round, i, v, err, want)
			}
		}
	}
}

// TestClosedStoreRefusesWrites: after Close, writes answer ErrClosed and
// Healthy reports it; Close is idempotent.
func TestClosedStoreRefusesWrites(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy of an open store = %v", err)
	}
	if err := s.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.CtrAdd(ctx, "a", "c", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("CtrAdd after Close = %v, want ErrClosed", err)
	}
	if err := s.Healthy(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Healthy after Close = %v, want ErrClosed", err)
	}
}

// Store.Sync, the event loop's commit: a Pipeline write is not committed
// by itself; after Sync its Pending is Ready. Sync run while the committer's
// commit is in flight waits for that commit too, so a Pending of that
// batch is Ready when Sync returns (D1, D5).
func TestSyncCommitsAndWaitsForTheCommitInFlight_D1_D5(t *testing.T) {
	ctx := ctxT(t)
	fs := faultfs.New(vfs.NewMem())
	s := openStore(t, fs, "db", Config{})
	pctx, pl := WithPipeline(ctx)
	if _, err := s.CtrAdd(pctx, "a", "p", 1); err != nil {
		t.Fatal(err)
	}
	p := pl.Take()
	if p.Ready() {
		t.Fatal("a pipeline write was committed before anyone asked")
	}
	s.Sync()
	if !p.Ready() {
		t.Fatal("after Sync the pipeline write's Pending is not Ready")
	}

	fs.HoldSyncs()
	held := make(chan error, 1)
	go func() { _, err := s.CtrAdd(ctx, "a", "c", 1); held <- err }() // the committer's commit
	select {
	case <-fs.Held:
	case <-time.After(10 * time.Second):
		t.Fatal("the committer never reached its sync")
	}
	if _, err := s.CtrAdd(pctx, "a", "p", 1); err != nil {
		t.Fatal(err)
	}
	p = pl.Take()
	synced := make(chan struct{})
	go func() { s.Sync(); close(synced) }()
	select {
	case <-synced:
		t.Fatal("Sync returned while the commit before it was still syncing")
	case <-time.After(100 * time.Millisecond):
	}
	fs.ReleaseSyncs()
	<-synced
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if !p.Ready() || p.Wait(ctx) != nil {
		t.Fatal("after Sync the Pending of a write made during the earlier commit is not Ready")
	}
}

// P6 in the health check: once the storage cannot write its files, the
// store is unhealthy at once, before any write meets the refusal.
func TestHealthyReportsAStorageThatCannotFlush_P6(t *testing.T) {
	fs := faultfs.New(vfs.Default)
	s := openStore(t, fs, t.TempDir(), Config{})
	fs.FillNewFiles()
	val := make([]byte, 1024)
	for i := 0; s.db.StorageErr() == nil; i++ {
		if i == 20000 {
			t.Fatal("no flush failed after 20 MB of writes")
		}
		if _, err := s.KVSet(t.Context(), "a", fmt.Sprint(i), val, KVSetOptions{}); err != nil {
			break // the refusal came first: Healthy must agree all the same
		}
	}
	if err := s.Healthy(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Healthy() = %v once the storage cannot flush, want ErrUnavailable", err)
	}
}

// A write of several keys one of which cannot be read (a bad sector under
// its table) answers the error and changes none of them: it used to delete
// or set the keys before the unreadable one and still answer the error.
func TestAMultiKeyWriteWithAnUnreadableKeyChangesNothing(t *testing.T) {
	fs := faultfs.New(vfs.NewMem())
	ts := openStore(t, fs, "db", Config{})
	val := bytes.Repeat([]byte("v"), 1024)
	const n = 2000 // many table blocks: the last key's is not read with the first's
	for i := range n {
		if _, err := ts.Set(ksbg, "a", fmt.Sprintf("k%05d", i), val, SetOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ts.close()
	ts = openStore(t, fs, "db", Config{}) // an empty cache; the keys are in tables
	first, last := fmt.Sprintf("k%05d", 0), fmt.Sprintf("k%05d", n-1)
	if _, found, err := ts.Get(ksbg, "a", first); err != nil || !found {
		t.Fatalf("Get %s: %v %v", first, found, err)
	}
	fs.FailTableReads()
	if _, err := ts.Del(ksbg, "a", []string{first, last}); err == nil {
		t.Fatal("DEL of an unreadable key answered no error")
	}
	if _, err := ts.MSet(ksbg, "a", []KeyValue{{ID: first, Value: []byte("x")}, {ID: last, Value: []byte("y")}}, false); err == nil {
		t.Fatal("MSET over an unreadable key answered no error")
	}
	if _, err := ts.Rename(ksbg, "a", first, last, false); err == nil {
		t.Fatal("RENAME onto an unreadable key answered no error")
	}
	fs.Free()
	for _, id := range []string{first, last} {
		if v, found, err := ts.Get(ksbg, "a", id); err != nil || !found || !bytes.Equal(v, val) {
			t.Fatalf("%s after the refused writes: %q %v %v", id, v, found, err)
		}
	}
}
