package metrics

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/concurrencydb/concurrencydb/core"
)

// KeysRefresh is how long the key count is reused before the keyspace is
// counted again: counting reads every key, so a scrape every few seconds
// must not do it each time (X2).
const KeysRefresh = 30 * time.Second

// Metrics holds the collectors of one server process.
type Metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	batch     prometheus.Histogram
	commit    prometheus.Histogram
	httpConns atomic.Int64
	// observers caches each label set's collectors (reqLabels →
	// *reqObserver): resolving them through the vectors hashes and checks
	// every label on every request, ~4% of the server's CPU under
	// pipelined load (profiled). Bounded like the labels (X1).
	observers sync.Map

	keys struct {
		sync.Mutex
		n  float64
		at time.Time
	}
}

// New returns Metrics with the request and commit collectors registered,
// plus Go runtime and process collectors. Attach adds the store's gauges.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "concurrencydb_requests_total",
		Help: "Requests answered, by protocol (resp, http), command (RESP command name, or HTTP method and route pattern) and status (RESP: ok or the error prefix; HTTP: the status code).",
	}, []string{"protocol", "command", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "concurrencydb_request_duration_seconds",
		Help:    "Time from reading a request to releasing its reply, including the wait for its fsync (and for a mutex, the wait for the grant).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18), // 50µs … 6.5s
	}, []string{"protocol", "command"})
	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "concurrencydb_group_commit_writes",
		Help:    "Writes per synced batch (group commit): how many writes shared one fsync.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 … 2048
	})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "concurrencydb_commit_duration_seconds",
		Help:    "Time of one synced batch commit: the WAL write and its fsync.",
		Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16), // 25µs … 0.8s
	})
	m.reg.MustRegister(m.requests, m.latency, m.batch, m.commit,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Attach registers the gauges read from store, and respConns (the open RESP
// connections; nil when RESP is off). Call it once, after core.Open.
func (m *Metrics) Attach(store *core.Store, respConns func() int) {
	gauge := func(name, help string, labels prometheus.Labels, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	const connHelp = "Open client connections."
	gauge("concurrencydb_open_connections", connHelp, prometheus.Labels{"protocol": "http"},
		func() float64 { return float64(m.httpConns.Load()) })
	if respConns != nil {
		gauge("concurrencydb_open_connections", connHelp, prometheus.Labels{"protocol": "resp"},
			func() float64 { return float64(respConns()) })
	}
	gauge("concurrencydb_mutex_waiters", "Clients blocked waiting for a mutex (MLOCK).", nil,
		func() float64 { return float64(store.MutexWaiters()) })
	gauge("concurrencydb_disk_usage_bytes", "Size of the data directory's store files.", nil,
		func() float64 { return float64(store.DiskUsage()) })
	gauge("concurrencydb_writable", "1 while the store accepts writes; 0 after a failed fsync or once closing.", nil,
		func() float64 {
			if store.Healthy() != nil {
				return 0
			}
			return 1
		})
	gauge("concurrencydb_keys", "Live keys of all accounts (approximate: durable keys only, counted at most every 30 s).", nil,
		func() float64 { return m.keyCount(store) })
	counter := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	sts := store.Stats()
	counter("concurrencydb_record_ring_hits_total", "Records read back from the record ring (storage.ring_bytes) because the record cache no longer held them.",
		func() float64 { return float64(sts.RingHits.Load()) })
	counter("concurrencydb_record_disk_reads_total", "Records read from Pebble because neither the record cache nor the record ring held them: when it grows with the load, the working set is larger than both.",
		func() float64 { return float64(sts.DiskReads.Load()) })
}

// CountRejected registers the count of connections protocol refused over
// its connection limit (resp.max_conns, http.max_conns).
func (m *Metrics) CountRejected(protocol string, f func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "concurrencydb_rejected_connections_total",
		Help:        "Connections refused because the protocol's connection limit (resp.max_conns, http.max_conns) was reached.",
		ConstLabels: prometheus.Labels{"protocol": protocol},
	}, func() float64 { return float64(f()) }))
}

// keyCount returns the cached key count, counting again when it is older
// than KeysRefresh. A failed count keeps the last figure, and waits
// KeysRefresh too: a count that ran into its 5 s deadline (a keyspace too
// large for it) must not run again, holding m.keys, at every scrape.
func (m *Metrics) keyCount(store *core.Store) float64 {
	m.keys.Lock()
	defer m.keys.Unlock()
	if !m.keys.at.IsZero() && time.Since(m.keys.at) < KeysRefresh {
		return m.keys.n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ks, err := store.Keyspace(ctx)
	if err != nil {
		m.keys.at = time.Now()
		return m.keys.n
	}
	n := 0
	for _, a := range ks {
		n += a.Keys
	}
	m.keys.n, m.keys.at = float64(n), time.Now()
	return m.keys.n
}

// ObserveCommit is a core.Config.CommitObserver.
func (m *Metrics) ObserveCommit(writes int, d time.Duration) {
	m.batch.Observe(float64(writes))
	m.commit.Observe(d.Seconds())
}

// ObserveRequest counts one answered request and its latency. protocol is
// "resp" or "http"; command and status must come from a bounded set (X1).
func (m *Metrics) ObserveRequest(protocol, command, status string, d time.Duration) {
	k := reqLabels{protocol, command, status}
	o, ok := m.observers.Load(k)
	if !ok {
		o, _ = m.observers.LoadOrStore(k, &reqObserver{
			count:   m.requests.WithLabelValues(protocol, command, status),
			latency: m.latency.WithLabelValues(protocol, command),
		})
	}
	ro := o.(*reqObserver)
	ro.count.Inc()
	ro.latency.Observe(d.Seconds())
}

type reqLabels struct{ protocol, command, status string }

type reqObserver struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// HTTPConnState is an http.Server.ConnState hook counting open connections.
func (m *Metrics) HTTPConnState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		m.httpConns.Add(1)
	case http.StateClosed, http.StateHijacked:
		m.httpConns.Add(-1)
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry the collectors are in (for tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
