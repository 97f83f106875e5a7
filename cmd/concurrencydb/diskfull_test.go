package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
	"github.com/concurrencydb/concurrencydb/resp"
)

// A full disk (writes fail with ENOSPC): the write that meets it and every
// later one answer a clear error over both protocols (HTTP 503
// "unavailable", RESP MISCONF), never OK; the store fail-stops (core's D6:
// it cannot know which bytes reached the WAL, so it refuses writes until a
// restart, also once space is freed); reads of durable data still work and
// never show the refused write (a key the failing batch wrote answers
// "unavailable": its value is unknown until a restart); after a restart with space, everything
// acknowledged is there and the refused write is not.
func TestDiskFullAnswersErrorsAndKeepsServingReads_D6(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	sv := serveFaulty(t, dir, persist.Options{FS: fs})
	hs, st, ln := sv.hs, sv.st, sv.ln
	closed := false
	shut := func() {
		if closed {
			return
		}
		closed = true
		sv.stop()
	}
	defer shut()

	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	rc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cmd := respLine(t, rc)

	if code, _ := do("POST", "/db/acme/kv/k", "durable"); code != 200 {
		t.Fatalf("POST before full: %d", code)
	}
	if code, _ := do("POST", "/db/acme/kv/u", "durable"); code != 200 {
		t.Fatalf("POST before full: %d", code)
	}
	if got := cmd("SET {acme}:r durable"); got != "+OK\r\n" {
		t.Fatalf("SET before full: %q", got)
	}
	if got := cmd("SEQ.NEXT {acme}:s"); got != ":1\r\n" {
		t.Fatalf("SEQ.NEXT before full: %q", got)
	}

	fs.Fill()
	code, body := do("POST", "/db/acme/kv/k", "lost")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"unavailable"`) || !strings.Contains(body, "no space left on device") {
		t.Fatalf("POST on a full disk: %d %s, want 503 unavailable naming ENOSPC", code, body)
	}
	for _, c := range []string{"SET {acme}:r lost", "INCR {acme}:n", "SEQ.NEXT {acme}:s", "LOCK.ACQUIRE {acme}:l o 10"} {
		if got := cmd(c); !strings.HasPrefix(got, "-MISCONF") {
			t.Fatalf("%s on a full disk: %q, want a MISCONF error", c, got)
		}
	}
	if code, body := do("POST", "/db/acme/sequence/s", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("sequence on a full disk: %d %s", code, body)
	}
	if code, _ := do("GET", "/healthz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz on a full disk: %d", code)
	}
	// Reads of durable data still work. A key written by the batch that met
	// the full disk is unknown (the write may be in Pebble's memtable and
	// partly in its WAL): it answers 503 rather than either value, and
	// never the refused one as if it were durable.
	if code, body := do("GET", "/db/acme/kv/u", ""); code != 200 || body != "durable" {
		t.Fatalf("GET of an untouched key after full: %d %q", code, body)
	}
	if code, body := do("GET", "/db/acme/kv/k", ""); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":"unavailable"`) {
		t.Fatalf("GET of the key whose write met the full disk: %d %q, want 503", code, body)
	}
	if got := cmd("GET {acme}:r"); got != "$7\r\ndurable\r\n" {
		t.Fatalf("RESP GET after full: %q", got)
	}
	if got := cmd("SEQ.GET {acme}:s"); got != "$1\r\n1\r\n" && got != ":1\r\n" {
		t.Fatalf("SEQ.GET after full: %q", got)
	}
	// Fail-stop: freeing space does not bring writes back without a restart.
	fs.Free()
	if code, _ := do("POST", "/db/acme/kv/k", "later"); code != http.StatusServiceUnavailable {
		t.Fatalf("POST after space was freed: %d, want 503 until restart", code)
	}

	shut()
	st = reopenStore(t, dir)
	ctx := t.Context()
	// The refused write was never acknowledged: either value may be there.
	kv, err := st.KVGet(ctx, "acme", "k")
	if err != nil || string(kv.Value) != "durable" && string(kv.Value) != "lost" {
		t.Fatalf("after restart: k = %q, %v", kv.Value, err)
	}
	if kv, err := st.KVGet(ctx, "acme", "u"); err != nil || string(kv.Value) != "durable" {
		t.Fatalf("after restart: u = %q, %v", kv.Value, err)
	}
	if v, ok, err := st.Get(ctx, "acme", "r"); err != nil || !ok || string(v) != "durable" {
		t.Fatalf("after restart: r = %q %v %v", v, ok, err)
	}
	if _, err := st.CtrGet(ctx, "acme", "n"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("after restart: the refused INCR exists: %v", err)
	}
	if n, err := st.SeqNext(ctx, "acme", "s", 1); err != nil || n < 2 {
		t.Fatalf("after restart: SEQ.NEXT = %d, %v; want above the acknowledged 1", n, err)
	}
}

// A disk full for new files only: the pre-allocated write-ahead log still
// takes writes, but Pebble cannot create the tables its flushes need
// (persist's P6). Writes over RESP then answer MISCONF within moments —
// the event loop never stalls in Pebble's write throttle — while PING and
// reads of acknowledged data keep working, /healthz says 503, shutdown
// returns, and after a restart with space everything acknowledged is there.
func TestDiskFullForNewFilesAnswersErrorsInsteadOfHanging_P6(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	sv := serveFaulty(t, dir, persist.Options{FS: fs, MemTableBytes: 256 << 10})
	hs := sv.hs
	rc, err := net.Dial("tcp", sv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	cmd := respLine(t, rc)
	if got := cmd("SET {acme}:first durable"); got != "+OK\r\n" {
		t.Fatalf("SET before the disk filled: %q", got)
	}
	fs.FillNewFiles()
	val := strings.Repeat("v", 1000)
	acked := 0
	for ; acked < 20000; acked++ { // ~20 MB: many memtables' worth
		got := cmd(fmt.Sprintf("SET {acme}:k%d %s", acked, val))
		if strings.HasPrefix(got, "-MISCONF") {
			break
		}
		if got != "+OK\r\n" {
			t.Fatalf("SET %d on a disk full for new files: %q", acked, got)
		}
	}
	if acked == 20000 {
		t.Fatal("no write was refused although Pebble could not flush")
	}
	if got := cmd("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING after the refusal: %q", got)
	}
	if got := cmd("GET {acme}:first"); got != "$7\r\ndurable\r\n" {
		t.Fatalf("GET after the refusal: %q", got)
	}
	if res, err := http.Get(hs.URL + "/healthz"); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz after the refusal: %v %v", res, err)
	}
	stopped := make(chan struct{})
	go func() {
		sv.stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown hung")
	}
	fs.Free()
	st := reopenStore(t, dir)
	for _, id := range []string{"first", "k0", fmt.Sprintf("k%d", acked-1)} {
		if v, ok, err := st.Get(t.Context(), "acme", id); err != nil || !ok {
			t.Fatalf("after a restart, acknowledged %s: %q %v %v", id, v, ok, err)
		}
	}
	t.Logf("%d SETs acknowledged after the disk filled, then MISCONF", acked)
}

// respLine returns a func that sends one RESP command line over rc and
// reads its reply (a bulk string with its value), failing the test when
// none comes within 10 s (a stalled server).
func respLine(t *testing.T, rc net.Conn) func(string) string {
	rr := bufio.NewReader(rc)
	return func(line string) string {
		t.Helper()
		rc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := rc.Write([]byte(line + "\r\n")); err != nil {
			t.Fatal(err)
		}
		s, err := rr.ReadString('\n')
		if err != nil {
			t.Fatalf("%.40s: %v (the server stalled?)", line, err)
		}
		if strings.HasPrefix(s, "$") && s != "$-1\r\n" {
			v, err := rr.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			s += v
		}
		return s
	}
}

// reopenStore opens the store in dir again on the real disk (a restart),
// closed when the test ends.
func reopenStore(t *testing.T, dir string) *core.Store {
	t.Helper()
	db, err := persist.Open(dir, persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := core.Open(db, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// faultyServer is a store over a fault-injecting disk served over HTTP
// (httptest) and RESP (a loopback listener).
type faultyServer struct {
	db   *persist.DB
	hs   *httptest.Server
	st   *core.Store
	ln   net.Listener
	stop func() // closes both servers, then the store and its data
}

func serveFaulty(t *testing.T, dir string, o persist.Options) *faultyServer {
	t.Helper()
	return serveFaultyWith(t, dir, o, core.Config{})
}

func serveFaultyWith(t *testing.T, dir string, o persist.Options, cfg core.Config) *faultyServer {
	t.Helper()
	db, err := persist.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	st, err := core.Open(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(httpapi.New(st, httpapi.Config{}))
	rs := resp.NewServer(st, resp.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- rs.Serve(ln) }()
	return &faultyServer{db: db, hs: hs, st: st, ln: ln, stop: func() {
		hs.Close()
		rs.Close()
		<-served
		st.Close()
		db.Close()
	}}
}

// P7 at the binary: a SET already waiting in Pebble's write throttle when
// the storage fails holds the RESP event loop for as long as the failure
// lasts, so the server answers nothing; watchStalls exits the process so
// that its supervisor can restart it. A throttle that only waits for a
// slow flush does not.
func TestAWriteStuckAfterAStorageFailureExitsTheProcess_P7(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	// fsync off: with it, commits would wait for the held log sync before
	// they reach Pebble; the stall here is Pebble's.
	sv := serveFaultyWith(t, dir, persist.Options{FS: fs, MemTableBytes: 256 << 10}, core.Config{NoSync: true})
	// Read only once exited is closed: the watcher logs, then exits.
	var logs bytes.Buffer
	exited := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go watchStalls(ctx, sv.db, 200*time.Millisecond, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)), func() { close(exited) })

	rc, err := net.Dial("tcp", sv.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rr := bufio.NewReader(rc)
	fs.HoldSyncs() // a slow disk: flushes cannot finish
	val := strings.Repeat("v", 1000)
	for n := 0; ; n++ {
		if n == 20000 {
			t.Fatal("no SET waited for Pebble although its flushes could not finish")
		}
		rc.SetDeadline(time.Now().Add(time.Second))
		if _, err := fmt.Fprintf(rc, "SET k%d %s\r\n", n, val); err != nil {
			t.Fatal(err)
		}
		s, err := rr.ReadString('\n')
		if err != nil {
			break // the loop waits in Pebble's throttle
		}
		if s != "+OK\r\n" {
			t.Fatalf("SET %d: %q", n, s)
		}
	}
	select {
	case <-exited:
		t.Fatal("exited while a flush was only slow")
	case <-time.After(500 * time.Millisecond):
	}
	fs.FailSyncs() // the flush fails, and every retry
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after the storage failed under a waiting write")
	}
	if !strings.Contains(logs.String(), "exiting") {
		t.Fatalf("the exit is not logged: %q", logs.String())
	}
	fs.ReleaseSyncs() // let the test's server stop
	sv.stop()
}
