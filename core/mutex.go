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
// own, apart from the keyspace. A waiter is a queue entry with a callback
// (MutexLockAsync), not a goroutine: its outcome is a call made by
// whoever decides it (an unlock or force-unlock, a gone client's Cancel
// handing a grant on, the holder's expiry or the wait's timer,
// StopWaiters), so an event loop that runs MUNLOCK can deliver the next
// holder's reply at once when that holder is its own connection, and a
// waiter never holds the apply lock (M1, M2).

// handleSeqBits is how many low bits of a handle count grants within one
// epoch (one process start); the epoch fills the bits above.
const handleSeqBits = 40

type mutexKey struct{ acc, name string }

type mutexTable struct {
	clock Clock
	epoch uint64
	mu    struct {
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
	dur time.Duration
	// done gets the outcome, once, under mu: the handle, ErrTimeout or
	// ErrClosed. It must not block or call into the mutex table.
	done   func(h uint64, err error)
	handle uint64        // set under mu when granted
	elem   *list.Element // in its queue; nil once it left it
	stop   func() bool   // cancels the wait's timeout
}

func (mt *mutexTable) init(clock Clock, epoch uint64) {
	mt.clock = clock
	mt.epoch = epoch
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
	for _, st := range mt.mu.m {
		if st.stop != nil {
			st.stop()
		}
		for st.waiters.Len() > 0 {
			w := st.waiters.Remove(st.waiters.Front()).(*waiter)
			w.elem = nil
			w.stop()
			w.done(0, ErrClosed)
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
	w.elem = nil
	w.stop()
	w.handle = mt.grantLocked(k, st, w.dur)
	w.done(w.handle, nil)
}

// leaveLocked takes w, still queued, out of k's queue.
func (mt *mutexTable) leaveLocked(k mutexKey, w *waiter) {
	st := mt.mu.m[k] // a queued waiter keeps its state in the table
	st.waiters.Remove(w.elem)
	w.elem = nil
	w.stop()
	if st.holder == 0 && st.waiters.Len() == 0 {
		delete(mt.mu.m, k)
	}
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
	type outcome struct {
		h   uint64
		err error
	}
	ch := make(chan outcome, 1)
	h, mw, err := s.MutexLockAsync(acc, name, dur, wait, func(h uint64, err error) { ch <- outcome{h, err} })
	if mw == nil {
		return h, err
	}
	select {
	case o := <-ch:
		return o.h, o.err
	case <-ctx.Done():
		mw.Cancel()
		return 0, ctx.Err()
	}
}

// MutexWait is a wait queued by MutexLockAsync, or a grant made at once
// (GrantedWait).
type MutexWait struct {
	mt *mutexTable
	k  mutexKey
	w  *waiter
}

// CheckWait refuses a mutex wait out of range (ErrInvalid): MutexLock's
// check, for a request that carries a wait it does not use (an extension
// over HTTP), so that it is refused alike.
func (s *Store) CheckWait(wait time.Duration) error {
	if wait < 0 || wait > s.cfg.MaxWait {
		return invalidf("wait must be 0 to %v", s.cfg.MaxWait)
	}
	return nil
}

// MutexLockAsync is MutexLock for a caller that must not block (an event
// loop). It answers at once when it can: the handle of a mutex granted at
// once, or an error (ErrTimeout when wait is 0 and the mutex is held).
// Otherwise it queues the wait and returns it: done is called once, later,
// with the handle when the mutex is granted, or with ErrTimeout after
// wait, or ErrClosed when the store stops waiters; it is called under the
// mutex table's lock, on whichever goroutine decides (the one that
// unlocks, a timer, StopWaiters), so it must only hand the outcome on; it
// may run as soon as MutexLockAsync has released that lock, before the
// caller has stored the returned wait. A caller whose client goes away
// before the outcome reached it calls Cancel (M1).
func (s *Store) MutexLockAsync(acc, name string, dur, wait time.Duration, done func(h uint64, err error)) (uint64, *MutexWait, error) {
	k, err := s.mutexKey(acc, name)
	if err != nil {
		return 0, nil, err
	}
	if err := checkDuration("the mutex duration", dur, s.cfg.MaxDuration); err != nil {
		return 0, nil, err
	}
	if err := s.CheckWait(wait); err != nil {
		return 0, nil, err
	}
	mt := &s.mutexes
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.mu.closed {
		return 0, nil, ErrClosed
	}
	st := mt.mu.m[k]
	if st == nil {
		st = &mutexState{}
		mt.mu.m[k] = st
	}
	if st.holder == 0 && st.waiters.Len() == 0 {
		return mt.grantLocked(k, st, dur), nil, nil
	}
	if wait == 0 {
		return 0, nil, ErrTimeout
	}
	w := &waiter{dur: dur, done: done}
	w.elem = st.waiters.PushBack(w)
	w.stop = mt.clock.AfterFunc(wait, func() { mt.timeout(k, w) })
	return 0, &MutexWait{mt, k, w}, nil
}

// GrantedWait returns, for handle h that MutexLockAsync granted at once,
// a MutexWait that was granted h: Holds and Cancel then serve a caller
// that cannot hand h to its client at once (an event loop behind replies
// the client has not read) as for a wait granted later: a client that
// goes before h reached it passes the mutex on (M1).
func (s *Store) GrantedWait(acc, name string, h uint64) (*MutexWait, error) {
	k, err := s.mutexKey(acc, name)
	if err != nil {
		return nil, err
	}
	return &MutexWait{&s.mutexes, k, &waiter{handle: h}}, nil
}

// timeout ends w's wait, unless it was granted, cancelled or closed first.
func (mt *mutexTable) timeout(k mutexKey, w *waiter) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if w.elem == nil {
		return
	}
	mt.leaveLocked(k, w)
	w.done(0, ErrTimeout)
}

// Holds reports whether the wait was granted and its handle still holds
// the mutex (its hold has not run out, nor been released).
func (mw *MutexWait) Holds() bool {
	mt := mw.mt
	mt.mu.Lock()
	defer mt.mu.Unlock()
	st := mt.mu.m[mw.k]
	return mw.w.handle != 0 && st != nil && st.holder == mw.w.handle
}

// Cancel withdraws the wait of a client that is gone (M1): a wait still
// queued leaves the queue, and done is never called; a wait already
// granted (done called, its outcome not yet delivered) releases the mutex
// if it still holds it, granting the next waiter. Call it only before the
// outcome reached the client: after, the client holds the mutex rightly.
// Calling it twice, or after a timeout, changes nothing.
func (mw *MutexWait) Cancel() {
	mt := mw.mt
	mt.mu.Lock()
	defer mt.mu.Unlock()
	w := mw.w
	if w.elem != nil {
		mt.leaveLocked(mw.k, w)
		return
	}
	if st := mt.mu.m[mw.k]; w.handle != 0 && st != nil && st.holder == w.handle && !mt.mu.closed {
		mt.handOffLocked(mw.k, st)
	}
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
