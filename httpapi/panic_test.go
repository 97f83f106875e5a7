package httpapi

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/persist"
)

// OpenTestStore opens a store in a temp dir, closed when the test ends
// (for this package's tests, internal and external).
func OpenTestStore(t *testing.T, o persist.Options) *core.Store {
	t.Helper()
	db, err := persist.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := core.Open(db, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// A handler that panics is answered 500, the server goes on, and the
// request is reported once, as 500 (H6), on the loop and off it (GET
// /metrics runs off the loop). No route panics; the test adds one.
func TestAPanickingHandlerIsAnswered500AndReportedOnce(t *testing.T) {
	store := OpenTestStore(t, persist.Options{})
	var mu sync.Mutex
	reports := map[string][]string{}
	srv := NewServer(store, Config{
		Observe: func(cmd, status string, d time.Duration) {
			mu.Lock()
			reports[cmd] = append(reports[cmd], status)
			mu.Unlock()
		},
		Metrics: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("metrics boom") }),
	}, Limits{})
	srv.mux.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	for _, path := range []string{"/boom", "/metrics"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 500 {
			t.Fatalf("GET %s: %d, want 500", path, res.StatusCode)
		}
	}
	if res, err := http.Get(base + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("after the panics: %v %v", res, err)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	for _, cmd := range []string{"GET /boom", "GET /metrics"} {
		if got := reports[cmd]; len(got) != 1 || got[0] != "500" {
			t.Errorf("%s reported %v, want [500]", cmd, got)
		}
	}
}
