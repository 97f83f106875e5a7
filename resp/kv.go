package resp

import (
	"errors"

	"github.com/concurrencydb/concurrencydb/core"
)

// KV.* (core/kv.go): versioned values with compare-and-set.

func cmdKVGet(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	kv, err := x.store().KVGet(x.ctx(), acc, id)
	switch {
	case errors.Is(err, core.ErrNotFound):
		x.nullArray()
	case err != nil:
		x.err(err)
	default:
		x.array(2)
		x.bulk(kv.Value)
		x.int(int64(kv.Version))
	}
}

func cmdKVSet(x *call) {
	var opts core.KVSetOptions
	hasVer, hasTTL := false, false
	for i := 3; i < len(x.args); i += 2 {
		if i+1 >= len(x.args) {
			x.syntaxErr()
			return
		}
		switch {
		case x.is(i, "VER") && !hasVer:
			v, ok := x.uintArg(i + 1)
			if !ok {
				return
			}
			opts.If, hasVer = core.Precondition{Cond: core.CondVersion, Version: v}, true
		case x.is(i, "TTL") && !hasTTL:
			d, ok := x.secondsArg(i+1, "TTL")
			if !ok {
				return
			}
			opts.TTL, opts.HasTTL, hasTTL = d, true, true
		default:
			x.syntaxErr()
			return
		}
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	// NB: core copies the value it keeps (txn.put), so passing the
	// connection's read buffer is safe.
	ver, err := x.store().KVSet(x.ctx(), acc, id, x.args[2], opts)
	if err != nil {
		x.err(err)
		return
	}
	x.int(int64(ver))
}

func cmdKVDel(x *call) {
	var cond core.Precondition
	switch {
	case len(x.args) == 2:
	case len(x.args) == 4 && x.is(2, "VER"):
		v, ok := x.uintArg(3)
		if !ok {
			return
		}
		cond = core.Precondition{Cond: core.CondVersion, Version: v}
	default:
		x.syntaxErr()
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	deleted, err := x.store().KVDelete(x.ctx(), acc, id, cond)
	switch {
	case errors.Is(err, core.ErrNotFound):
		x.int(0)
	case err != nil:
		x.err(err)
	case deleted:
		x.int(1)
	default:
		x.int(0)
	}
}
