package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/internal/logtest"
	"github.com/concurrencydb/concurrencydb/metrics"
	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// newMetricsServer is a store on fs behind the HTTP API with /metrics
// wired as cmd/concurrencydb wires it.
func newMetricsServer(t *testing.T, fs vfs.FS, auth core.Auth) *testServer {
	t.Helper()
	db, err := persist.Open(t.TempDir(), persist.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() }) // after a failed sync Pebble reports it again
	m := metrics.New()
	store, err := core.Open(db, core.Config{CommitObserver: m.ObserveCommit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil && !errors.Is(err, core.ErrUnavailable) {
			t.Errorf("closing store: %v", err)
		}
	})
	url := serveLoop(t, store, httpapi.Config{
		Auth:      auth,
		Metrics:   m.Handler(),
		Observe:   func(cmd, status string, d time.Duration) { m.ObserveRequest("http", cmd, status, d) },
		ConnState: m.HTTPConnState,
	})
	m.Attach(store, nil)
	return &testServer{url: url, store: store}
}

// metricsText is GET /metrics as text.
func (s *testServer) metricsText(t *testing.T) string {
	t.Helper()
	r := s.do(t, "GET", "/metrics", nil, nil)
	if r.status != 200 {
		t.Fatalf("GET /metrics = %d %s", r.status, r.body)
	}
	return string(r.body)
}

// TestFsyncFailureAnswers503ServesReadsAndLogsOnce_D6: once an fsync
// fails, every write over HTTP answers 503 unavailable (never 2xx), also
// from concurrent clients; reads of durable data still answer 200;
// /healthz and the concurrencydb_writable gauge turn unhealthy; the cause
// is logged once, not once per write (core D6, H1).
func TestFsyncFailureAnswers503ServesReadsAndLogsOnce_D6(t *testing.T) {
	logs := logtest.Capture(t)
	fs := faultfs.New(vfs.Default)
	s := newMetricsServer(t, fs, core.Auth{})
	s.do(t, "PUT", "/db/a/kv/durable", []byte("v1"), nil).want(t, 200)
	s.do(t, "PUT", "/db/a/kv/untouched", []byte("u"), nil).want(t, 200)
	s.do(t, "POST", "/db/a/counter/ctr", nil, nil).want(t, 200)
	s.do(t, "POST", "/db/a/sequence/seq", nil, nil).want(t, 200)
	if m := s.metricsText(t); !strings.Contains(m, "concurrencydb_writable 1") {
		t.Fatalf("writable gauge before the failure:\n%s", m)
	}

	fs.FailSyncs()

	writes := []struct{ method, path, body string }{
		{"PUT", "/db/a/kv/durable", "v2"},
		{"POST", "/db/a/counter/ctr", ""},
		{"POST", "/db/a/sequence/seq", ""},
		{"DELETE", "/db/a/kv/untouched", ""},
		{"POST", "/db/a/lock/job?owner=me&dur=10", ""},
		{"DELETE", "/db/a/sequence/seq", ""},
	}
	for _, w := range writes {
		r := s.do(t, w.method, w.path, []byte(w.body), nil)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"unavailable"`) {
			t.Fatalf("%s %s after a failed fsync = %d %s, want 503 unavailable", w.method, w.path, r.status, r.body)
		}
	}
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for j := 0; j < 10; j++ {
				r, err := s.send(context.Background(), "POST", "/db/a/counter/ctr", nil, nil)
				if err == nil && r.status < 300 {
					acked.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := acked.Load(); n != 0 {
		t.Fatalf("%d writes acknowledged after a failed fsync", n)
	}

	// Durable data is still served; the key written in the failed batch
	// may answer an error instead, but never the failed value.
	if r := s.do(t, "GET", "/db/a/kv/durable", nil, nil); r.status == 200 && string(r.body) != "v1" {
		t.Fatalf("GET of the key whose write failed = %q, want v1 or an error", r.body)
	}
	s.do(t, "GET", "/db/a/kv/untouched", nil, nil).wantValue(t, "u")
	s.do(t, "GET", "/db/a/counter/ctr", nil, nil).wantValue(t, "1\n")
	s.do(t, "GET", "/db/a/sequence/seq", nil, nil).wantValue(t, "1\n")

	if r := s.do(t, "GET", "/healthz", nil, nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("/healthz after a failed fsync = %d %s, want 503", r.status, r.body)
	}
	m := s.metricsText(t)
	for _, line := range []string{
		"concurrencydb_writable 0",
		`concurrencydb_requests_total{command="POST /db/{acc}/counter/{id}",protocol="http",status="503"} 81`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %q:\n%s", line, m)
		}
	}
	if n := strings.Count(logs.String(), "storage failed; refusing"); n != 1 {
		t.Fatalf("the failed sync was logged %d times, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
		t.Fatalf("%d error lines in the log, want the one naming the failed sync:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), faultfs.ErrInjectedSync.Error()) {
		t.Fatalf("the log does not name the cause:\n%s", logs)
	}
}
