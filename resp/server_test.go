package resp

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/internal/evloop/evlooptest"
)

// syncGate is a filesystem fault injector for the WAL's syncs: while held,
// every WAL sync blocks (and reports on entered); with fail set, it fails.
type syncGate struct {
	entered chan struct{}
	mu      struct {
		sync.Mutex
		hold chan struct{}
		fail error
	}
}

func newSyncGate() *syncGate { return &syncGate{entered: make(chan struct{}, 1)} }

func (g *syncGate) MaybeError(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	if !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	g.mu.Lock()
	hold, fail := g.mu.hold, g.mu.fail
	g.mu.Unlock()
	if fail != nil {
		return fail
	}
	if hold != nil {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-hold
	}
	return nil
}

// holdSyncs makes WAL syncs block until the returned release is called.
func (g *syncGate) holdSyncs() (release func()) {
	hold := make(chan struct{})
	g.mu.Lock()
	g.mu.hold = hold
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.mu.hold = nil
		g.mu.Unlock()
		close(hold)
	}
}

func (g *syncGate) failSyncs(err error) {
	g.mu.Lock()
	g.mu.fail = err
	g.mu.Unlock()
}

func withSyncGate(g *syncGate) envOpt {
	return func(ec *envConfig) { ec.persist.FS = errorfs.Wrap(vfs.Default, g) }
}

// assertNoReply checks that nothing arrives on r for a short while: the
// absence of a reply cannot be signalled, so this is a bounded wait.
func assertNoReply(t *testing.T, r *rawConn, what string) {
	t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	b := make([]byte, 64)
	if n, err := r.nc.Read(b); err == nil || n > 0 {
		t.Fatalf("%s: got %q before the write was synced (R1)", what, b[:n])
	}
	r.nc.SetReadDeadline(time.Time{})
}

// No reply leaves before the write it reflects is fsynced (R1, D1): not
// the acknowledgement of a write, and not a read, from another connection,
// of a value whose write is still in the held sync.
func TestReplyWaitsForFsync_R1(t *testing.T) {
	g := newSyncGate()
	e := newEnv(t, withSyncGate(g))
	w, r := e.raw(), e.raw()
	release := sync.OnceFunc(g.holdSyncs())
	t.Cleanup(release) // a failed assertion must not leave syncs held
	w.send("SET k v\r\n")
	<-g.entered // the batch holding the SET is being synced
	r.send("GET k\r\n")
	assertNoReply(t, w, "SET acknowledgement")
	assertNoReply(t, r, "GET of the unsynced value")
	release()
	if got := w.readN(1); got != "+OK\r\n" {
		t.Fatalf("SET = %q", got)
	}
	if got := r.readN(1); got != "$1\r\nv\r\n" {
		t.Fatalf("GET = %q", got)
	}
}

// A pipeline is submitted whole and waited for once: 16 writes cost one
// fsync, not 16 (DESIGN.md "RESP pipelines"), and replies come in order.
func TestPipelineOfWritesSharesOneFsyncAndRepliesInOrder_R1(t *testing.T) {
	g := newSyncGate()
	e := newEnv(t, withSyncGate(g))
	r := e.raw()
	var b strings.Builder
	var want strings.Builder
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&b, "*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n")
		fmt.Fprintf(&want, ":%d\r\n", i)
	}
	b.WriteString("*2\r\n$3\r\nGET\r\n$1\r\nn\r\n")
	want.WriteString("$2\r\n16\r\n")
	// Warm up so the connection's first read is not split from the rest.
	r.send("PING\r\n")
	r.readN(1)
	before := e.store.Stats().Commits.Load()
	// Hold syncs so that a commit started before the whole pipeline is
	// submitted would leave the rest of it to a second fsync.
	release := g.holdSyncs()
	r.send(b.String())
	<-g.entered
	release()
	if got := r.readN(17); got != want.String() {
		t.Fatalf("replies = %q, want %q", got, want.String())
	}
	if n := e.store.Stats().Commits.Load() - before; n != 1 {
		t.Fatalf("a pipeline of 16 writes took %d fsyncs, want 1", n)
	}
}

// Writes that arrive while the loop's commit is in flight share the next
// one (loopPass): while the first SET's fsync is held, five more clients
// send a SET each; once it is released, the loop's next pass reads all five
// and commits them with one fsync.
func TestWritesArrivingDuringACommitShareTheNextOne_R1(t *testing.T) {
	g := newSyncGate()
	e := newEnv(t, withSyncGate(g), withRESP(func(c *Config) { c.EventLoops = 1 }))
	first := e.raw()
	others := make([]*rawConn, 5)
	for i := range others {
		others[i] = e.raw()
		others[i].send("PING\r\n")
		others[i].readN(1)
	}
	before := e.store.Stats().Commits.Load()
	release := sync.OnceFunc(g.holdSyncs())
	t.Cleanup(release) // a failed assertion must not leave syncs held
	first.send("SET a 1\r\n")
	<-g.entered
	for i, c := range others {
		c.send(fmt.Sprintf("SET k%d v\r\n", i))
	}
	assertNoReply(t, first, "SET whose fsync is held")
	assertNoReply(t, others[0], "SET sent during a held fsync")
	release()
	for _, c := range append([]*rawConn{first}, others...) {
		if got := c.readN(1); got != "+OK\r\n" {
			t.Fatalf("SET = %q, want +OK", got)
		}
	}
	if n := e.store.Stats().Commits.Load() - before; n != 2 {
		t.Fatalf("6 SETs, 5 of them sent during the first one's fsync, took %d fsyncs; want 2", n)
	}
}

// After a failed sync the client hears an error, never OK, and later
// writes are refused (D6); the connection keeps working for reads.
func TestFailedSyncAnswersErrorNotOK_D6(t *testing.T) {
	g := newSyncGate()
	e := newEnv(t, withSyncGate(g))
	r := e.raw()
	r.send("SET ok 1\r\n")
	if got := r.readN(1); got != "+OK\r\n" {
		t.Fatalf("SET before the fault = %q", got)
	}
	g.failSyncs(errors.New("injected EIO"))
	r.send("SET lost 1\r\nINCR n\r\n")
	got := r.readN(2)
	if strings.Contains(got, "+OK") || strings.Count(got, "-MISCONF") != 2 {
		t.Fatalf("writes after a failed sync = %q, want two MISCONF errors", got)
	}
	r.send("GET ok\r\n")
	if got := r.readN(1); got != "$1\r\n1\r\n" {
		t.Fatalf("durable read after the fault = %q", got)
	}
	if err := e.store.Healthy(); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("store health = %v", err)
	}
}

// Every core sentinel has a RESP error (R5), with a prefix clients can
// tell apart.
func TestEverySentinelIsMapped_R5(t *testing.T) {
	for _, s := range core.Sentinels {
		mapped := false
		for _, m := range errorMap {
			if errors.Is(s, m.err) {
				mapped = true
				break
			}
		}
		if !mapped {
			t.Errorf("core sentinel %q has no RESP mapping", s)
		}
		text := errorText("get", fmt.Errorf("wrapped: %w", s))
		if text == "" || strings.ToUpper(text[:strings.IndexByte(text+" ", ' ')]) != text[:strings.IndexByte(text+" ", ' ')] {
			t.Errorf("%q maps to %q: want an upper-case prefix", s, text)
		}
	}
	for err, want := range map[error]string{
		core.ErrWrongType:                                  "WRONGTYPE Operation against a key holding the wrong kind of value",
		&core.VersionError{Current: 7}:                     "VERSION version mismatch: current version is 7",
		&core.LockedError{Owner: "a", RemainingMs: 5}:      `LOCKED lock is held by "a" for another 5 ms`,
		core.ErrNotHeld:                                    "NOTHELD handle does not hold the mutex",
		core.ErrNoAuth:                                     "NOAUTH Authentication required.",
		core.ErrBadToken:                                   "WRONGPASS invalid username-password pair or user is disabled.",
		fmt.Errorf("%w: count must be 1", core.ErrInvalid): "ERR count must be 1",
	} {
		if got := errorText("get", err); got != want {
			t.Errorf("errorText(%v) = %q, want %q", err, got, want)
		}
	}
}

func (g *syncGate) String() string { return "syncGate" }

// A go-redis client-side pipeline (many commands in one write) gets every
// reply, in order, with per-command errors where they belong.
func TestGoRedisPipelineRepliesInOrder(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	cmds, err := c.Pipelined(bg, func(p redis.Pipeliner) error {
		p.Set(bg, "a", "1", 0)
		p.Incr(bg, "a")
		p.Get(bg, "a")
		p.Do(bg, "SEQ.NEXT", "s")
		p.Set(bg, "str", "x", 0)
		p.Incr(bg, "str") // fails: not an integer
		p.Get(bg, "nope")
		p.Do(bg, "KV.SET", "kv", "v", "VER", "0")
		p.MGet(bg, "a", "nope")
		return nil
	})
	if err == nil {
		t.Fatal("pipeline with a failing INCR reported no error")
	}
	want := []string{"OK", "2", "2", "1", "OK", "ERR value is not an integer or out of range", "redis: nil", "", "[2 <nil>]"}
	for i, cmd := range cmds {
		var got string
		switch {
		case cmd.Err() != nil:
			got = cmd.Err().Error()
		default:
			got = fmt.Sprint(reflect.ValueOf(cmd).MethodByName("Val").Call(nil)[0].Interface())
		}
		if want[i] != "" && got != want[i] {
			t.Errorf("cmd %d %v = %q, want %q", i, cmd.Args(), got, want[i])
		}
	}
}

// Running out of file descriptors for a moment does not stop the server:
// Serve backs off and accepts again (and returns nil only at Close, which
// the env's cleanup checks).
func TestAnAcceptErrorDoesNotStopTheServer(t *testing.T) {
	e := newEnv(t, func(ec *envConfig) {
		ec.wrap = func(ln net.Listener) net.Listener { return &evlooptest.FlakyListener{Listener: ln} }
	})
	if err := e.client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("PING after an accept error: %v", err)
	}
}
