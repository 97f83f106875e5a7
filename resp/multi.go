package resp

import (
	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
)

// Transactions (MULTI … EXEC) are not supported, and a client that uses
// one must not get half of it: go-redis's TxPipelined, redis-py's default
// pipeline(), ioredis's and Jedis's multi() send MULTI, the commands and
// EXEC together and read the replies after. Were MULTI merely an unknown
// command, the commands after it would run one by one, unconditionally,
// and the client, seeing an error, might retry them. So MULTI is answered
// an error and the connection is closed, as after QUIT: nothing sent
// after it runs, and no state outlives the error (a connection left
// refusing commands until an EXEC would be stuck for a client that gave
// up on the transaction and put it back in its pool). Clients reconnect
// on their next command. WATCH stays an unknown command, which a client's
// optimistic-locking helper reports at once.

// txCommand answers MULTI, EXEC and DISCARD, which the command table does
// not hold; ok false for any other command.
func (c *client) txCommand(args [][]byte, out []byte) ([]byte, bool) {
	multi := isWord(args[0], "MULTI")
	if !multi && !isWord(args[0], "EXEC") && !isWord(args[0], "DISCARD") {
		return out, false
	}
	switch {
	case !c.authed:
		return appendErr(out, "", core.ErrNoAuth), true
	case multi:
		c.quit = true
		return redcon.AppendError(out, "ERR MULTI is not supported: this server has no transactions; the connection is closed so that nothing sent after MULTI runs"), true
	case isWord(args[0], "EXEC"):
		return redcon.AppendError(out, "ERR EXEC without MULTI"), true
	default:
		return redcon.AppendError(out, "ERR DISCARD without MULTI"), true
	}
}
