package resp

import (
	"errors"

	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
)

// MLOCK, MUNLOCK, MLOCK.EXTEND (core/mutex.go): in-memory FIFO mutexes,
// the same ones the HTTP API's /mlock serves.

// cmdMLock blocks this connection only (never the loop, the apply lock or
// another connection) until the mutex is granted or the wait passes: it
// parks the connection (loop.go). A client that disconnects meanwhile
// leaves the queue and is never granted the mutex (R4, M1).
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
	c := x.c
	if c.pass == nil { // not on an event loop: a test calling exec
		h, err := x.store().MutexLock(x.ctx(), acc, name, dur, wait)
		x.out = appendMLockReply(x.out, h, err)
		return
	}
	if c.onGrant == nil {
		c.onGrant = c.pass.grant(c)
	}
	h, w, err := x.store().MutexLockAsync(acc, name, dur, wait, c.onGrant)
	if w != nil {
		x.s.park(c, w)
		return
	}
	if err == nil && (c.queued > 0 || c.conn().OutboundBuffered() > 0) {
		// Granted at once, but the replies before it are not all read
		// (or written) yet: answered inline, behind them, the grant
		// would count as delivered, and a client that went away meanwhile
		// would hold the mutex for its whole duration (M1; found by
		// review). Delivered as a parked wait's grant instead: held back
		// until they are read, passed on if the client goes first.
		if gw, gerr := x.store().GrantedWait(acc, name, h); gerr == nil {
			x.s.park(c, gw)
			c.onGrant(h, nil)
			return
		}
	}
	x.out = appendMLockReply(x.out, h, err)
}

// appendMLockReply appends MLOCK's reply: the handle, nil when the wait
// passed, or the error.
func appendMLockReply(out []byte, h uint64, err error) []byte {
	switch {
	case errors.Is(err, core.ErrTimeout):
		return redcon.AppendNull(out)
	case err != nil:
		return appendErr(out, "mlock", err)
	}
	return redcon.AppendInt(out, int64(h))
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
	if p := x.c.pass; p != nil && !x.c.offloop { // on the loop (parse stops at an off-loop command)
		p.unlockingHere()
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
