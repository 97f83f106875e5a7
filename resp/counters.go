package resp

import (
	"errors"
	"math"

	"github.com/concurrencydb/concurrencydb/core"
)

// INCR and friends (core.Store.IncrBy: on a sequence a non-negative delta
// advances it) and the CTR.* extension commands (core/counters.go).

// incrBy runs INCRBY delta, or DECRBY delta with decr.
func (x *call) incrBy(delta int64, decr bool) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	var n int64
	var err error
	if decr {
		n, err = x.store().DecrBy(x.ctx(), acc, id, delta)
	} else {
		n, err = x.store().IncrBy(x.ctx(), acc, id, delta)
	}
	x.intReply(n, err)
}

func cmdIncr(x *call) { x.incrBy(1, false) }
func cmdDecr(x *call) { x.incrBy(1, true) }

func cmdIncrBy(x *call) {
	if d, ok := x.intArg(2); ok {
		x.incrBy(d, false)
	}
}

func cmdDecrBy(x *call) {
	d, ok := x.intArg(2)
	if !ok {
		return
	}
	if d == math.MinInt64 {
		x.errorText("ERR decrement would overflow")
		return
	}
	x.incrBy(d, true)
}

func cmdIncrByFloat(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	v, err := x.store().IncrByFloat(x.ctx(), acc, id, x.args[2])
	x.value(v, true, err)
}

func cmdCtrAdd(x *call) {
	d, ok := x.intArg(2)
	if !ok {
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	n, err := x.store().CtrAdd(x.ctx(), acc, id, d)
	x.intReply(n, err)
}

func cmdCtrGet(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	n, err := x.store().CtrGet(x.ctx(), acc, id)
	switch {
	case errors.Is(err, core.ErrNotFound):
		x.null()
	default:
		x.intReply(n, err)
	}
}
