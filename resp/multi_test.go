package resp

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
)

// A transaction is refused whole: MULTI is an error and the connection is
// closed, so nothing sent after it runs and no state outlives the error.
// Were MULTI only an unknown command, a client library's transaction
// would apply its writes one by one while reporting an error, and a retry
// would apply them again.
func TestATransactionIsRefusedAndNothingOfItRuns(t *testing.T) {
	e := newEnv(t)
	// A client library's transaction: an error, and no write applied.
	c := e.client()
	_, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
		p.Incr(bg, "tx")
		p.Incr(bg, "tx")
		return nil
	})
	if err == nil {
		t.Fatal("TxPipelined succeeded")
	}
	if n, err := c.Exists(bg, "tx").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS tx after the refused transaction = %d, %v: its writes ran", n, err)
	}
	// The raw exchange, as redis-cli or a pipelining client sees it.
	r := e.raw()
	r.send("INCR x\r\nMULTI\r\nINCR x\r\nEXEC\r\n")
	if got := r.expectClosed(); !strings.HasPrefix(got, ":1\r\n-ERR MULTI is not supported") || strings.Count(got, "\r\n") != 2 {
		t.Fatalf("replies = %q, want :1, the MULTI error, then the connection closed", got)
	}
	if v, err := c.Get(bg, "x").Result(); err != nil || v != "1" {
		t.Fatalf("GET x = %q, %v; want 1: a command after MULTI ran", v, err)
	}
	r = e.raw()
	r.send("EXEC\r\nDISCARD\r\nPING\r\n")
	if got := r.readN(3); got != "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+PONG\r\n" {
		t.Fatalf("replies = %q", got)
	}
}

// Before AUTH, MULTI, EXEC and DISCARD answer NOAUTH, as in Redis, and
// MULTI does not close the connection.
func TestMultiBeforeAuthIsNoAuth(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	r := e.raw()
	r.send("MULTI\r\nAUTH root\r\nEXEC\r\n")
	if got := r.readN(3); got != "-NOAUTH Authentication required.\r\n+OK\r\n-ERR EXEC without MULTI\r\n" {
		t.Fatalf("replies = %q", got)
	}
}
