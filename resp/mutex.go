package resp

import (
	"errors"

	"github.com/concurrencydb/concurrencydb/core"
)

// MLOCK, MUNLOCK, MLOCK.EXTEND (core/mutex.go): in-memory FIFO mutexes,
// the same ones the HTTP API's /mlock serves.

// cmdMLock blocks this connection only (never the apply lock or another
// connection) until the mutex is granted or the wait passes. A client that
// disconnects meanwhile cancels the connection's context, so it leaves the
// queue and is never granted the mutex (R4, M1).
func cmdMLock(x *call) {
	dur, ok := x.secondsArg(2, "mutex duration")
	if !ok {
		return
	}
	wait, ok := x.secondsArg(3, "wait")
	if !ok {
		return
	}
	acc, name, ok := x.key(1)
	if !ok {
		return
	}
	// It runs off the event loop (loop.go), which keeps reading the
	// socket: a disconnect cancels x.ctx() and the wait ends (R4).
	h, err := x.store().MutexLock(x.ctx(), acc, name, dur, wait)
	switch {
	case errors.Is(err, core.ErrTimeout):
		x.null()
	case err != nil:
		x.err(err)
	default:
		x.int(int64(h))
	}
}

func cmdMUnlock(x *call) {
	h, ok := x.handleArg(2)
	if !ok {
		return
	}
	acc, name, ok := x.key(1)
	if !ok {
		return
	}
	if err := x.store().MutexUnlock(acc, name, h); err != nil {
		x.err(err)
		return
	}
	x.ok()
}

func cmdMLockExtend(x *call) {
	h, ok := x.handleArg(2)
	if !ok {
		return
	}
	dur, ok := x.secondsArg(3, "mutex duration")
	if !ok {
		return
	}
	acc, name, ok := x.key(1)
	if !ok {
		return
	}
	if err := x.store().MutexExtend(acc, name, h, dur); err != nil {
		x.err(err)
		return
	}
	x.ok()
}

// handleArg reads a mutex handle (core answers NOTHELD for 0: never a handle).
func (x *call) handleArg(i int) (uint64, bool) { return x.uintArg(i) }
