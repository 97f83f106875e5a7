package resp

import (
	"errors"

	"github.com/concurrencydb/concurrencydb/core"
)

// SEQ.* (core/sequences.go).

func cmdSeqNext(x *call) {
	count := uint64(1)
	switch {
	case len(x.args) == 2:
	case len(x.args) == 4 && x.is(2, "COUNT"):
		n, ok := x.uintArg(3)
		if !ok {
			return
		}
		count = n
	default:
		x.syntaxErr()
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	v, err := x.store().SeqNext(x.ctx(), acc, id, count)
	if err != nil {
		x.err(err)
		return
	}
	x.int(int64(v))
}

func cmdSeqGet(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	v, err := x.store().SeqGet(x.ctx(), acc, id)
	switch {
	case errors.Is(err, core.ErrNotFound):
		x.null()
	case err != nil:
		x.err(err)
	default:
		x.int(int64(v))
	}
}

func cmdSeqReset(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	if err := x.store().SeqReset(x.ctx(), acc, id); err != nil {
		x.err(err)
		return
	}
	x.ok()
}
