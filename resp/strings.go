package resp

import (
	"bytes"

	"github.com/concurrencydb/concurrencydb/core"
)

// The string commands: parse, call core (core/strings.go), encode.

// expiryOption reports whether args[i] is an expiry option (EX, PX, EXAT,
// PXAT) with an amount after it. NB: as Redis, the options are parsed
// first and the amount after them, so a syntax error wins over a bad
// number (SET k v PX EX x is a syntax error).
func (x *call) expiryOption(i int) bool {
	if i+1 >= len(x.args) {
		return false
	}
	_, _, ok := expiryUnit(x.args[i], "")
	return ok
}

// expiryValue reads the argument of the expiry option at args[i] into exp;
// false after answering its error.
func (x *call) expiryValue(i int, exp *core.Expiry) bool {
	e, err := x.parseExpiry(i)
	if err != nil {
		x.err(err)
		return false
	}
	*exp = e
	return true
}

// parseExpiry reads the expiry option at args[i] and its amount:
// ErrNotInteger or ErrInvalidExpire when the amount is bad.
func (x *call) parseExpiry(i int) (core.Expiry, error) {
	unit, mode, _ := expiryUnit(x.args[i], "") // expiryOption checked it
	n, ok := core.ParseInt(x.args[i+1])
	if !ok {
		return core.Expiry{}, core.ErrNotInteger
	}
	ms, ok := toMs(n, unit, mode)
	if !ok || n <= 0 {
		return core.Expiry{}, core.ErrInvalidExpire
	}
	return core.Expiry{Mode: mode, Ms: ms}, nil
}

// parseSet parses SET's options from args[3:].
func (x *call) parseSet() (opts core.SetOptions, get bool, ok bool) {
	// NB: as Redis, an option may be repeated (the last one's argument
	// wins: SET k v EX 10 EX 20 expires in 20 s); only options that
	// contradict each other (NX XX, EX PX, KEEPTTL EX) are a syntax error.
	hasCond := false
	var expOpt oneOption // EX, PX, EXAT, PXAT or KEEPTTL
	sameExp := func(i int) bool { return expOpt.same(x.args[i]) }
	expAt := -1 // the expiry option whose amount counts (the last)
	opts.Expiry.Mode = core.ExpiryClear
	for i := 3; i < len(x.args); i++ {
		if x.expiryOption(i) {
			if !sameExp(i) {
				x.syntaxErr()
				return opts, false, false
			}
			expAt = i
			i++
			continue
		}
		cond := core.SetAlways
		switch {
		case x.is(i, "NX"):
			cond = core.SetIfAbsent
		case x.is(i, "XX"):
			cond = core.SetIfPresent
		case x.is(i, "IFEQ") && i+1 < len(x.args):
			cond, opts.Match = core.SetIfEqual, x.args[i+1]
			i++
		case x.is(i, "IFNE") && i+1 < len(x.args):
			cond, opts.Match = core.SetIfNotEqual, x.args[i+1]
			i++
		case x.is(i, "GET"):
			get = true
			continue
		case x.is(i, "KEEPTTL") && sameExp(i):
			opts.Expiry.Mode = core.ExpiryKeep
			continue
		default:
			x.syntaxErr()
			return opts, false, false
		}
		if hasCond && (cond != opts.Cond || cond == core.SetIfEqual || cond == core.SetIfNotEqual) {
			x.syntaxErr() // NX XX; IFEQ twice compares with one value only
			return opts, false, false
		}
		opts.Cond, hasCond = cond, true
	}
	if expAt >= 0 && !x.expiryValue(expAt, &opts.Expiry) {
		return opts, false, false
	}
	return opts, get, true
}

// set runs core.Set on args[1] with value and writes reply: with get, the
// old value; else OK, or nil when the condition failed.
func (x *call) set(value []byte, opts core.SetOptions, get bool) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	res, err := x.store().Set(x.ctx(), acc, id, value, opts)
	switch {
	case err != nil:
		x.err(err)
	case get && res.OldExists:
		x.bulk(res.Old)
	case get, !res.Written:
		x.null()
	default:
		x.ok()
	}
}

func cmdSet(x *call) {
	opts, get, ok := x.parseSet()
	if ok {
		x.set(x.args[2], opts, get)
	}
}

func cmdSetNX(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	res, err := x.store().Set(x.ctx(), acc, id, x.args[2], core.SetOptions{Cond: core.SetIfAbsent})
	if err != nil {
		x.err(err)
		return
	}
	x.int(int64(boolInt(res.Written)))
}

func (x *call) setEx(unit int64) {
	n, ok := x.intArg(2)
	if !ok {
		return
	}
	ms, ok := toMs(n, unit, core.ExpiryIn)
	if !ok || n <= 0 {
		x.err(core.ErrInvalidExpire)
		return
	}
	x.set(x.args[3], core.SetOptions{Expiry: core.Expiry{Mode: core.ExpiryIn, Ms: ms}}, false)
}

func cmdSetEX(x *call)  { x.setEx(1000) }
func cmdPSetEX(x *call) { x.setEx(1) }

func cmdGetSet(x *call) { x.set(x.args[2], core.SetOptions{}, true) }

func cmdGet(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	v, found, err := x.store().Get(x.ctx(), acc, id)
	x.value(v, found, err)
}

// value writes a bulk value, nil when not found.
func (x *call) value(v []byte, found bool, err error) {
	switch {
	case err != nil:
		x.err(err)
	case !found:
		x.null()
	default:
		x.bulk(v)
	}
}

func cmdGetDel(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	v, found, err := x.store().GetDel(x.ctx(), acc, id)
	x.value(v, found, err)
}

// oneOption is the one option of a kind a command takes (SET's and
// GETEX's expiry): as in Redis, it may be repeated, the last argument
// winning, but not mixed with another of its kind.
type oneOption struct{ name []byte }

func (o *oneOption) same(word []byte) bool {
	if o.name != nil && !bytes.EqualFold(o.name, word) {
		return false
	}
	o.name = word
	return true
}

func cmdGetEx(x *call) {
	exp := core.Expiry{Mode: core.ExpiryKeep}
	var opt oneOption // EX, PX, EXAT, PXAT or PERSIST
	expAt := -1
	for i := 2; i < len(x.args); i++ {
		switch {
		case x.expiryOption(i) && opt.same(x.args[i]):
			expAt = i
			i++
		case x.is(i, "PERSIST") && opt.same(x.args[i]):
			exp = core.Expiry{Mode: core.ExpiryClear}
		default:
			x.syntaxErr()
			return
		}
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	if expAt >= 0 {
		var err error
		if exp, err = x.parseExpiry(expAt); err != nil {
			// As Redis: an absent key answers nil before its amount is read.
			if n, xerr := x.store().Exists(x.ctx(), acc, []string{id}); xerr == nil && n == 0 {
				x.null()
			} else {
				x.err(err)
			}
			return
		}
	}
	v, found, err := x.store().GetEx(x.ctx(), acc, id, exp)
	x.value(v, found, err)
}

func cmdMGet(x *call) {
	acc, ids, ok := x.keysOf(x.span(1, 1))
	if !ok {
		return
	}
	vs, err := x.store().MGet(x.ctx(), acc, ids)
	if err != nil {
		x.err(err)
		return
	}
	x.array(len(vs))
	for _, v := range vs {
		if v == nil {
			x.null()
		} else {
			x.bulk(v)
		}
	}
}

func (x *call) mset(nx bool) bool {
	if len(x.args)%2 == 0 {
		x.out = appendArityErr(x.out, x.name)
		return false
	}
	acc, ids, ok := x.keysOf(x.span(1, 2))
	if !ok {
		return false
	}
	pairs := make([]core.KeyValue, len(ids))
	for i, id := range ids {
		pairs[i] = core.KeyValue{ID: id, Value: x.args[2+2*i]}
	}
	done, err := x.store().MSet(x.ctx(), acc, pairs, nx)
	if err != nil {
		x.err(err)
		return false
	}
	if nx {
		x.int(int64(boolInt(done)))
	} else {
		x.ok()
	}
	return true
}

func cmdMSet(x *call)   { x.mset(false) }
func cmdMSetNX(x *call) { x.mset(true) }

func cmdAppend(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	n, err := x.store().Append(x.ctx(), acc, id, x.args[2])
	x.intReply(int64(n), err)
}

func (x *call) intReply(n int64, err error) {
	if err != nil {
		x.err(err)
		return
	}
	x.int(n)
}

func cmdStrLen(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	n, err := x.store().StrLen(x.ctx(), acc, id)
	x.intReply(int64(n), err)
}

func cmdGetRange(x *call) {
	start, ok := x.intArg(2)
	if !ok {
		return
	}
	end, ok := x.intArg(3)
	if !ok {
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	v, err := x.store().GetRange(x.ctx(), acc, id, start, end)
	x.value(v, true, err)
}

func cmdSetRange(x *call) {
	off, ok := x.intArg(2)
	if !ok {
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	n, err := x.store().SetRange(x.ctx(), acc, id, off, x.args[3])
	x.intReply(int64(n), err)
}

func cmdDelEx(x *call) {
	cond := core.SetAlways
	var match []byte
	switch {
	case len(x.args) == 2:
	case len(x.args) == 4 && x.is(2, "IFEQ"):
		cond, match = core.SetIfEqual, x.args[3]
	case len(x.args) == 4 && x.is(2, "IFNE"):
		cond, match = core.SetIfNotEqual, x.args[3]
	default:
		x.syntaxErr()
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	done, err := x.store().DelEx(x.ctx(), acc, id, cond, match)
	x.intReply(int64(boolInt(done)), err)
}
