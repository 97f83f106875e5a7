package resp

import (
	"bytes"
	"math"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
)

// splitKey applies R3 to a key argument: `{acc}:rest` addresses account
// acc (non-empty, without `}`), id rest; tagged false means the key belongs
// to the current account and is all id.
func splitKey(k []byte) (acc, id string, tagged bool) {
	if len(k) >= 4 && k[0] == '{' {
		if i := bytes.IndexByte(k, '}'); i > 1 && i+1 < len(k) && k[i+1] == ':' {
			return string(k[1:i]), string(k[i+2:]), true
		}
	}
	return "", string(k), false
}

// key resolves argument i to its account and id and checks the connection
// may act on that account; on failure it writes the error reply.
func (x *call) key(i int) (acc, id string, ok bool) {
	acc, id, tagged := splitKey(x.args[i])
	if !tagged {
		acc = x.c.account()
	}
	if err := x.s.cfg.Auth.Allow(x.c.limitedTo, acc); err != nil {
		x.err(forbidden(acc))
		return "", "", false
	}
	return acc, id, true
}

// keysOf resolves the key arguments at positions idx, which must all be in
// one account (R3: no command spans two accounts); CROSSSLOT otherwise.
func (x *call) keysOf(idx []int) (acc string, ids []string, ok bool) {
	ids = make([]string, len(idx))
	for n, i := range idx {
		a, id, ok := x.key(i)
		if !ok {
			return "", nil, false
		}
		if n > 0 && a != acc {
			x.errorText("CROSSSLOT Keys in request don't hash to the same slot")
			return "", nil, false
		}
		acc, ids[n] = a, id
	}
	return acc, ids, true
}

// span is the positions from..len(args)-1 with the given step.
func (x *call) span(from, step int) []int {
	var idx []int
	for i := from; i < len(x.args); i += step {
		idx = append(idx, i)
	}
	return idx
}

// int reads integer argument i; on failure it writes Redis's error.
func (x *call) intArg(i int) (int64, bool) {
	n, ok := core.ParseInt(x.args[i])
	if !ok {
		x.errorText("ERR value is not an integer or out of range")
	}
	return n, ok
}

// uintArg reads a non-negative integer argument.
func (x *call) uintArg(i int) (uint64, bool) {
	n, ok := core.ParseInt(x.args[i])
	if !ok || n < 0 {
		x.errorText("ERR value is not an integer or out of range")
		return 0, false
	}
	return uint64(n), true
}

// secondsArg reads a duration in seconds (core.ParseSeconds).
func (x *call) secondsArg(i int, what string) (time.Duration, bool) {
	d, err := core.ParseSeconds(what, x.args[i])
	if err != nil {
		x.errorText("ERR " + what + " is not a valid number of seconds")
		return 0, false
	}
	return d, true
}

// is reports whether argument i equals word, ignoring ASCII case.
func (x *call) is(i int, word string) bool {
	return i < len(x.args) && isWord(x.args[i], word)
}

// expiryUnits is how each way of giving an expiry counts its amount: the
// options EX, PX, EXAT, PXAT (SET, GETEX) and the commands EXPIRE,
// PEXPIRE, EXPIREAT, PEXPIREAT, row by row.
var expiryUnits = [...]struct {
	option, command string
	unit            int64 // ms per unit of the amount
	mode            core.ExpiryMode
}{
	{"EX", "expire", 1000, core.ExpiryIn},
	{"PX", "pexpire", 1, core.ExpiryIn},
	{"EXAT", "expireat", 1000, core.ExpiryAt},
	{"PXAT", "pexpireat", 1, core.ExpiryAt},
}

// expiryUnit returns the unit and mode of an expiry option (any case) or
// of a command name (lower case, as x.name); ok false for neither.
func expiryUnit(word []byte, command string) (unit int64, mode core.ExpiryMode, ok bool) {
	for _, u := range expiryUnits {
		if u.command == command || word != nil && bytes.EqualFold(word, []byte(u.option)) {
			return u.unit, u.mode, true
		}
	}
	return 0, 0, false
}

// toMs converts an expiry amount in units of unit ms to milliseconds; ok
// false, as Redis ("invalid expire time"), when it overflows, or for a
// relative amount (mode core.ExpiryIn) when it would once the current
// time is added.
func toMs(n, unit int64, mode core.ExpiryMode) (int64, bool) {
	if n > math.MaxInt64/unit || n < math.MinInt64/unit {
		return 0, false
	}
	ms := n * unit
	if mode == core.ExpiryIn && ms > math.MaxInt64-time.Now().UnixMilli() {
		return 0, false
	}
	return ms, true
}

// isWord reports whether b is word, in any case (a command or option name).
func isWord(b []byte, word string) bool { return bytes.EqualFold(b, []byte(word)) }
