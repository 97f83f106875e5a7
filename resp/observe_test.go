package resp

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// observed collects Config.Observe calls.
type observed struct {
	mu    sync.Mutex
	calls []string // "command status"
}

func (o *observed) observe(cmd, status string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, cmd+" "+status)
}

func (o *observed) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

// TestObserveCountsEveryCommandWithBoundedLabels: each command is reported
// once, after its reply, with its table name and "ok" or its error prefix;
// an unknown command is "unknown", never the client's text (metrics X1).
// INFO commandstats and errorstats show the same counts in Redis's format.
func TestObserveCountsEveryCommandWithBoundedLabels(t *testing.T) {
	var o observed
	e := newEnv(t, func(c *envConfig) { c.resp.Observe = o.observe })
	r := e.raw()
	r.send("SET k v\r\nINCR k\r\nNOSUCHCMD a b\r\nWRONGTYPE\r\nGET k\r\n")
	r.readN(5)
	want := []string{"set ok", "incr ERR", "unknown ERR", "unknown ERR", "get ok"}
	if got := o.list(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("observed %q, want %q", got, want)
	}
	r.send("INFO commandstats errorstats\r\n")
	info := r.readN(1)
	for _, line := range []string{
		"cmdstat_set:calls=1,", "cmdstat_get:calls=1,",
		"cmdstat_incr:calls=1,", "failed_calls=1\r\n", "errorstat_ERR:count=3",
	} {
		if !strings.Contains(info, line) {
			t.Errorf("INFO lacks %q:\n%s", line, info)
		}
	}
	r.send("INFO stats\r\n")
	if info := r.readN(1); !strings.Contains(info, "total_error_replies:3\r\n") {
		t.Errorf("INFO stats lacks total_error_replies:3:\n%s", info)
	}
}

// TestSlowLogNamesTheCommandButNotMutexWaits: above the threshold a
// command is logged with its name and key; MLOCK, whose time is the wait
// the client asked for, is not. No argument but a key is logged: AUTH's
// is a token (a review found the slow log printing it, tried or valid),
// and an unknown command's may be anything.
func TestSlowLogNamesTheCommandButNotMutexWaits(t *testing.T) {
	logs := captureLogs(t)
	e := newEnv(t, func(c *envConfig) { c.resp.SlowLog = time.Nanosecond }, withAuth(core.Auth{Token: "s3cr3t-root"}))
	r := e.raw()
	r.send("AUTH s3cr3t-tried\r\nAUTH s3cr3t-root\r\nHELLO 2 AUTH default s3cr3t-root\r\nNOSUCH s3cr3t-x\r\nSET {a}:slowkey v\r\nMLOCK {a}:m 10 0\r\n")
	r.readN(6)
	got := logs.String()
	if strings.Contains(got, "s3cr3t") {
		t.Fatalf("the slow log holds a token:\n%s", got)
	}
	if !strings.Contains(got, "slow operation") || !strings.Contains(got, "command=set") || !strings.Contains(got, "key={a}:slowkey") {
		t.Fatalf("no slow-operation line for SET:\n%s", got)
	}
	if strings.Contains(got, "command=mlock") {
		t.Fatalf("MLOCK was logged as slow:\n%s", got)
	}
}

// TestShutdownAnswersWaitersAndClosesIdleConnections: Shutdown after
// StopWaiters writes the blocked MLOCK's error reply before closing its
// connection, closes idle connections, and refuses new ones (R1, R4).
func TestShutdownAnswersWaitersAndClosesIdleConnections(t *testing.T) {
	e := newEnv(t)
	holder, waiter, idle := e.raw(), e.raw(), e.raw()
	holder.send("MLOCK m 60 0\r\n")
	if rep := holder.readN(1); !strings.HasPrefix(rep, ":") {
		t.Fatalf("holder MLOCK = %q", rep)
	}
	waiter.send("MLOCK m 60 3600\r\n")
	for e.store.MutexWaiters() != 1 {
		time.Sleep(time.Millisecond)
	}
	idle.send("PING\r\n")
	idle.readN(1)

	e.store.StopWaiters()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if rep := waiter.readN(1); !strings.HasPrefix(rep, "-ERR server is shutting down") {
		t.Fatalf("blocked MLOCK got %q, want the shutting-down error", rep)
	}
	for _, c := range []*rawConn{waiter, idle} {
		c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.nc.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after Shutdown the connection read (%d, %v), want EOF", n, err)
		}
	}
}

// TestShutdownLetsAnInFlightWriteCommitAndReply: a SET whose fsync is in
// progress when Shutdown starts still gets its +OK (after the sync, R1),
// and Shutdown waits for it; a new connection meanwhile is refused.
func TestShutdownLetsAnInFlightWriteCommitAndReply(t *testing.T) {
	fs := faultfs.New(vfs.Default)
	e := newEnv(t, func(c *envConfig) { c.persist = persist.Options{FS: fs} })
	w := e.raw()
	fs.HoldSyncs()
	release := fs.ReleaseSyncs
	t.Cleanup(release) // a failed assertion must not leave syncs held
	w.send("SET k v\r\n")
	select {
	case <-fs.Held: // the write's batch is being synced
	case <-time.After(10 * time.Second):
		t.Fatal("the SET never reached its sync")
	}

	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	// Shutdown cannot finish while the write waits for its sync.
	for !e.srv.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a write was waiting for its fsync", err)
	default:
	}
	if nc, err := net.Dial("tcp", e.addr); err == nil {
		// Accepted just before the listener closed: refused with an error
		// and closed, never served.
		nc.Write([]byte("PING\r\n"))
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, _ := io.ReadAll(nc)
		if len(got) > 0 && !strings.HasPrefix(string(got), "-ERR server is shutting down") {
			t.Errorf("a connection opened during shutdown got %q", got)
		}
		nc.Close()
	}
	release()
	if rep := w.readN(1); rep != "+OK\r\n" {
		t.Fatalf("in-flight SET got %q, want +OK", rep)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if v, err := e.store.KVGet(context.Background(), "0", "k"); err != nil || string(v.Value) != "v" {
		t.Fatalf("after Shutdown k = (%q, %v), want v", v.Value, err)
	}
}

// The backlog error queued behind a blocked MLOCK still comes after
// MLOCK's reply when Shutdown drains the connection: replies leave in
// command order (R1, R6).
func TestShutdownKeepsTheBacklogErrorBehindTheBlockedReply_R6(t *testing.T) {
	e := newEnv(t)
	r, _ := holdMutex(t, e, "MLOCK m 30 3\r\n")            // Shutdown closes the holder too
	junk := []byte(strings.Repeat("PING\r\n", (20<<20)/6)) // above maxBacklog
	go r.nc.Write(junk)
	time.Sleep(1500 * time.Millisecond) // the backlog error is in c.r by now
	done := e.shutdownAsync()
	got := r.expectClosed()
	if !strings.HasPrefix(got, "$-1\r\n-ERR Protocol error: too much data sent while blocked") {
		t.Fatalf("replies = %.120q, want MLOCK's nil first, then the protocol error", got)
	}
	<-done
}
