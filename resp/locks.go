package resp

import (
	"errors"

	"github.com/concurrencydb/concurrencydb/core"
)

// LOCK.* (core/locks.go). A persistent lock is the string key holding its
// owner, so GET, PTTL, SET NX PX and DELEX IFEQ act on the same locks.

func cmdLockAcquire(x *call) {
	dur, ok := x.secondsArg(3, "lock duration")
	if !ok {
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	info, err := x.store().LockAcquire(x.ctx(), acc, id, string(x.args[2]), dur)
	switch {
	case errors.Is(err, core.ErrLocked):
		x.null()
	case err != nil:
		x.err(err)
	default:
		x.int(int64(info.Token))
	}
}

func cmdLockGet(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	info, err := x.store().LockGet(x.ctx(), acc, id)
	switch {
	case errors.Is(err, core.ErrNotFound):
		x.nullArray()
	case err != nil:
		x.err(err)
	default:
		x.array(3)
		x.bulkString(info.Owner)
		x.int(info.RemainingMs)
		x.int(int64(info.Token))
	}
}

func cmdLockRelease(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	released, err := x.store().LockRelease(x.ctx(), acc, id, string(x.args[2]))
	x.intReply(int64(boolInt(released)), err)
}
