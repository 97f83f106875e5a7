package metrics

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/persist"
)

// gather returns the metric families by name.
func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// TestCommitObserverFeedsBothHistograms: every synced batch of a real store
// lands in the batch-size and commit-latency histograms, and the gauges
// read the store (X2).
func TestCommitObserverFeedsBothHistograms(t *testing.T) {
	db, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := New()
	s, err := core.Open(db, core.Config{CommitObserver: m.ObserveCommit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m.Attach(s, func() int { return 3 })
	ctx := t.Context()
	for i := 0; i < 5; i++ {
		if _, err := s.CtrAdd(ctx, "a", "c", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CtrAdd(ctx, "a", "d", 1); err != nil {
		t.Fatal(err)
	}
	f := gather(t, m)
	batches := f["concurrencydb_group_commit_writes"].GetMetric()[0].GetHistogram()
	commits := f["concurrencydb_commit_duration_seconds"].GetMetric()[0].GetHistogram()
	if batches.GetSampleCount() == 0 || batches.GetSampleCount() != commits.GetSampleCount() {
		t.Fatalf("batches %d, commits %d: want the same non-zero count", batches.GetSampleCount(), commits.GetSampleCount())
	}
	if batches.GetSampleSum() != 6 {
		t.Fatalf("writes in batches = %v, want 6", batches.GetSampleSum())
	}
	if uint64(batches.GetSampleCount()) != s.Stats().Commits.Load() {
		t.Fatalf("histogram count %d != store commits %d", batches.GetSampleCount(), s.Stats().Commits.Load())
	}
	if v := f["concurrencydb_keys"].GetMetric()[0].GetGauge().GetValue(); v != 2 {
		t.Fatalf("keys = %v, want 2", v)
	}
	if v := f["concurrencydb_disk_usage_bytes"].GetMetric()[0].GetGauge().GetValue(); v <= 0 {
		t.Fatalf("disk usage = %v, want > 0", v)
	}
	if v := f["concurrencydb_record_disk_reads_total"].GetMetric()[0].GetCounter().GetValue(); v == 0 || v != float64(s.Stats().DiskReads.Load()) {
		t.Fatalf("record disk reads = %v, store counted %d (two new keys: want > 0)", v, s.Stats().DiskReads.Load())
	}
	if v := f["concurrencydb_record_ring_hits_total"].GetMetric()[0].GetCounter().GetValue(); v != float64(s.Stats().RingHits.Load()) {
		t.Fatalf("record ring hits = %v, store counted %d", v, s.Stats().RingHits.Load())
	}
	conns := map[string]float64{}
	for _, mm := range f["concurrencydb_open_connections"].GetMetric() {
		conns[mm.GetLabel()[0].GetValue()] = mm.GetGauge().GetValue()
	}
	if conns["resp"] != 3 || conns["http"] != 0 {
		t.Fatalf("open connections = %v, want resp 3, http 0", conns)
	}
}

// TestHTTPConnStateCountsOpenConnections: new minus closed or hijacked.
func TestHTTPConnStateCountsOpenConnections(t *testing.T) {
	m := New()
	for _, st := range []http.ConnState{http.StateNew, http.StateNew, http.StateActive, http.StateIdle, http.StateClosed, http.StateNew, http.StateHijacked} {
		m.HTTPConnState(nil, st)
	}
	if n := m.httpConns.Load(); n != 1 {
		t.Fatalf("open HTTP connections = %d, want 1", n)
	}
}

// TestRequestsAreCountedByLabels: one series per protocol, command, status.
func TestRequestsAreCountedByLabels(t *testing.T) {
	m := New()
	m.ObserveRequest("resp", "set", "ok", time.Millisecond)
	m.ObserveRequest("resp", "set", "ok", time.Millisecond)
	m.ObserveRequest("http", "GET /db/{acc}/kv/{id}", "404", time.Millisecond)
	f := gather(t, m)
	if n := len(f["concurrencydb_requests_total"].GetMetric()); n != 2 {
		t.Fatalf("%d request series, want 2", n)
	}
	for _, mm := range f["concurrencydb_requests_total"].GetMetric() {
		if mm.GetLabel()[1].GetValue() == "resp" && mm.GetCounter().GetValue() != 2 {
			t.Fatalf("resp set ok = %v, want 2", mm.GetCounter().GetValue())
		}
	}
}

// TestCountRejectedReportsEachProtocol: the refusals over each protocol's
// connection limit, read when scraped.
func TestCountRejectedReportsEachProtocol(t *testing.T) {
	m := New()
	var resp, http int64 = 2, 5
	m.CountRejected("resp", func() int64 { return resp })
	m.CountRejected("http", func() int64 { return http })
	http++
	got := map[string]float64{}
	for _, mm := range gather(t, m)["concurrencydb_rejected_connections_total"].GetMetric() {
		got[mm.GetLabel()[0].GetValue()] = mm.GetCounter().GetValue()
	}
	if got["resp"] != 2 || got["http"] != 6 {
		t.Fatalf("rejected connections = %v, want resp 2, http 6", got)
	}
}

// TestAFailedKeyCountWaitsLikeASuccessfulOne: a count that fails (here the
// store is closed; in production, a keyspace that outlasts the count's 5 s
// deadline) keeps the last figure and is not tried again before
// KeysRefresh, so scrapes do not each spend the deadline (X2).
func TestAFailedKeyCountWaitsLikeASuccessfulOne(t *testing.T) {
	db, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := core.Open(db, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CtrAdd(t.Context(), "a", "c", 1); err != nil {
		t.Fatal(err)
	}
	m := New()
	if n := m.keyCount(s); n != 1 {
		t.Fatalf("keys = %v, want 1", n)
	}
	m.keys.at = time.Time{} // due again
	s.Close()
	if n := m.keyCount(s); n != 1 {
		t.Fatalf("keys after a failed count = %v, want the last figure, 1", n)
	}
	if m.keys.at.IsZero() {
		t.Fatal("a failed count left the next scrape due at once")
	}
}
