package core

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Mutexes live in memory only, by design: a FIFO queue of waiters per name,
// a holder with a duration, and nothing on disk but the epoch that makes
// handles unique across restarts (D3). Mutex names are a namespace of their
// own, apart from the keyspace. A blocked waiter holds only its own
// goroutine, never the apply lock (M1, M2).

// handleSeqBits is how many low bits of a handle count grants within one
// epoch (one process start); the epoch fills the bits above.
const handleSeqBits = 40

type mutexKey struct{ acc, name string }

type mutexTable struct {
	clock   Clock
	epoch   uint64
	closedc chan struct{}
	mu      struct {
		sync.Mutex
		seq    uint64
		timers uint64 // last expiry timer id handed out
		m      map[mutexKey]*mutexState
		closed bool
	}
}

type mutexState struct {
	holder  uint64      // 0 when free
	stop    func() bool // cancels the holder's expiry timer
	timer   uint64      // id of the holder's current expiry timer
	waiters list.List   // of *waiter, first come first served (M1)
}

type waiter struct {
	dur     time.Duration
	granted chan uint64 // capacity 1: granting never blocks the granter
	handle  uint64      // set under mu when granted
	elem    *list.Element
}

func (mt *mutexTable) init(clock Clock, epoch uint64) {
	mt.clock = clock
	mt.epoch = epoch
	mt.closedc = make(chan struct{})
	mt.mu.m = make(map[mutexKey]*mutexState)
}

// close fails every waiter with ErrClosed and stops all expiry timers.
func (mt *mutexTable) close() {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.mu.closed {
		return
	}
	mt.mu.closed = true
	close(mt.closedc)
	for _, st := range mt.mu.m {
		if st.stop != nil {
			st.stop()
		}
	}
}

// grantLocked makes a new handle the holder of st for dur.
func (mt *mutexTable) grantLocked(k mutexKey, st *mutexState, dur time.Duration) uint64 {
	mt.mu.seq++
	if mt.mu.seq >= 1<<handleSeqBits {
		panic("core: D3 violated: mutex handle counter exhausted within one epoch")
	}
	h := mt.epoch<<handleSeqBits | mt.mu.seq
	st.holder = h
	mt.armLocked(k, st, h, dur)
	return h
}

// armLocked starts the expiry timer of holder h, replacing any earlier one.
// Each timer has its own id because stopping a timer that has already
// fired does not stop its func: one that waits for mt.mu while the holder
// extends must not then release the extended mutex (M2).
func (mt *mutexTable) armLocked(k mutexKey, st *mutexState, h uint64, dur time.Duration) {
	if st.stop != nil {
		st.stop()
	}
	mt.mu.timers++
	id := mt.mu.timers
	st.timer = id
	st.stop = mt.clock.AfterFunc(dur, func() { mt.expire(k, h, id) })
}

func (mt *mutexTable) expire(k mutexKey, h, timer uint64) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if st := mt.mu.m[k]; st != nil && st.holder == h && st.timer == timer && !mt.mu.closed {
		mt.handOffLocked(k, st)
	}
}

// handOffLocked releases st's holder and grants the first waiter at once
// (M2), or forgets st when nobody waits.
func (mt *mutexTable) handOffLocked(k mutexKey, st *mutexState) {
	if st.stop != nil {
		st.stop()
		st.stop = nil
	}
	st.holder = 0
	front := st.waiters.Front()
	if front == nil {
		delete(mt.mu.m, k)
		return
	}
	w := st.waiters.Remove(front).(*waiter)
	w.handle = mt.grantLocked(k, st, w.dur)
	w.granted <- w.handle
}

func (s *Store) mutexKey(acc, name string) (mutexKey, error) {
	if err := CheckAccount(acc); err != nil {
		return mutexKey{}, err
	}
	if len(name) > s.cfg.MaxKeyBytes {
		return mutexKey{}, invalidf("mutex name is longer than %d bytes", s.cfg.MaxKeyBytes)
	}
	return mutexKey{acc, name}, nil
}

// MutexLock blocks until the mutex acc/name is granted (returns its handle)
// or wait passes (ErrTimeout) or ctx ends (ctx.Err()). wait 0 tries once.
// The holder keeps it for dur unless it unlocks or extends. A waiter whose
// ctx ends leaves the queue; if it was granted in that instant it releases
// at once, so the mutex is never held by a client that is gone (M1).
func (s *Store) MutexLock(ctx context.Context, acc, name string, dur, wait time.Duration) (uint64, error) {
	k, err := s.mutexKey(acc, name)
	if err != nil {
		return 0, err
	}
	if err := checkDuration("the mutex duration", dur, s.cfg.MaxDuration); err != nil {
		return 0, err
	}
	if wait < 0 || wait > s.cfg.MaxWait {
		return 0, invalidf("wait must be 0 to %v", s.cfg.MaxWait)
	}
	mt := &s.mutexes
	mt.mu.Lock()
	if mt.mu.closed {
		mt.mu.Unlock()
		return 0, ErrClosed
	}
	st := mt.mu.m[k]
	if st == nil {
		st = &mutexState{}
		mt.mu.m[k] = st
	}
	if st.holder == 0 && st.waiters.Len() == 0 {
		h := mt.grantLocked(k, st, dur)
		mt.mu.Unlock()
		return h, nil
	}
	if wait == 0 {
		mt.mu.Unlock()
		return 0, ErrTimeout
	}
	w := &waiter{dur: dur, granted: make(chan uint64, 1)}
	w.elem = st.waiters.PushBack(w)
	mt.mu.Unlock()

	timeout := make(chan struct{})
	stop := mt.clock.AfterFunc(wait, func() { close(timeout) })
	defer stop()
	var reason error
	select {
	case h := <-w.granted:
		return h, nil
	case <-timeout:
		reason = ErrTimeout
	case <-ctx.Done():
		reason = ctx.Err()
	case <-mt.closedc:
		reason = ErrClosed
	}

	mt.mu.Lock()
	defer mt.mu.Unlock()
	if w.handle != 0 {
		// Granted in the same instant as the wait ended.
		if reason == ErrTimeout {
			return w.handle, nil
		}
		if st := mt.mu.m[k]; st != nil && st.holder == w.handle && !mt.mu.closed {
			mt.handOffLocked(k, st)
		}
		return 0, reason
	}
	st.waiters.Remove(w.elem)
	if st.holder == 0 && st.waiters.Len() == 0 && mt.mu.m[k] == st {
		delete(mt.mu.m, k)
	}
	return 0, reason
}

// MutexExtend gives the holder handle another dur from now.
func (s *Store) MutexExtend(acc, name string, handle uint64, dur time.Duration) error {
	k, err := s.mutexKey(acc, name)
	if err != nil {
		return err
	}
	if err := checkDuration("the mutex duration", dur, s.cfg.MaxDuration); err != nil {
		return err
	}
	mt := &s.mutexes
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.mu.closed {
		return ErrClosed
	}
	st := mt.mu.m[k]
	if handle == 0 || st == nil || st.holder != handle {
		return ErrNotHeld
	}
	mt.armLocked(k, st, handle, dur)
	return nil
}

// MutexUnlock releases the mutex held by handle and grants it to the next
// waiter at once. A handle that does not hold it (0 never does) is
// ErrNotHeld.
func (s *Store) MutexUnlock(acc, name string, handle uint64) error {
	return s.mutexRelease(acc, name, handle, false)
}

// MutexForceUnlock releases the mutex whoever holds it (an operator
// action) and grants it to the next waiter; success also when free.
func (s *Store) MutexForceUnlock(acc, name string) error {
	return s.mutexRelease(acc, name, 0, true)
}

func (s *Store) mutexRelease(acc, name string, handle uint64, force bool) error {
	k, err := s.mutexKey(acc, name)
	if err != nil {
		return err
	}
	mt := &s.mutexes
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.mu.closed {
		return ErrClosed
	}
	st := mt.mu.m[k]
	if force {
		if st != nil && st.holder != 0 {
			mt.handOffLocked(k, st)
		}
		return nil
	}
	if handle == 0 || st == nil || st.holder != handle {
		return ErrNotHeld
	}
	mt.handOffLocked(k, st)
	return nil
}

// MutexWaiters is the number of clients blocked on any mutex.
func (s *Store) MutexWaiters() int {
	mt := &s.mutexes
	mt.mu.Lock()
	defer mt.mu.Unlock()
	n := 0
	for _, st := range mt.mu.m {
		n += st.waiters.Len()
	}
	return n
}
