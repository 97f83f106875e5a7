package core

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// waitForWaiters blocks until n clients wait on mutexes (the queue order is
// set when MutexLock enqueues, so tests wait for it before the next one).
func waitForWaiters(t *testing.T, s *testStore, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.MutexWaiters() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d mutex waiters after 20s, want %d", s.MutexWaiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustMutex(t *testing.T, s *testStore, name string, dur time.Duration) uint64 {
	t.Helper()
	h, err := s.MutexLock(ctxT(t), "a", name, dur, 0)
	if err != nil {
		t.Fatalf("MutexLock(%s): %v", name, err)
	}
	return h
}

// lockAsync starts a blocking MutexLock in the background.
func lockAsync(ctx context.Context, s *testStore, name string, dur, wait time.Duration) <-chan result {
	return goCall(func() (any, error) { return s.MutexLock(ctx, "a", name, dur, wait) })
}

// firstResult waits for the first of cs to deliver and returns its index.
func firstResult(t *testing.T, cs []<-chan result) (int, result) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i, c := range cs {
			select {
			case r := <-c:
				return i, r
			default:
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatal("no waiter returned within 20s")
	return 0, result{}
}

// assertHeld checks that a try-once lock of name fails: someone holds it.
func assertHeld(t *testing.T, s *testStore, name string) {
	t.Helper()
	if h, err := s.MutexLock(ctxT(t), "a", name, time.Second, 0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("try-once lock of a held mutex = (%d, %v), want ErrTimeout", h, err)
	}
}

// assertFree checks that a try-once lock succeeds, then unlocks it.
func assertFree(t *testing.T, s *testStore, name string) {
	t.Helper()
	h, err := s.MutexLock(ctxT(t), "a", name, time.Second, 0)
	if err != nil {
		t.Fatalf("try-once lock of a free mutex = %v", err)
	}
	if err := s.MutexUnlock("a", name, h); err != nil {
		t.Fatal(err)
	}
}

func TestMutexTryOnce_M2(t *testing.T) {
	s, _ := newStore(t)
	h := mustMutex(t, s, "m", time.Minute)
	if h == 0 {
		t.Fatal("handle 0 is the force-unlock handle and must never be issued")
	}
	assertHeld(t, s, "m")
	assertFree(t, s, "other") // names are independent
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	h2 := mustMutex(t, s, "m", time.Minute)
	if h2 == h {
		t.Fatal("a handle was issued twice")
	}
}

// TestMutexNamesAreNotKeys: a mutex and a key of the same name do not
// interfere (mutex names are their own namespace).
func TestMutexNamesAreNotKeys(t *testing.T) {
	s, _ := newStore(t)
	mustLock(t, s, "m", "owner", time.Minute)
	h := mustMutex(t, s, "m", time.Minute)
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	if li, err := s.LockGet(ctxT(t), "a", "m"); err != nil || li.Owner != "owner" {
		t.Fatalf("lock after mutex use = (%+v, %v)", li, err)
	}
}

// TestMutexFIFO_M1: waiters are granted in arrival order, each at once
// when the holder before it unlocks.
func TestMutexFIFO_M1(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	h := mustMutex(t, s, "m", time.Minute)
	const n = 5
	waiters := make([]<-chan result, n)
	for i := range n {
		waiters[i] = lockAsync(ctx, s, "m", time.Minute, time.Minute)
		waitForWaiters(t, s, i+1)
	}
	for i := range n {
		if err := s.MutexUnlock("a", "m", h); err != nil {
			t.Fatalf("unlock before waiter %d: %v", i, err)
		}
		j, r := firstResult(t, waiters[i:])
		if j != 0 || r.err != nil {
			t.Fatalf("after unlock %d: waiter %d returned (%v, %v), want waiter %d granted", i, i+j, r.v, r.err, i)
		}
		h = r.v.(uint64)
	}
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	assertFree(t, s, "m")
}

// TestMutexWaitTimeout_M1: a waiter whose wait passes gets ErrTimeout and
// leaves the queue; the holder keeps the mutex.
func TestMutexWaitTimeout_M1(t *testing.T) {
	ctx := ctxT(t)
	s, clock := newStore(t)
	h := mustMutex(t, s, "m", time.Hour)
	w := lockAsync(ctx, s, "m", time.Minute, 5*time.Second)
	waitForWaiters(t, s, 1)
	clock.Advance(4 * time.Second)
	mustNotReturn(t, w, "waiter before its wait passed")
	clock.Advance(time.Second)
	if r := recv(t, w); !errors.Is(r.err, ErrTimeout) {
		t.Fatalf("waiter = (%v, %v), want ErrTimeout", r.v, r.err)
	}
	waitForWaiters(t, s, 0)
	assertHeld(t, s, "m")
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	assertFree(t, s, "m")
}

// TestMutexCancelledWaiterIsNeverGranted_M1: a waiter whose context ends
// (its client disconnected) leaves the queue; the next unlock skips it.
func TestMutexCancelledWaiterIsNeverGranted_M1(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	h := mustMutex(t, s, "m", time.Hour)
	cctx, cancel := context.WithCancel(ctx)
	gone := lockAsync(cctx, s, "m", time.Hour, time.Hour)
	waitForWaiters(t, s, 1)
	next := lockAsync(ctx, s, "m", time.Hour, time.Hour)
	waitForWaiters(t, s, 2)
	cancel()
	if r := recv(t, gone); !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled waiter = (%v, %v), want context.Canceled", r.v, r.err)
	}
	waitForWaiters(t, s, 1)
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	r := recv(t, next)
	if r.err != nil {
		t.Fatalf("waiter after the cancelled one = %v", r.err)
	}
	if err := s.MutexUnlock("a", "m", r.v.(uint64)); err != nil {
		t.Fatal(err)
	}
	// Nobody holds it now: the cancelled waiter was not granted.
	assertFree(t, s, "m")
}

// A waiter whose context ends in the same instant as it is granted the
// mutex passes it on to the next waiter (M1): its client is gone, and
// would otherwise hold the mutex for its whole duration. The instant is
// made by cancelling and handing over under the table's lock: the waiter
// wakes on the cancel (or, had it not run yet, finds both ready and takes
// either), then waits for the lock and finds itself granted. In practice
// every round ends cancelled; the test requires that some do.
func TestMutexWaiterCancelledAsItIsGrantedPassesItOn_M1(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	mt := &s.mutexes
	granted, cancelled := 0, 0
	for i := range 100 {
		name := fmt.Sprint("m", i)
		mustMutex(t, s, name, time.Hour)
		cctx, cancel := context.WithCancel(ctx)
		gone := lockAsync(cctx, s, name, time.Hour, time.Hour)
		waitForWaiters(t, s, 1)
		next := lockAsync(ctx, s, name, time.Hour, time.Hour)
		waitForWaiters(t, s, 2)

		k := mutexKey{"a", name}
		mt.mu.Lock()
		cancel()
		mt.handOffLocked(k, mt.mu.m[k]) // the holder leaves; gone is granted
		mt.mu.Unlock()

		r := recv(t, gone)
		if r.err == nil { // the grant won: gone holds it, as a waiter would
			granted++
			if err := s.MutexUnlock("a", name, r.v.(uint64)); err != nil {
				t.Fatal(err)
			}
		} else if errors.Is(r.err, context.Canceled) {
			cancelled++
		} else {
			t.Fatalf("round %d: waiter cancelled as it was granted = %v", i, r.err)
		}
		n := recv(t, next) // with the mutex passed on, next gets it
		if n.err != nil {
			t.Fatalf("round %d: the waiter behind = %v", i, n.err)
		}
		if err := s.MutexUnlock("a", name, n.v.(uint64)); err != nil {
			t.Fatal(err)
		}
		assertFree(t, s, name)
	}
	t.Logf("%d rounds granted, %d cancelled", granted, cancelled)
	if cancelled == 0 {
		t.Fatal("no round ended with the waiter cancelled after its grant: the test did not reach the case")
	}
}

// TestMutexExpiryGrantsNextWaiter_M2: when the holder's duration passes,
// the next waiter is granted at once and the old handle no longer holds.
func TestMutexExpiryGrantsNextWaiter_M2(t *testing.T) {
	ctx := ctxT(t)
	s, clock := newStore(t)
	h := mustMutex(t, s, "m", 10*time.Second)
	w := lockAsync(ctx, s, "m", 3*time.Second, time.Minute)
	waitForWaiters(t, s, 1)
	clock.Advance(9 * time.Second)
	mustNotReturn(t, w, "waiter before the holder's duration passed")
	clock.Advance(time.Second)
	r := recv(t, w)
	if r.err != nil {
		t.Fatalf("waiter after the holder expired = %v", r.err)
	}
	h2 := r.v.(uint64)
	if h2 == h {
		t.Fatal("the waiter got the expired holder's handle")
	}
	if err := s.MutexUnlock("a", "m", h); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("unlock by the expired handle = %v, want ErrNotHeld", err)
	}
	if err := s.MutexExtend("a", "m", h, time.Minute); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("extend by the expired handle = %v, want ErrNotHeld", err)
	}
	assertHeld(t, s, "m")
	clock.Advance(3 * time.Second)
	clock.Settle()
	assertFree(t, s, "m")
}

// TestMutexExtend_M2: the holder's extension counts from now; the old
// deadline no longer releases it.
func TestMutexExtend_M2(t *testing.T) {
	s, clock := newStore(t)
	h := mustMutex(t, s, "m", 10*time.Second)
	clock.Advance(5 * time.Second)
	if err := s.MutexExtend("a", "m", h, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Second) // past the first deadline
	clock.Settle()
	assertHeld(t, s, "m")
	clock.Advance(4 * time.Second)
	clock.Settle()
	assertFree(t, s, "m")
	if err := s.MutexExtend("a", "m", h, time.Second); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("extend after expiry = %v, want ErrNotHeld", err)
	}
	other := mustMutex(t, s, "m", time.Minute)
	for _, bad := range []uint64{0, h, other + 1} {
		if err := s.MutexExtend("a", "m", bad, time.Second); !errors.Is(err, ErrNotHeld) {
			t.Fatalf("extend by handle %d = %v, want ErrNotHeld", bad, err)
		}
	}
}

// TestMutexExtendRacingExpiry_M2: an extension that succeeds while the old
// deadline's timer is already firing must win: the holder was told it holds
// the mutex for another dur, so the stale timer must not release it.
func TestMutexExtendRacingExpiry_M2(t *testing.T) {
	s, clock := newStore(t)
	h := mustMutex(t, s, "m", 10*time.Second)
	gate := make(chan struct{})
	clock.mu.Lock()
	clock.gate = gate
	clock.mu.Unlock()
	clock.Advance(10 * time.Second) // the expiry timer has started, held at the gate
	err := s.MutexExtend("a", "m", h, 10*time.Second)
	clock.mu.Lock()
	clock.gate = nil
	clock.mu.Unlock()
	close(gate)
	clock.Settle()
	if err != nil {
		// Refusing the extension is consistent too: then the mutex is gone.
		if !errors.Is(err, ErrNotHeld) {
			t.Fatalf("extend = %v, want nil or ErrNotHeld", err)
		}
		return
	}
	assertHeld(t, s, "m")
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatalf("unlock after a successful extension = %v, want nil", err)
	}
}

func TestMutexUnlock_M2(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	if err := s.MutexForceUnlock("a", "m"); err != nil {
		t.Fatalf("force unlock of a free mutex = %v", err)
	}
	if err := s.MutexUnlock("a", "m", 12345); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("unlock of a free mutex by a handle = %v, want ErrNotHeld", err)
	}
	h := mustMutex(t, s, "m", time.Hour)
	if err := s.MutexUnlock("a", "m", h+1); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("unlock by a wrong handle = %v, want ErrNotHeld", err)
	}
	if err := s.MutexUnlock("b", "m", h); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("unlock in another account = %v, want ErrNotHeld", err)
	}
	assertHeld(t, s, "m")
	// Force unlock hands the mutex to the next waiter.
	w := lockAsync(ctx, s, "m", time.Hour, time.Hour)
	waitForWaiters(t, s, 1)
	if err := s.MutexForceUnlock("a", "m"); err != nil {
		t.Fatal(err)
	}
	r := recv(t, w)
	if r.err != nil {
		t.Fatalf("waiter after force unlock = %v", r.err)
	}
	if err := s.MutexUnlock("a", "m", h); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("unlock by the force-unlocked handle = %v, want ErrNotHeld", err)
	}
	if err := s.MutexUnlock("a", "m", r.v.(uint64)); err != nil {
		t.Fatal(err)
	}
	assertFree(t, s, "m")
}

func TestMutexLockRefusesBadArguments(t *testing.T) {
	s, _ := newStore(t)
	tests := []struct {
		name      string
		acc       string
		dur, wait time.Duration
	}{
		{"zero dur", "a", 0, 0},
		{"negative dur", "a", -time.Second, 0},
		{"dur above max", "a", 25 * time.Hour, 0},
		{"negative wait", "a", time.Second, -time.Second},
		{"wait above max", "a", time.Second, time.Hour + time.Second},
		{"empty account", "", time.Second, 0},
	}
	for _, tt := range tests {
		if _, err := s.MutexLock(ctxT(t), tt.acc, "m", tt.dur, tt.wait); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: MutexLock = %v, want ErrInvalid", tt.name, err)
		}
	}
	assertFree(t, s, "m")
}

// TestMutexWaitersFailOnClose: a blocked waiter is answered ErrClosed when
// the store closes, and later requests are refused.
func TestMutexWaitersFailOnClose(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	mustMutex(t, s, "m", time.Hour)
	w := lockAsync(ctx, s, "m", time.Hour, time.Hour)
	waitForWaiters(t, s, 1)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, w); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("waiter at close = (%v, %v), want ErrClosed", r.v, r.err)
	}
	if _, err := s.MutexLock(ctx, "a", "n", time.Second, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("MutexLock after close = %v, want ErrClosed", err)
	}
}

// TestMutexHandlesNeverRepeatAcrossRestart_D3: every handle issued after
// reopening the store on the same data is above every handle before.
func TestMutexHandlesNeverRepeatAcrossRestart_D3(t *testing.T) {
	s := openStore(t, nil, t.TempDir(), Config{Clock: newFakeClock()})
	var prevMax uint64
	for round := range 3 {
		if round > 0 {
			s = s.reopen()
		}
		var roundMax uint64
		for _, name := range []string{"m", "n", "m"} {
			h := mustMutex(t, s, name, time.Hour)
			if h <= prevMax {
				t.Fatalf("round %d: handle %d is not above %d, issued before the restart", round, h, prevMax)
			}
			roundMax = max(roundMax, h)
			if err := s.MutexUnlock("a", name, h); err != nil {
				t.Fatal(err)
			}
		}
		prevMax = roundMax
	}
}

// TestMutexLockAsync_M1 checks the contract an event loop relies on
// (MutexLockAsync): it answers at once when it can; otherwise done is
// called exactly once, and for a grant within the unlocking call itself
// (so the loop running MUNLOCK delivers it in the same pass); a wait that
// passes, is cancelled or is stopped says so; and Cancel after a grant not
// yet delivered passes the mutex on (the client is gone).
func TestMutexLockAsync_M1(t *testing.T) {
	s, clock := newStore(t)
	type outcome struct {
		h   uint64
		err error
	}
	outcomes := make(chan outcome, 10)
	done := func(h uint64, err error) { outcomes <- outcome{h, err} }
	lock := func(wait time.Duration) (uint64, *MutexWait, error) {
		return s.MutexLockAsync("a", "m", time.Hour, wait, done)
	}
	next := func(what string) outcome {
		t.Helper()
		select {
		case o := <-outcomes:
			return o
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: done not called within 10s", what)
			return outcome{}
		}
	}
	noOutcome := func(what string) {
		t.Helper()
		select {
		case o := <-outcomes:
			t.Fatalf("%s: done called with (%d, %v), want not at all", what, o.h, o.err)
		default:
		}
	}

	// Free: granted at once, no wait.
	h, w, err := lock(time.Hour)
	if err != nil || w != nil || h == 0 {
		t.Fatalf("lock of a free mutex = (%d, %v, %v), want a handle at once", h, w, err)
	}
	// Held, wait 0: refused at once.
	if h2, w2, err := lock(0); !errors.Is(err, ErrTimeout) || w2 != nil || h2 != 0 {
		t.Fatalf("try-once lock of a held mutex = (%d, %v, %v), want ErrTimeout at once", h2, w2, err)
	}

	// Queued, then granted within the unlock.
	_, w, err = lock(time.Hour)
	if err != nil || w == nil {
		t.Fatalf("lock of a held mutex = (%v, %v), want a queued wait", w, err)
	}
	noOutcome("queued wait")
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	var o outcome
	select {
	case o = <-outcomes:
	default:
		t.Fatal("MutexUnlock returned before the next waiter's done was called")
	}
	if o.err != nil || o.h == 0 || o.h == h {
		t.Fatalf("grant = (%d, %v), want a new handle", o.h, o.err)
	}
	assertHeld(t, s, "m")

	// A second waiter; the first one's client goes away before its grant
	// was delivered: Cancel passes the mutex to the second at once.
	_, w2, err := lock(time.Hour)
	if err != nil || w2 == nil {
		t.Fatalf("second waiter = (%v, %v)", w2, err)
	}
	w.Cancel()
	if o := next("the waiter behind a cancelled grant"); o.err != nil || o.h == 0 {
		t.Fatalf("grant after the cancelled holder = (%d, %v)", o.h, o.err)
	}
	if err := s.MutexUnlock("a", "m", o.h); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("unlock by the cancelled grant's handle = %v, want ErrNotHeld", err)
	}
	w2.Cancel() // granted too: passes it on to nobody
	assertFree(t, s, "m")
	noOutcome("after the cancels")

	// Cancelled while queued: leaves the queue, done never called.
	h = mustMutex(t, s, "m", time.Hour)
	_, w, _ = lock(time.Hour)
	w.Cancel()
	w.Cancel() // twice is harmless
	if n := s.MutexWaiters(); n != 0 {
		t.Fatalf("%d waiters after a cancel, want 0", n)
	}
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}
	assertFree(t, s, "m")
	noOutcome("cancelled wait")

	// The wait passes: ErrTimeout, and it leaves the queue.
	h = mustMutex(t, s, "m", time.Hour)
	_, w, _ = lock(5 * time.Second)
	clock.Advance(5 * time.Second)
	if o := next("the wait passed"); !errors.Is(o.err, ErrTimeout) || o.h != 0 {
		t.Fatalf("wait passed = (%d, %v), want ErrTimeout", o.h, o.err)
	}
	waitForWaiters(t, s, 0)
	w.Cancel() // after its outcome: changes nothing
	assertHeld(t, s, "m")
	if err := s.MutexUnlock("a", "m", h); err != nil {
		t.Fatal(err)
	}

	// Stopped: ErrClosed.
	mustMutex(t, s, "m", time.Hour)
	lock(time.Hour)
	s.StopWaiters()
	if o := next("stopped"); !errors.Is(o.err, ErrClosed) {
		t.Fatalf("stopped wait = (%d, %v), want ErrClosed", o.h, o.err)
	}
	noOutcome("after the stop")
}
