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
// subcommands are the sub-commands of the commands that have them, with
// Redis's argument counts (negative: at least that many): Redis 7.0's,
// and CLIENT SETINFO and NO-TOUCH of 7.2. A transaction checks them while
// it queues such a command, as Redis does (a subcommand missing here
// would abort a transaction Redis runs), and the command answers with
// them for one it does not serve.
var subcommands = map[string]map[string]int{
	"CLIENT": {"setname": 3, "getname": 2, "id": 2, "setinfo": 4, "info": 2, "no-evict": 3, "no-touch": 3, "help": 2, "list": -2,
		"caching": 3, "getredir": 2, "kill": -3, "pause": -3, "reply": 3, "tracking": -3, "trackinginfo": 2, "unblock": -3, "unpause": 2},
	"CONFIG":  {"get": -3, "set": -4, "resetstat": 2, "rewrite": 2, "help": 2},
	"COMMAND": {"count": 2, "list": -2, "getkeys": -4, "getkeysandflags": -4, "help": 2, "info": -2, "docs": -2},
}

// subcommandErr is Redis's error for args, a command of subcommands with
// its arguments, when its sub-command is unknown or has the wrong number
// of arguments; "" otherwise.
func subcommandErr(name string, args [][]byte) string {
	subs, ok := subcommands[name]
	if !ok || len(args) < 2 {
		return ""
	}
	sub := strings.ToLower(string(args[1]))
	n, ok := subs[sub]
	switch {
	case !ok:
		return unknownSubcommand(name, args[1])
	case n >= 0 && len(args) != n, n < 0 && len(args) < -n:
		return arityErr(strings.ToLower(name) + "|" + sub)
	}
	return ""
}

// badSubcommand answers a sub-command the command's handler did not
// serve: unknown, or with the wrong number of arguments.
func (x *call) badSubcommand(name string) {
	msg := subcommandErr(name, x.args)
	if msg == "" { // known, with its count, yet not served: as unknown
		msg = unknownSubcommand(name, x.args[1])
	}
	x.errorText(msg)
}

func unknownSubcommand(name string, sub []byte) string {
	return fmt.Sprintf("ERR unknown subcommand '%s'. Try %s HELP.", truncate(sub, 128), name)
}

// forbidden is the NOPERM reply for a token that does not grant acc.
func forbidden(acc string) error {
	return fmt.Errorf("%w: this token does not grant account '%s'", core.ErrForbidden, acc)
}
