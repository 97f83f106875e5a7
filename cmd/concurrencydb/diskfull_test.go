package main

import (
	"bufio"
	"errors"
	"io"
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
	db, err := persist.Open(dir, persist.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	st, err := core.Open(db, core.Config{})
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
	closed := false
	shut := func() {
		if closed {
			return
		}
		closed = true
		hs.Close()
		rs.Close()
		<-served
		st.Close()
		db.Close()
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
	rr := bufio.NewReader(rc)
	cmd := func(line string) string {
		t.Helper()
		rc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := rc.Write([]byte(line + "\r\n")); err != nil {
			t.Fatal(err)
		}
		s, err := rr.ReadString('\n')
		if err != nil {
			t.Fatal(err)
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
	db, err = persist.Open(dir, persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err = core.Open(db, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
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
