package resp

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
)

// A transaction is refused whole: MULTI is an error, and nothing sent
// after it runs until EXEC (EXECABORT) or DISCARD. Were MULTI only an
// unknown command, a client library's transaction would apply its writes
// one by one while reporting an error, and a retry would apply them again.
func TestATransactionIsRefusedAndNothingOfItRuns(t *testing.T) {
	e := newEnv(t)
	// A client library's transaction: an error, and no write applied.
	c := e.client()
	_, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
		p.Incr(bg, "tx")
		p.Incr(bg, "tx")
		return nil
	})
	wantErr(t, err, "ERR MULTI is not supported")
	if n, err := c.Exists(bg, "tx").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS tx after the refused transaction = %d, %v: its writes ran", n, err)
	}
	// The raw exchange, as redis-cli or a pipelining client sees it.
	r := e.raw()
	r.send("MULTI\r\nINCR x\r\nmulti\r\nSET y 1\r\nEXEC\r\nINCR x\r\nMULTI\r\nDEL x\r\nDISCARD\r\nGET x\r\nEXEC\r\nDISCARD\r\n")
	want := []string{
		"-ERR MULTI is not supported",
		"-ERR command not run",
		"-ERR MULTI calls can not be nested",
		"-ERR command not run",
		"-EXECABORT Transaction discarded because of previous errors.",
		":1",
		"-ERR MULTI is not supported",
		"-ERR command not run",
		"+OK",
		"$1\r\n1",
		"-ERR EXEC without MULTI",
		"-ERR DISCARD without MULTI",
	}
	got := strings.Split(strings.TrimSuffix(strings.ReplaceAll(r.readN(len(want)), "$1\r\n", "$1\x00"), "\r\n"), "\r\n")
	for i := range want {
		if i >= len(got) || !strings.HasPrefix(strings.ReplaceAll(got[i], "\x00", "\r\n"), want[i]) {
			t.Fatalf("reply %d = %q, want %q…\nall: %q", i, got, want[i], got)
		}
	}
	if n := e.dbsize(); n != 1 {
		t.Fatalf("%d keys, want only x (from the INCR outside the transactions)", n)
	}
	// QUIT still ends the connection inside one.
	q := e.raw()
	q.send("MULTI\r\nQUIT\r\n")
	if got := q.expectClosed(); !strings.HasSuffix(got, "+OK\r\n") {
		t.Fatalf("QUIT after MULTI = %q", got)
	}
}

// Before AUTH, MULTI, EXEC and DISCARD answer NOAUTH, as in Redis, and
// MULTI does not shut out the AUTH that follows.
func TestMultiBeforeAuthIsNoAuth(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	r := e.raw()
	r.send("MULTI\r\nAUTH root\r\nEXEC\r\n")
	if got := r.readN(3); got != "-NOAUTH Authentication required.\r\n+OK\r\n-ERR EXEC without MULTI\r\n" {
		t.Fatalf("replies = %q", got)
	}
}
