package resp

import (
	"bytes"

	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
)

// Transactions (MULTI … EXEC) are not supported, and a client that uses
// one must not get half of it: go-redis's TxPipelined, redis-py's default
// pipeline(), ioredis's and Jedis's multi() send MULTI, the commands and
// EXEC together and read the replies after. Were MULTI merely an unknown
// command, the commands after it would run one by one, unconditionally,
// and the client, seeing an error, might retry them. So MULTI is refused
// and the connection refuses every command after it until EXEC (answered
// EXECABORT, as Redis answers a transaction that queued a bad command)
// or DISCARD: nothing of the transaction runs. WATCH stays an unknown
// command, which a client's optimistic-locking helper reports at once.

// inMulti answers a command sent after a refused MULTI (c.multi); ok
// false for QUIT, which runs.
func (c *client) inMulti(args [][]byte, out []byte) ([]byte, bool) {
	switch {
	case isWord(args[0], "EXEC"):
		c.multi = false
		return redcon.AppendError(out, "EXECABORT Transaction discarded because of previous errors."), true
	case isWord(args[0], "DISCARD"):
		c.multi = false
		return redcon.AppendString(out, "OK"), true
	case isWord(args[0], "MULTI"):
		return redcon.AppendError(out, "ERR MULTI calls can not be nested"), true
	case isWord(args[0], "QUIT"):
		return out, false // run: the client leaves
	}
	return redcon.AppendError(out, "ERR command not run: it follows a MULTI, which this server does not support (EXEC or DISCARD ends it)"), true
}

// outsideMulti answers MULTI, EXEC and DISCARD, which the command table
// does not hold, outside a refused MULTI; ok false for any other command.
func (c *client) outsideMulti(args [][]byte, out []byte) ([]byte, bool) {
	isTx := isWord(args[0], "MULTI") || isWord(args[0], "EXEC") || isWord(args[0], "DISCARD")
	switch {
	case isTx && !c.authed:
		return appendErr(out, "", core.ErrNoAuth), true
	case isWord(args[0], "MULTI"):
		c.multi = true
		return redcon.AppendError(out, "ERR MULTI is not supported: this server has no transactions; the commands up to EXEC or DISCARD will not run"), true
	case isWord(args[0], "EXEC"):
		return redcon.AppendError(out, "ERR EXEC without MULTI"), true
	case isWord(args[0], "DISCARD"):
		return redcon.AppendError(out, "ERR DISCARD without MULTI"), true
	}
	return out, false
}

func isWord(b []byte, word string) bool { return bytes.EqualFold(b, []byte(word)) }
