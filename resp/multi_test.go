package resp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// A client library's transaction (go-redis TxPipelined: MULTI, the
// commands and EXEC in one write) runs whole and answers each command.
func TestATransactionRunsAndAnswersEachCommand(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	var incr *redis.IntCmd
	var get *redis.StringCmd
	cmds, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
		p.Set(bg, "tx", "5", 0)
		incr = p.Incr(bg, "tx")
		get = p.Get(bg, "tx")
		p.Get(bg, "{acme}:other")
		return nil
	})
	if !errors.Is(err, redis.Nil) { // the last GET: go-redis reports the first error
		t.Fatalf("TxPipelined: %v", err)
	}
	if len(cmds) != 4 || incr.Val() != 6 || get.Val() != "6" {
		t.Fatalf("replies: %v", cmds)
	}
	// The raw exchange, as redis-cli sees it.
	r := e.raw()
	r.send("MULTI\r\nINCR x\r\nSEQ.NEXT s\r\nGET x\r\nEXEC\r\nGET x\r\n")
	want := "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n:1\r\n$1\r\n1\r\n$1\r\n1\r\n"
	if got := r.readN(6); got != want {
		t.Fatalf("replies = %q, want %q", got, want)
	}
	// A command that fails inside it answers its error; the others run.
	r.send("MULTI\r\nSET t abc\r\nINCR t\r\nINCR x\r\nEXEC\r\n")
	want = "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-ERR value is not an integer"
	if got := r.readN(5); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ":2\r\n") {
		t.Fatalf("replies = %q, want %q… :2", got, want)
	}
}

// A command refused while queued (unknown, wrong arity, not allowed in a
// transaction, too large a queue) answers its error, and EXEC then runs
// nothing: EXECABORT, as Redis.
func TestACommandRefusedWhileQueuedAbortsTheTransaction(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	for _, bad := range []string{"NOSUCH a", "GET", "KEYS *", "SCAN 0", "FLUSHDB", "MLOCK m 10 0", "MUNLOCK m 1", "MLOCK.EXTEND m 1 10", "INFO"} {
		r.send("MULTI\r\nSET a 1\r\n" + bad + "\r\nSET b 1\r\nEXEC\r\nEXISTS a b\r\n")
		got := r.readN(6)
		lines := strings.Split(got, "\r\n")
		if lines[0] != "+OK" || lines[1] != "+QUEUED" || !strings.HasPrefix(lines[2], "-ERR") || lines[3] != "+QUEUED" ||
			lines[4] != "-EXECABORT Transaction discarded because of previous errors." || lines[5] != ":0" {
			t.Fatalf("%s in a transaction: replies %q", bad, got)
		}
	}
	// Past the queue's bound.
	big := strings.Repeat("v", 1<<20)
	var b strings.Builder
	b.WriteString("MULTI\r\n")
	n := maxTxBytes/len(big) + 1
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("big%d", i)
		fmt.Fprintf(&b, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(big), big)
	}
	b.WriteString("EXEC\r\nEXISTS big0\r\n")
	r.send(b.String())
	got := r.readN(n + 3)
	if !strings.Contains(got, "-ERR transaction too large") || !strings.HasSuffix(got, "-EXECABORT Transaction discarded because of previous errors.\r\n:0\r\n") {
		t.Fatalf("replies past the queue bound end %q", got[max(0, len(got)-200):])
	}
	// The errors that do not abort, and the connection keeps working.
	r.send("EXEC\r\nDISCARD\r\nMULTI\r\nMULTI\r\nWATCH a\r\nDISCARD\r\nPING\r\n")
	want := "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+OK\r\n+PONG\r\n"
	if got := r.readN(7); got != want {
		t.Fatalf("replies = %q, want %q", got, want)
	}
}

// A1: no other client's command runs between a transaction's commands.
// Other clients (on the other event loop, and through the core directly,
// as HTTP does) increment the same counter all along; each transaction's
// INCRs must answer consecutive values.
func TestNoOtherCommandRunsInsideATransaction_A1(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(bg)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client()
			for ctx.Err() == nil {
				if i%2 == 0 {
					c.Incr(ctx, "n")
				} else {
					e.store.CtrAdd(ctx, "0", "n", 1)
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	c := e.client()
	for round := 0; round < 200; round++ {
		var got [5]*redis.IntCmd
		if _, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
			for i := range got {
				got[i] = p.Incr(bg, "n")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(got); i++ {
			if got[i].Val() != got[0].Val()+int64(i) {
				t.Fatalf("round %d: the transaction's INCRs answered %d, %d, %d, %d, %d: another command ran between them",
					round, got[0].Val(), got[1].Val(), got[2].Val(), got[3].Val(), got[4].Val())
			}
		}
	}
}

// A2: WATCH. EXEC runs nothing (a null array, go-redis's TxFailedErr)
// when a watched key was written, deleted or expired since; it runs when
// nothing changed, including a key that had already expired and was
// reaped since, as Redis 7.
func TestWatchedKeysMakeExecRunNothingOnceChanged_A2(t *testing.T) {
	e := newEnv(t)
	c, other := e.client(), e.client()
	// tx watches key, lets change run, then tries SET key mine.
	tx := func(key string, change func()) error {
		return c.Watch(bg, func(tx *redis.Tx) error {
			if _, err := tx.Get(bg, key).Result(); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			change()
			_, err := tx.TxPipelined(bg, func(p redis.Pipeliner) error {
				p.Set(bg, key, "mine", 0)
				return nil
			})
			return err
		}, key)
	}
	value := func(key string) string {
		v, err := other.Get(bg, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name    string
		setup   func(key string)
		change  func(key string)
		aborted bool
	}{
		{"untouched", func(k string) { other.Set(bg, k, "v", 0) }, func(string) {}, false},
		{"untouched, absent", func(string) {}, func(string) {}, false},
		{"written", func(k string) { other.Set(bg, k, "v", 0) }, func(k string) { other.Set(bg, k, "theirs", 0) }, true},
		{"written with the same value", func(k string) { other.Set(bg, k, "v", 0) }, func(k string) { other.Set(bg, k, "v", 0) }, true},
		{"created", func(string) {}, func(k string) { other.Set(bg, k, "theirs", 0) }, true},
		{"created and deleted", func(string) {}, func(k string) { other.Set(bg, k, "theirs", 0); other.Del(bg, k) }, true},
		{"deleted", func(k string) { other.Set(bg, k, "v", 0) }, func(k string) { other.Del(bg, k) }, true},
		{"its expiry changed", func(k string) { other.Set(bg, k, "v", 0) }, func(k string) { other.Expire(bg, k, time.Hour) }, true},
		{"incremented by a sequence of its own", func(k string) { other.Do(bg, "SEQ.NEXT", k) }, func(k string) { other.Do(bg, "SEQ.NEXT", k) }, true},
		{"written by the same connection", func(string) {}, func(k string) { c.Set(bg, k, "again", 0) }, true},
		{"expired", func(k string) { other.Set(bg, k, "v", time.Second) }, func(string) { time.Sleep(1500 * time.Millisecond) }, true},
		{"expired before WATCH, reaped since", func(k string) {
			other.Set(bg, k, "v", 50*time.Millisecond)
			time.Sleep(100 * time.Millisecond)
		}, func(string) { time.Sleep(300 * time.Millisecond) }, false},
		{"written through the core, as HTTP writes", func(string) {}, func(k string) { e.store.CtrAdd(bg, "0", k, 1) }, true},
		{"another key written", func(string) {}, func(k string) { other.Set(bg, k+"x", "theirs", 0) }, false},
	} {
		key := "w:" + strings.ReplaceAll(tc.name, " ", "_")
		tc.setup(key)
		err := tx(key, func() { tc.change(key) })
		switch {
		case tc.aborted && !errors.Is(err, redis.TxFailedErr):
			t.Errorf("%s: EXEC = %v, want a null array (TxFailedErr)", tc.name, err)
		case tc.aborted && value(key) == "mine":
			t.Errorf("%s: EXEC answered null but its SET ran", tc.name)
		case !tc.aborted && err != nil:
			t.Errorf("%s: EXEC = %v, want it to run", tc.name, err)
		case !tc.aborted && value(key) != "mine":
			t.Errorf("%s: EXEC ran but %s = %q", tc.name, key, value(key))
		}
	}
	// EXEC, DISCARD and UNWATCH forget the watched keys: a later
	// transaction runs whatever happened to them before.
	r := e.raw()
	for _, forget := range []string{"MULTI\r\nEXEC", "MULTI\r\nDISCARD", "UNWATCH\r\n+NOREPLY"} {
		r.send("WATCH f\r\n" + strings.TrimSuffix(forget, "\r\n+NOREPLY") + "\r\n")
		n := 1 + strings.Count(strings.TrimSuffix(forget, "\r\n+NOREPLY"), "\r\n") + 1
		r.readN(n)
		other.Incr(bg, "f")
		r.send("MULTI\r\nINCR f\r\nEXEC\r\n")
		if got := r.readN(3); !strings.HasPrefix(got, "+OK\r\n+QUEUED\r\n*1\r\n:") {
			t.Fatalf("after %q, a change to the once-watched key aborted: %q", forget, got)
		}
	}
	if n := e.store.WatchedKeys(); n != 0 {
		t.Fatalf("%d keys still watched after every transaction ended", n)
	}
}

// A connection that goes while watching leaves nothing watched: the store
// would otherwise count writes to those keys for ever.
func TestAConnectionThatGoesStopsWatching(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("WATCH a b c\r\nMULTI\r\nSET a 1\r\n")
	r.readN(3)
	if n := e.store.WatchedKeys(); n != 3 {
		t.Fatalf("WatchedKeys = %d, want 3", n)
	}
	r.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for e.store.WatchedKeys() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("WatchedKeys = %d after the connection closed", e.store.WatchedKeys())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, err := e.client().Exists(bg, "a").Result(); err != nil || v != 0 {
		t.Fatalf("EXISTS a = %d, %v: the unexecuted transaction ran", v, err)
	}
}

// txExamples holds one well-formed invocation of every command of the
// table, for TestEveryCommandRunsInATransactionOrIsRefused.
var txExamples = map[string]string{
	"PING": "PING", "ECHO": "ECHO hi", "QUIT": "", "HELLO": "HELLO 2", "AUTH": "AUTH token",
	"SELECT": "SELECT 0", "CLIENT": "CLIENT GETNAME", "INFO": "INFO", "CONFIG": "CONFIG GET maxmemory",
	"TIME": "TIME", "ROLE": "ROLE", "DBSIZE": "DBSIZE", "FLUSHDB": "FLUSHDB", "FLUSHALL": "FLUSHALL",
	"WAIT": "WAIT 0 0", "WAITAOF": "WAITAOF 0 0 0", "COMMAND": "COMMAND COUNT",
	"GET": "GET k", "SET": "SET k v", "SETNX": "SETNX k2 v", "SETEX": "SETEX k3 10 v",
	"PSETEX": "PSETEX k4 10000 v", "GETSET": "GETSET k v2", "GETDEL": "GETDEL k2", "GETEX": "GETEX k EX 10",
	"MGET": "MGET k k3", "MSET": "MSET a 1 b 2", "MSETNX": "MSETNX c 1 d 2", "APPEND": "APPEND k x",
	"STRLEN": "STRLEN k", "GETRANGE": "GETRANGE k 0 1", "SETRANGE": "SETRANGE k 1 z",
	"INCR": "INCR n", "INCRBY": "INCRBY n 2", "DECR": "DECR n", "DECRBY": "DECRBY n 2",
	"INCRBYFLOAT": "INCRBYFLOAT f 1.5", "DELEX": "DELEX k5", "DEL": "DEL a", "UNLINK": "UNLINK b",
	"EXISTS": "EXISTS k", "TYPE": "TYPE k", "EXPIRE": "EXPIRE k 100", "PEXPIRE": "PEXPIRE k 100000",
	"EXPIREAT": "EXPIREAT k 4000000000", "PEXPIREAT": "PEXPIREAT k 4000000000000", "TTL": "TTL k",
	"PTTL": "PTTL k", "EXPIRETIME": "EXPIRETIME k", "PEXPIRETIME": "PEXPIRETIME k", "PERSIST": "PERSIST k",
	"KEYS": "KEYS *", "SCAN": "SCAN 0", "RENAME": "RENAME k k6", "RENAMENX": "RENAMENX k6 k7",
	"RANDOMKEY": "RANDOMKEY", "SEQ.NEXT": "SEQ.NEXT s", "SEQ.GET": "SEQ.GET s", "SEQ.RESET": "SEQ.RESET s",
	"CTR.ADD": "CTR.ADD c1 1", "CTR.GET": "CTR.GET c1", "KV.GET": "KV.GET kv", "KV.SET": "KV.SET kv v",
	"KV.DEL": "KV.DEL kv", "LOCK.ACQUIRE": "LOCK.ACQUIRE l me 10", "LOCK.GET": "LOCK.GET l",
	"LOCK.RELEASE": "LOCK.RELEASE l me", "MLOCK": "MLOCK m 10 0", "MUNLOCK": "MUNLOCK m 1",
	"MLOCK.EXTEND": "MLOCK.EXTEND m 1 10", "MULTI": "", "EXEC": "", "DISCARD": "", "WATCH": "",
	"UNWATCH": "UNWATCH",
}

// Every command a transaction may hold runs inside one and answers, with
// a key watched (UNWATCH then drops it): none of them waits for the apply
// lock the transaction holds (Atomically's rule), which would hang the
// event loop and every client. The others are refused while queued.
func TestEveryCommandRunsInATransactionOrIsRefused(t *testing.T) {
	e := newEnv(t)
	for _, spec := range core.Commands() {
		ex, ok := txExamples[spec.Name]
		if !ok {
			t.Errorf("no example of %s in txExamples: add one", spec.Name)
			continue
		}
		cmd := e.srv.lookup([]byte(spec.Name))
		if txControl(cmd) {
			continue
		}
		r := e.raw()
		r.nc.SetDeadline(time.Now().Add(10 * time.Second))
		r.send("WATCH untouched\r\nMULTI\r\n" + ex + "\r\nEXEC\r\nPING\r\n")
		got := r.readN(5)
		want := "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n"
		if !allowedInTx(cmd) {
			want = "+OK\r\n+OK\r\n-ERR Command not allowed inside a transaction\r\n-EXECABORT"
		}
		if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "+PONG\r\n") {
			t.Errorf("%q in a transaction: replies %q, want %q…", ex, got, want)
		}
		r.nc.Close()
	}
}

// silentFor fails the test if anything arrives within d (what: who would
// have answered too early).
func (r *rawConn) silentFor(d time.Duration, what string) {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(d))
	if n, err := r.nc.Read(make([]byte, 64)); err == nil {
		r.t.Fatalf("%s: answered (%d bytes)", what, n)
	}
	r.nc.SetReadDeadline(time.Time{})
}

// EXEC's reply waits for the fsync of the transaction's writes (D1):
// while syncs are held, no reply comes; and when the sync fails, EXEC
// answers an error, so nothing of it is acknowledged (D6).
func TestExecAnswersOnlyOnceItsWritesAreSynced_D1_D6(t *testing.T) {
	fs := faultfs.New(vfs.Default)
	e := newEnv(t, func(c *envConfig) { c.persist = persist.Options{FS: fs} })
	t.Cleanup(fs.ReleaseSyncs) // a failed check must not leave the server's close held
	r := e.raw()
	r.send("SET warm 1\r\n")
	r.readN(1)
	fs.HoldSyncs()
	r.send("MULTI\r\nINCR a\r\nINCR b\r\n")
	if got := r.readN(3); got != "+OK\r\n+QUEUED\r\n+QUEUED\r\n" {
		t.Fatalf("replies = %q", got)
	}
	r.send("EXEC\r\n")
	r.silentFor(300*time.Millisecond, "EXEC, while its fsync was held")
	fs.ReleaseSyncs()
	if got := r.readN(1); got != "*2\r\n:1\r\n:1\r\n" {
		t.Fatalf("EXEC = %q after the sync", got)
	}
	// An EXEC that answers null because of another client's write waits
	// for that write's sync too: the null reflects it.
	r.send("WATCH w\r\n")
	r.readN(1)
	fs.HoldSyncs()
	// Another client's write, applied when Set returns (a Pipeline's
	// context defers only its durability wait), held unsynced.
	octx, op := core.WithPipeline(bg)
	if _, err := e.store.Set(octx, "0", "w", []byte("theirs"), core.SetOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := op.Take()
	r.send("MULTI\r\nSET w mine\r\n")
	if got := r.readN(2); got != "+OK\r\n+QUEUED\r\n" {
		t.Fatalf("replies = %q", got)
	}
	r.send("EXEC\r\n")
	r.silentFor(300*time.Millisecond, "EXEC, before the write that changed its watched key was synced")
	fs.ReleaseSyncs()
	if got := r.readN(1); got != "*-1\r\n" {
		t.Fatalf("EXEC = %q, want a null array", got)
	}
	if err := theirs.Wait(bg); err != nil {
		t.Fatal(err)
	}
	fs.FailSyncs()
	r.send("MULTI\r\nINCR a\r\nINCR b\r\nEXEC\r\n")
	if got := r.readN(4); !strings.HasPrefix(got, "+OK\r\n+QUEUED\r\n+QUEUED\r\n-MISCONF") {
		t.Fatalf("EXEC whose sync failed = %q, want a MISCONF error", got)
	}
}

// The transaction replies, error texts and which errors abort, side by
// side with Redis 7.0.
func TestTransactionRepliesMatchARealRedisServer(t *testing.T) {
	rc := startRedisServer(t)
	script := "MULTI\r\nMULTI\r\nWATCH a\r\nSET a 1\r\nEXEC\r\n" +
		"MULTI\r\nSET b 1\r\nNOSUCH x\r\nEXEC\r\nEXISTS b\r\n" +
		"MULTI\r\nGET\r\nEXEC\r\nWATCH\r\nUNWATCH\r\nEXEC\r\nDISCARD\r\n" +
		"MULTI\r\nINCR a\r\nSET a x\r\nINCR a\r\nGET a\r\nEXEC\r\n" +
		"MULTI\r\nDISCARD\r\nGET a\r\nMULTI\r\nEXEC\r\n" +
		"WATCH a b\r\nWATCH a\r\nSET a y\r\nMULTI\r\nGET a\r\nEXEC\r\n" +
		"WATCH a\r\nMULTI\r\nUNWATCH\r\nSET a z\r\nEXEC\r\nGET a\r\n" +
		"WATCH a\r\nMULTI\r\nSET a w\r\nEXEC x\r\nEXEC\r\nSET a v\r\nMULTI\r\nEXEC\r\n" +
		fmt.Sprintf("SET k4 v EXAT %[1]d\r\nWATCH k4\r\nGETEX k4 EXAT %[1]d\r\nMULTI\r\nPING\r\nEXEC\r\n", time.Now().Add(time.Hour).Unix()) +
		"WATCH k4\r\nGETEX k4\r\nMULTI\r\nPING\r\nEXEC\r\n" +
		"MULTI\r\nMSET a b {x}:c\r\nEXEC\r\n" +
		"WATCH a\r\nEXEC x\r\nSET a 1\r\nMULTI\r\nPING\r\nEXEC\r\n" +
		"MULTI\r\nSELECT 1\r\nMGET k {1}:j\r\nEXEC\r\n" +
		// Sub-commands are looked up while queuing.
		"MULTI\r\nCLIENT NOSUCH\r\nEXEC\r\nMULTI\r\nCLIENT SETNAME\r\nEXEC\r\n" +
		"MULTI\r\nCOMMAND COUNT x\r\nEXEC\r\nMULTI\r\nCONFIG GET\r\nEXEC\r\n" +
		"MULTI\r\nCLIENT GETNAME\r\nEXEC\r\n" +
		"MULTI\r\nSET c 1\r\nCOMMAND GETKEYS SET\r\nEXEC\r\nEXISTS c\r\n" +
		// An aborted transaction answers QUEUED and keeps nothing.
		"MULTI\r\nNOSUCH\r\nSET c 1\r\nEXEC\r\nEXISTS c\r\n" +
		"PING\r\n"
	const replies = 98
	got := func(addr string) string {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		r := &rawConn{t: t, nc: nc}
		r.send(script)
		return r.readN(replies)
	}
	ours, theirs := got(newEnv(t).addr), got(rc.Options().Addr)
	if ours != theirs {
		t.Fatalf("replies differ:\nours   %q\nredis  %q", ours, theirs)
	}
	if !strings.HasSuffix(ours, "+PONG\r\n") {
		t.Fatalf("script replies %q: not all read", ours)
	}
}

// Before AUTH, MULTI, EXEC and DISCARD answer NOAUTH, as in Redis, and
// nothing is queued.
func TestMultiBeforeAuthIsNoAuth(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	r := e.raw()
	r.send("EXEC\r\nMULTI\r\nAUTH root\r\nEXEC\r\nWATCH a\r\n")
	if got := r.readN(5); got != "-EXECABORT Transaction discarded because of: NOAUTH Authentication required.\r\n"+
		"-NOAUTH Authentication required.\r\n+OK\r\n-ERR EXEC without MULTI\r\n+OK\r\n" {
		t.Fatalf("replies = %q", got)
	}
}

// EXEC's reply is bounded: every queued command runs (a transaction is
// never half-run), and a reply that would take EXEC's past maxExecReply is
// replaced by an error saying so, so reads of a large value cannot build a
// reply of any size.
func TestExecsReplyIsBoundedAndEveryCommandRuns(t *testing.T) {
	e := newEnv(t)
	big := strings.Repeat("v", 1<<20)
	if err := e.client().Set(bg, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	const dropped = "-ERR reply dropped: EXEC's reply passed 16 MiB; the command ran\r\n"
	for _, tc := range []struct {
		name, reads string
		n           int // commands in reads
		kept        int // replies of big kept
	}{
		{"many GETs", strings.Repeat("GET big\r\n", maxExecReply/len(big)+4), maxExecReply/len(big) + 4, maxExecReply/len(big) - 1},
		{"one MGET", "MGET" + strings.Repeat(" big", maxExecReply/len(big)+4) + "\r\n", 1, 0},
	} {
		r := e.raw()
		e.client().Del(bg, "before", "after")
		r.send("MULTI\r\nINCR before\r\n" + tc.reads + "INCR after\r\nEXEC\r\nMGET before after\r\n")
		r.readN(tc.n + 3) // OK and the QUEUEDs
		// The rest, read in large chunks (readN parses from the start at
		// every read).
		r.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		got := r.buf
		for !bytes.HasSuffix(got, []byte("\r\n*2\r\n$1\r\n1\r\n$1\r\n1\r\n")) {
			chunk := make([]byte, 4<<20)
			m, err := r.nc.Read(chunk)
			got = append(got, chunk[:m]...)
			if err != nil {
				t.Fatalf("%s: read: %v after %d bytes ending %q (want both counters at 1: every command ran)", tc.name, err, len(got), got[max(0, len(got)-160):])
			}
		}
		if len(got) > maxExecReply+len(big)/2 {
			t.Fatalf("%s: EXEC's reply is %d bytes", tc.name, len(got))
		}
		if n := bytes.Count(got, []byte(big)); n != tc.kept || !bytes.Contains(got, []byte(dropped)) {
			t.Fatalf("%s: %d replies of big kept, want %d, and then %q; reply ends %q", tc.name, n, tc.kept, dropped, got[max(0, len(got)-160):])
		}
		r.nc.Close()
	}
}

// The key checks Redis makes while queuing (a key of an account the
// token does not grant: NOPERM; keys of two accounts in one command:
// CROSSSLOT) abort the transaction: none of it runs, rather than the
// commands before the refused one.
func TestAKeyRefusedWhileQueuedAbortsTheTransaction(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root", Accounts: map[string]string{"acme": "t1"}}))
	r := e.raw()
	r.send("AUTH t1\r\nMULTI\r\nINCR {acme}:n\r\nINCR {other}:n\r\nEXEC\r\nGET {acme}:n\r\n")
	if got := r.readN(6); !strings.HasPrefix(got, "+OK\r\n+OK\r\n+QUEUED\r\n-NOPERM") ||
		!strings.HasSuffix(got, "-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n") {
		t.Fatalf("replies = %q", got)
	}
	// After a queued AUTH (or SELECT), keys resolve in the account EXEC
	// will run them in, unknown while queuing: checked then.
	r = e.raw()
	r.send("AUTH root\r\nMULTI\r\nAUTH t1\r\nMGET k {acme}:j\r\nEXEC\r\n")
	if got := r.readN(5); got != "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n*2\r\n$-1\r\n$-1\r\n" {
		t.Fatalf("replies = %q", got)
	}
	r = newEnv(t).raw() // no auth: only CROSSSLOT
	r.send("MULTI\r\nINCR {acme}:n\r\nMSET {acme}:a 1 {acme}:b 2 {zz}:c 3\r\nEXEC\r\nGET {acme}:n\r\n")
	if got := r.readN(5); got != "+OK\r\n+QUEUED\r\n-CROSSSLOT Keys in request don't hash to the same slot\r\n"+
		"-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n" {
		t.Fatalf("replies = %q", got)
	}
}

// A WATCH with a key the connection may not use answers its error and
// watches none of its keys.
func TestAForbiddenKeyWatchesNothing(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Accounts: map[string]string{"acme": "t1"}}))
	r := e.raw()
	r.send("AUTH t1\r\nWATCH {acme}:a {other}:b\r\n")
	if got := r.readN(2); !strings.HasPrefix(got, "+OK\r\n-NOPERM") {
		t.Fatalf("replies = %q", got)
	}
	if n := e.store.WatchedKeys(); n != 0 {
		t.Fatalf("WatchedKeys = %d after a refused WATCH", n)
	}
}

// A WATCH that answers an error watches none of its keys, whichever key
// is refused and why; its keys must be of one account (R3).
func TestAWatchThatFailsWatchesNothing(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("WATCH a " + strings.Repeat("k", 600) + "\r\nWATCH {a}:x {b}:y\r\n")
	got := r.readN(2)
	if got != "-ERR key is longer than 512 bytes\r\n-CROSSSLOT Keys in request don't hash to the same slot\r\n" {
		t.Fatalf("replies = %q", got)
	}
	if n := e.store.WatchedKeys(); n != 0 {
		t.Fatalf("WatchedKeys = %d after refused WATCHes", n)
	}
	r.send("WATCH a a b\r\n")
	r.readN(1)
	if n := e.store.WatchedKeys(); n != 2 {
		t.Fatalf("WatchedKeys = %d after WATCH a a b, want 2", n)
	}
}

// A queued command is counted once, when EXEC runs it, as Redis counts
// it (total_commands_processed), and CLIENT LIST shows the connection's
// last command as exec, not its last queued one.
func TestATransactionIsCountedAndListedAsRedisDoes(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	total := func() int {
		info, err := c.Info(bg, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, v, _ := strings.Cut(info, "total_commands_processed:")
		n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(v, "\r\n", 2)[0]))
		if err != nil {
			t.Fatalf("INFO stats: %q", info)
		}
		return n
	}
	line := func() string { // the CLIENT LIST line of the connection named txer
		t.Helper()
		list, err := c.ClientList(bg).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(list, "\n") {
			if strings.Contains(l, "name=txer ") {
				return l
			}
		}
		t.Fatalf("CLIENT LIST lacks the connection: %s", list)
		return ""
	}
	r := e.raw()
	r.send("CLIENT SETNAME txer\r\nWATCH a b a\r\nMULTI\r\nPING\r\nECHO x\r\n")
	r.readN(5)
	// As Redis 7.0 shows it: queued commands, watched keys, flag x.
	if l := line(); !strings.Contains(l, " flags=x ") || !strings.Contains(l, " multi=2 watch=2 ") {
		t.Fatalf("CLIENT LIST inside MULTI, 2 keys watched and 2 commands queued: %s", l)
	}
	r.send("NOSUCH\r\nPING\r\n") // aborted: what follows is not kept
	r.readN(2)
	if l := line(); !strings.Contains(l, " multi=2 ") {
		t.Fatalf("CLIENT LIST after an aborting command: %s", l)
	}
	r.send("DISCARD\r\n")
	r.readN(1)
	if l := line(); !strings.Contains(l, " flags=N ") || !strings.Contains(l, " multi=-1 watch=0 ") {
		t.Fatalf("CLIENT LIST after DISCARD: %s", l)
	}
	// While EXEC runs them, the transaction is still shown.
	r.send("MULTI\r\nCLIENT INFO\r\nEXEC\r\n")
	if got := r.readN(3); !strings.Contains(got, " flags=x ") || !strings.Contains(got, " multi=1 ") {
		t.Fatalf("CLIENT INFO run by EXEC: %q", got)
	}
	before := total()
	r.send("MULTI\r\nPING\r\nECHO x\r\nEXEC\r\n")
	r.readN(4)
	// MULTI, PING, ECHO, EXEC, and the second INFO.
	if got := total() - before; got != 5 {
		t.Fatalf("total_commands_processed grew by %d, want 5", got)
	}
	if l := line(); !strings.Contains(l, " cmd=exec ") || !strings.Contains(l, " multi=-1 watch=0 ") {
		t.Fatalf("CLIENT LIST after EXEC: %s", l)
	}
}

// A subcommand Redis has and this server does not serve (CLIENT KILL) is
// queued, as Redis queues it: its error comes in EXEC's array, and the
// rest of the transaction runs.
func TestAnUnservedSubcommandDoesNotAbortTheTransaction(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("MULTI\r\nSET a 1\r\nCLIENT KILL 1.2.3.4:5\r\nEXEC\r\nGET a\r\n")
	got := r.readN(5)
	if !strings.HasPrefix(got, "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n-") || !strings.HasSuffix(got, "$1\r\n1\r\n") {
		t.Fatalf("replies = %q", got)
	}
}
