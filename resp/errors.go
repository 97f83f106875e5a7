package resp

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
)

// errorMap maps core errors to RESP error replies, first match wins (R5).
// Texts are Redis's own where Redis has the case, because client libraries
// match on them; the new cases get their own upper-case prefix so clients
// can tell them apart. text gets the command name and the error.
var errorMap = []struct {
	err  error
	text func(cmd string, err error) string
}{
	{core.ErrWrongType, fixed("WRONGTYPE Operation against a key holding the wrong kind of value")},
	{core.ErrNotInteger, fixed("ERR value is not an integer or out of range")},
	{core.ErrOverflow, fixed("ERR increment or decrement would overflow")},
	{core.ErrInvalidExpire, func(cmd string, _ error) string { return "ERR invalid expire time in '" + cmd + "' command" }},
	{core.ErrInvalid, func(_ string, err error) string { return "ERR " + detail(err, core.ErrInvalid) }},
	{core.ErrVersionMismatch, prefixed("VERSION")},
	{core.ErrLocked, prefixed("LOCKED")},
	{core.ErrNotHeld, prefixed("NOTHELD")},
	{core.ErrTimeout, prefixed("TIMEOUT")},
	{core.ErrTooLarge, fixed("ERR string exceeds maximum allowed size (max_value_bytes)")},
	{core.ErrNotFound, fixed("ERR no such key")},
	{core.ErrUnavailable, prefixed("MISCONF")},
	{core.ErrClosed, prefixed("ERR")},
	{core.ErrNoAuth, fixed("NOAUTH Authentication required.")},
	{core.ErrBadToken, fixed("WRONGPASS invalid username-password pair or user is disabled.")},
	{core.ErrForbidden, func(_ string, err error) string { return "NOPERM " + detail(err, core.ErrForbidden) }},
	{context.Canceled, fixed("ERR connection closed")},
	{context.DeadlineExceeded, fixed("ERR deadline exceeded")},
}

func fixed(s string) func(string, error) string {
	return func(string, error) string { return s }
}

func prefixed(p string) func(string, error) string {
	return func(_ string, err error) string { return p + " " + err.Error() }
}

// detail is err's text without the sentinel's own prefix ("invalid
// argument: count must be …" → "count must be …").
func detail(err, sentinel error) string {
	s := err.Error()
	if d, ok := strings.CutPrefix(s, sentinel.Error()+": "); ok {
		return d
	}
	return s
}

// errorText is the RESP error line for err.
func errorText(cmd string, err error) string {
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return m.text(cmd, err)
		}
	}
	return "ERR " + err.Error()
}

func appendErr(out []byte, cmd string, err error) []byte {
	return redcon.AppendError(out, errorText(cmd, err))
}

// appendArityErr is Redis's reply to a wrong argument count; dispatch and
// the few handlers with sub-command arities share it.
func appendArityErr(out []byte, cmd string) []byte {
	return redcon.AppendError(out, arityErr(cmd))
}

func arityErr(cmd string) string {
	return "ERR wrong number of arguments for '" + cmd + "' command"
}

// subArity answers Redis's arity error ("client|id") when args[1] names
// a sub-command of arity (Redis's: the argument count with the command's
// and the sub-command's names) given another count, and reports whether
// it did; else the caller answers its unknown sub-command error.
func (x *call) subArity(arity map[string]int) bool {
	sub := strings.ToLower(string(x.args[1]))
	if n, ok := arity[sub]; !ok || n == len(x.args) {
		return false
	}
	x.out = appendArityErr(x.out, x.name+"|"+sub)
	return true
}

// forbidden is the NOPERM reply for a token that does not grant acc.
func forbidden(acc string) error {
	return fmt.Errorf("%w: this token does not grant account '%s'", core.ErrForbidden, acc)
}
