package core

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// 10,000 waiters queue on one mutex, one after another; a tenth of them
// give up (their context ends) while the queue drains. Every other waiter
// is granted, in exactly the order it queued, each with a new handle, with
// no error; the ones that gave up are never granted and leave the queue
// (M1, M2, D3).
func TestTenThousandMutexWaitersServedInFIFOOrder_M1(t *testing.T) {
	const n = 10000
	s := openStore(t, vfs.NewMem(), "db", Config{})
	first, err := s.MutexLock(ctxT(t), "a", "hot", time.Hour, 0)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var order []int
	var handles []uint64
	errs := make(chan error, n)
	cancels := make([]context.CancelFunc, n)
	gaveUp := make([]bool, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(ctxT(t))
		cancels[i] = cancel
		gaveUp[i] = i%10 == 3
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := s.MutexLock(ctx, "a", "hot", time.Hour, time.Hour)
			if err != nil {
				if !gaveUp[i] || !errors.Is(err, context.Canceled) {
					errs <- err
				}
				return
			}
			mu.Lock()
			order = append(order, i)
			handles = append(handles, h)
			mu.Unlock()
			if err := s.MutexUnlock("a", "hot", h); err != nil {
				errs <- err
			}
		}()
		// The queue order is fixed when MutexLock enqueues: wait for it.
		for s.MutexWaiters() != i+1 {
			runtime.Gosched()
		}
	}

	// Some give up before the queue moves, the rest while it drains.
	for i := 0; i < n/2; i++ {
		if gaveUp[i] {
			cancels[i]()
		}
	}
	if err := s.MutexUnlock("a", "hot", first); err != nil {
		t.Fatal(err)
	}
	for i := n / 2; i < n; i++ {
		if gaveUp[i] {
			cancels[i]()
		}
	}
	wg.Wait()
	for _, c := range cancels {
		c()
	}
	close(errs)
	for err := range errs {
		t.Fatalf("waiter failed: %v", err)
	}

	granted := map[int]bool{}
	for k, i := range order {
		granted[i] = true
		if k > 0 && i <= order[k-1] {
			t.Fatalf("grant %d went to waiter %d after waiter %d: not FIFO", k, i, order[k-1])
		}
		if k > 0 && handles[k] <= handles[k-1] || handles[k] <= first {
			t.Fatalf("handle %d (%d) is not above the earlier ones", k, handles[k])
		}
		if gaveUp[i] && i < n/2 {
			t.Fatalf("waiter %d gave up before the queue moved but was granted", i)
		}
	}
	for i := 0; i < n; i++ {
		if !gaveUp[i] && !granted[i] {
			t.Fatalf("waiter %d was never granted", i)
		}
	}
	if w := s.MutexWaiters(); w != 0 {
		t.Fatalf("%d waiters left in the queue", w)
	}
	if _, err := s.MutexLock(ctxT(t), "a", "hot", time.Second, 0); err != nil {
		t.Fatalf("mutex not free after the queue drained: %v", err)
	}
	t.Logf("%d of %d waiters granted in FIFO order", len(order), n)
}

// Durations of zero, negative, NaN-derived, huge (above max_duration) and
// waits above max_wait are refused with ErrInvalid, and hold nothing.
func TestMutexAndLockDurationsOutOfRangeAreInvalid(t *testing.T) {
	s := openStore(t, vfs.NewMem(), "db", Config{MaxDuration: time.Minute, MaxWait: time.Second})
	ctx := ctxT(t)
	for _, d := range []time.Duration{0, -1, -time.Hour, time.Minute + 1, math.MaxInt64, math.MinInt64} {
		if _, err := s.MutexLock(ctx, "a", "m", d, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("MutexLock dur %v: %v, want ErrInvalid", d, err)
		}
		if _, err := s.LockAcquire(ctx, "a", "l", "o", d); !errors.Is(err, ErrInvalid) {
			t.Errorf("LockAcquire dur %v: %v, want ErrInvalid", d, err)
		}
	}
	for _, w := range []time.Duration{-1, time.Second + 1, math.MaxInt64, math.MinInt64} {
		if _, err := s.MutexLock(ctx, "a", "m", time.Second, w); !errors.Is(err, ErrInvalid) {
			t.Errorf("MutexLock wait %v: %v, want ErrInvalid", w, err)
		}
	}
	h, err := s.MutexLock(ctx, "a", "m", time.Second, 0)
	if err != nil {
		t.Fatalf("mutex held after refused locks: %v", err)
	}
	if err := s.MutexExtend("a", "m", h, time.Minute+1); !errors.Is(err, ErrInvalid) {
		t.Errorf("MutexExtend above max: %v", err)
	}
	if _, err := s.LockGet(ctx, "a", "l"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lock exists after refused acquires: %v", err)
	}
}
