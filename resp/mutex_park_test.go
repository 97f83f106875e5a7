package resp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// A grant that deliver queued behind the connection's earlier (not yet
// fsynced) replies is not written yet: a client that goes away then must
// pass the mutex on (R4, M1). (Found by a review.)
func TestMLockGrantQueuedBehindUnsyncedReplyPassesOnWhenClientGoes_M1(t *testing.T) {
	fs := faultfs.New(vfs.Default)
	e := newEnv(t, func(c *envConfig) { c.persist = persist.Options{FS: fs} })
	holder := e.client()
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)

	fs.HoldSyncs()
	gone := e.raw()
	// SET's reply waits for its fsync (held) in the replier; MLOCK parks.
	gone.send("SET k v\r\nMLOCK m 60 10\r\n")
	eventually(t, "raw waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err()) // granted: deliver queues it behind SET's reply
	time.Sleep(50 * time.Millisecond)               // let deliverGrants run
	before := e.srv.Clients()
	gone.nc.Close() // the client goes before its grant was written
	eventually(t, "the server noticed", func() bool { return e.srv.Clients() == before-1 })
	fs.ReleaseSyncs()

	next := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	if _, err := next.Do(bg, "MLOCK", "m", "30", "2").Int64(); err != nil {
		t.Fatalf("MLOCK after the granted client went away: %v; the mutex is still held by a client that is gone (M1)", err)
	}
}

// unreadWaiter connects a client that does not read, with small socket
// buffers at both ends (the kernel's would otherwise take megabytes), and
// sends three GETs of big (300 KB each) and MLOCK m dur 10: their 900 KB
// of replies wait in gnet's buffer (under R7's 1 MiB, so the MLOCK behind
// them runs and parks). It returns once the MLOCK waits.
func unreadWaiter(t *testing.T, e *env, dur string) net.Conn {
	t.Helper()
	nc := unreadClient(t, e, "MLOCK m "+dur+" 10\r\n")
	eventually(t, "the waiter parked", func() bool { return e.store.MutexWaiters() == 1 })
	return nc
}

// unreadClient is unreadWaiter's client, which sends cmd behind the GETs.
func unreadClient(t *testing.T, e *env, cmd string) net.Conn {
	t.Helper()
	nc := smallBufferedConn(t, e)
	if _, err := nc.Write([]byte("GET big\r\nGET big\r\nGET big\r\n" + cmd)); err != nil {
		t.Fatal(err)
	}
	return nc
}

// smallBufferedConn connects with 4 KiB socket buffers at both ends, so
// that replies the client does not read stay in gnet's buffer.
func smallBufferedConn(t *testing.T, e *env) net.Conn {
	t.Helper()
	small := func(fd int) { _ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) }
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { small(int(fd)) })
	}}
	nc, err := d.Dial("tcp", e.addr)
	must(t, err)
	t.Cleanup(func() { nc.Close() })
	eventually(t, "the server's end found", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		for _, c := range e.srv.mu.clients {
			if gc := c.conn(); gc != nil && c.addr == nc.LocalAddr().String() {
				must(t, syscall.SetsockoptInt(gc.Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096))
				return true
			}
		}
		return false
	})
	return nc
}

// An MLOCK granted at once (the mutex was free) whose reply cannot reach
// the client yet — behind a reply that waits for its fsync, or behind
// replies the client has not read — is passed on to the next waiter when
// the client goes first, as a parked wait's grant is (M1; found by
// review: answered inline behind them, it counted as delivered, and the
// mutex stayed held by a client that was gone for its whole duration).
func TestAGrantMadeAtOnceBehindUndeliveredRepliesPassesOnWhenTheClientGoes_M1(t *testing.T) {
	fs := faultfs.New(vfs.Default)
	e := newEnv(t, func(c *envConfig) { c.persist = persist.Options{FS: fs} })
	t.Cleanup(fs.ReleaseSyncs) // a failed check must not leave the server's close held
	must(t, e.client().Set(bg, "big", strings.Repeat("x", 300<<10), 0).Err())
	for _, behind := range []string{"a reply waiting for its fsync", "replies the client has not read"} {
		var gone net.Conn
		if behind == "a reply waiting for its fsync" {
			fs.HoldSyncs()
			r := e.raw()
			r.send("SET k v\r\nMLOCK m 60 10\r\n")
			gone = r.nc
		} else {
			gone = unreadClient(t, e, "MLOCK m 60 10\r\n")
		}
		time.Sleep(100 * time.Millisecond) // its MLOCK runs: the mutex is free
		next := e.raw()
		next.send("MLOCK m 30 10\r\n")
		eventually(t, "the next client waits", func() bool { return e.store.MutexWaiters() == 1 })
		next.silentFor(100*time.Millisecond, "behind "+behind+", the next MLOCK")
		gone.Close() // the first client goes without its grant
		if h := next.readN(1); h[0] != ':' {
			t.Fatalf("behind %s: once the first client went, the next got %q, want a handle (M1)", behind, h)
		} else {
			fs.ReleaseSyncs()
			must(t, e.client().Do(bg, "MUNLOCK", "m", strings.TrimSpace(h[1:])).Err())
		}
	}
}

// A parked MLOCK granted while an earlier reply of its connection waits
// for its fsync waits for that reply to be written, and then for the
// client to read what it was sent, before it is written; a client that
// goes before passes it on (M1), and a hold that ran out meanwhile is
// answered as a timed-out wait, not with a handle another client's grant
// has made stale (found by review: queued behind the fsync, the grant was
// written unchecked).
func TestAGrantBehindAReplyWaitingForItsFsyncIsCheckedWhenItsTurnComes_M1(t *testing.T) {
	fs := faultfs.New(vfs.Default)
	e := newEnv(t, func(c *envConfig) { c.persist = persist.Options{FS: fs} })
	t.Cleanup(fs.ReleaseSyncs)
	holder := e.client()
	must(t, holder.Set(bg, "big", strings.Repeat("x", 300<<10), 0).Err())

	// Behind unread replies: passed on when the client goes.
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	fs.HoldSyncs()
	nc := unreadClient(t, e, "SET k v\r\nMLOCK m 30 10\r\n")
	eventually(t, "the waiter parked", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err()) // granted while SET's reply waits for its fsync
	time.Sleep(50 * time.Millisecond)               // let deliverGrants run
	fs.ReleaseSyncs()
	time.Sleep(200 * time.Millisecond) // the GETs' and SET's replies are written, unread
	before := e.srv.Clients()
	nc.Close()
	eventually(t, "the server noticed", func() bool { return e.srv.Clients() == before-1 })
	next := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	h2, err := next.Do(bg, "MLOCK", "m", "30", "2").Int64()
	if err != nil {
		t.Fatalf("MLOCK after the granted client went away unread: %v; its grant was written behind replies it never read (M1)", err)
	}

	// Its hold runs out before its turn: answered nil.
	fs.HoldSyncs()
	a := e.raw()
	a.send("SET k v\r\nMLOCK m 0.3 10\r\n")
	eventually(t, "a parked", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, next.Do(bg, "MUNLOCK", "m", h2).Err()) // granted to a for 0.3 s, behind SET's reply
	time.Sleep(500 * time.Millisecond)             // a's hold runs out
	b, err := next.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	fs.ReleaseSyncs()
	if out := a.readN(2); out != "+OK\r\n$-1\r\n" {
		t.Fatalf("a, whose hold ran out while its grant waited behind SET's fsync, was answered %q while b holds the mutex (%d): want nil", out, b)
	}
}

// A grant for a client that has not read what it was sent (gnet holds
// replies the socket would not take) is held back until it has: written
// behind them, it counted as delivered, and a client that then went away
// without reading held the mutex for its whole duration (M1). One that
// reads gets it.
func TestAGrantBehindUnreadRepliesPassesOnWhenTheClientGoes_M1(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	must(t, holder.Set(bg, "big", strings.Repeat("x", 300<<10), 0).Err())
	for _, reads := range []bool{false, true} {
		h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
		must(t, err)
		nc := unreadWaiter(t, e, "30")
		must(t, holder.Do(bg, "MUNLOCK", "m", h).Err()) // granted to the client that does not read
		time.Sleep(50 * time.Millisecond)
		if reads {
			nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			const replies = 3 * (300<<10 + len("$307200\r\n\r\n"))
			b, err := io.ReadAll(io.LimitReader(nc, int64(replies)))
			must(t, err)
			line, err := bufio.NewReader(nc).ReadString('\n')
			if len(b) != replies || err != nil || line[0] != ':' {
				t.Fatalf("after reading its replies, the waiter got %q, %v; want its handle", line, err)
			}
			must(t, holder.Do(bg, "MUNLOCK", "m", strings.TrimSpace(line[1:])).Err())
			continue
		}
		before := e.srv.Clients()
		nc.Close() // it goes without reading anything
		eventually(t, "the server noticed", func() bool { return e.srv.Clients() == before-1 })
		next := e.client(func(o *redis.Options) { o.PoolSize = 1 })
		h2, err := next.Do(bg, "MLOCK", "m", "30", "2").Int64()
		if err != nil {
			t.Fatalf("MLOCK after the granted client went away unread: %v; the mutex is held by a client that never got its grant (M1)", err)
		}
		must(t, next.Do(bg, "MUNLOCK", "m", h2).Err())
	}
	// A held-back grant whose hold ran out before the client read is
	// answered as a timed-out wait: its handle would make two clients
	// believe they hold the mutex (found by review).
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	nc := unreadWaiter(t, e, "0.3")
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	time.Sleep(400 * time.Millisecond) // its hold runs out, unread
	h3, err := holder.Do(bg, "MLOCK", "m", "30", "2").Int64()
	must(t, err)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	const replies = 3 * (300<<10 + len("$307200\r\n\r\n"))
	if _, err := io.ReadFull(nc, make([]byte, replies)); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(nc).ReadString('\n'); err != nil || line != "$-1\r\n" {
		t.Fatalf("a grant whose hold ran out unread was answered %q, %v; want nil (another client holds it)", line, err)
	}
	must(t, holder.Do(bg, "MUNLOCK", "m", h3).Err())
}

// A shutdown does not wait for a client that does not read to take a
// held-back grant: the grant is written and the connection closes after
// the usual wait for its output (closeFlushWait), not never (found by
// review: StopWaiters does not answer a wait already granted).
func TestShutdownDoesNotWaitForAHeldBackGrant_R8(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	must(t, holder.Set(bg, "big", strings.Repeat("x", 300<<10), 0).Err())
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	unreadWaiter(t, e, "30")
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	time.Sleep(50 * time.Millisecond)
	e.srv.Drain()
	e.store.StopWaiters()
	ctx, cancel := context.WithTimeout(bg, closeFlushWait+20*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Shutdown(ctx); err != nil || time.Since(start) > closeFlushWait+5*time.Second {
		t.Fatalf("Shutdown took %v: %v", time.Since(start), err)
	}
}

// The commands pipelined behind a parked MLOCK are timed from when they
// run, not from when the MLOCK was read (its wait is not theirs: metrics,
// slow log). (Found by a review.)
func TestCommandsAfterParkedMLockAreTimedFromTheirOwnStart(t *testing.T) {
	var mu sync.Mutex
	durs := map[string]time.Duration{}
	e := newEnv(t, withRESP(func(c *Config) {
		c.Observe = func(cmd, status string, d time.Duration) {
			mu.Lock()
			durs[cmd] = max(durs[cmd], d)
			mu.Unlock()
		}
	}))
	holder := e.client()
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	r := e.raw()
	r.send("MLOCK m 30 10\r\nPING\r\n")
	eventually(t, "raw waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	time.Sleep(500 * time.Millisecond)
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	if out := r.readN(2); !strings.HasSuffix(out, "+PONG\r\n") {
		t.Fatalf("replies = %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if d := durs["ping"]; d > 250*time.Millisecond {
		t.Fatalf("PING pipelined behind a parked MLOCK observed as taking %v: timed from before the MLOCK's wait", d)
	}
}

// What a client sent behind its blocked MLOCK is refused at shutdown, not
// run once the MLOCK is answered (R8), when the servers drain before the
// store's waiters are stopped, as the binary does. (Found by a review.)
func TestCommandsBehindABlockedMLockAreRefusedAtShutdown_R8(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprint(loops), func(t *testing.T) {
			e := newEnv(t, withRESP(func(c *Config) { c.EventLoops = loops }))
			r, _ := holdMutex(t, e, "SET a 1\r\nMLOCK m 30 100\r\nPING\r\n")
			e.srv.Drain()
			e.store.StopWaiters()
			done := e.shutdownAsync()
			got := r.expectClosed()
			if strings.Contains(got, "PONG") || !strings.HasPrefix(got, "+OK\r\n-") || !strings.HasSuffix(got, "-ERR server is shutting down\r\n") || strings.Count(got, "\r\n") != 3 {
				t.Fatalf("replies = %q, want SET's +OK, MLOCK's error, then one shutting-down error for the PING", got)
			}
			must(t, <-done)
		})
	}
}

// Two connections on one loop that pipeline MLOCK/MUNLOCK at each other
// (handles are predictable) hand the mutex back and forth thousands of
// times within one delivery: deliverHere must do that iteratively. With a
// delivery nested per handover (~1 KiB of stack each), this test's 2 MiB
// stack limit overflows (a fatal error); the default 1 GiB limit only
// takes more input, ~45 MB of it. (Found by a review.)
func TestPipelinedHandoversDoNotNestDeliveries(t *testing.T) {
	defer debug.SetMaxStack(debug.SetMaxStack(2 << 20))
	e := newEnv(t, withRESP(func(c *Config) { c.EventLoops = 1 }))
	holder := e.raw()
	holder.send("MLOCK m 30 0\r\n")
	h0, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(holder.readN(1), ":")), 10, 64)
	must(t, err)
	const n = 3000
	conns := []*rawConn{e.raw(), e.raw()}
	conns[0].send("MLOCK m 30 10\r\n")
	eventually(t, "the first waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	conns[1].send("MLOCK m 30 10\r\n")
	eventually(t, "the second waiter queued", func() bool { return e.store.MutexWaiters() == 2 })
	for k, c := range conns {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "MUNLOCK m %d\r\n", h0+uint64(2*i+k+1))
			if i < n-1 {
				b.WriteString("MLOCK m 30 10\r\n")
			}
		}
		c.send(b.String()) // runs once granted
	}
	holder.send(fmt.Sprintf("MUNLOCK m %d\r\n", h0))
	if got := holder.readN(1); got != "+OK\r\n" {
		t.Fatalf("holder's MUNLOCK = %q", got)
	}
	for k, c := range conns {
		out := c.readN(2 * n) // the first MLOCK's handle, then OK and a handle in turn
		if got := strings.Count(out, "+OK\r\n"); got != n {
			t.Fatalf("connection %d: %d MUNLOCKs answered OK of %d (…%.200q)", k, got, n, out[max(0, len(out)-200):])
		}
	}
	if _, err := e.client().Do(bg, "MLOCK", "m", "1", "0").Int64(); err != nil {
		t.Fatalf("the mutex after the handovers: %v, want it free", err)
	}
}
