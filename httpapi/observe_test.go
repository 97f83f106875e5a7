package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/internal/logtest"
)

// TestMetricsReportRequestsCommitsAndGauges: /metrics (Prometheus text)
// counts requests by route pattern and status — a path no route matches is
// "unmatched", never the raw path (metrics X1) — and shows the commit
// histograms and the store's gauges.
func TestMetricsReportRequestsCommitsAndGauges(t *testing.T) {
	s := newMetricsServer(t, vfs.Default, core.Auth{})
	s.do(t, "POST", "/db/acme/counter/c", nil, nil).want(t, 200)
	s.do(t, "GET", "/db/acme/kv/absent", nil, nil).want(t, 404)
	s.do(t, "GET", "/no/such/path/secret-123", nil, nil).want(t, 404)
	s.do(t, "POST", "/db/acme/nope/x", nil, nil).want(t, 404)
	s.do(t, "POST", "/db/acme/mlock/m?dur=10", nil, nil).want(t, 200)
	// Requests the transport refuses before routing are reported too (H6).
	for _, req := range []string{
		"PUT /db/acme/kv/big HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
		"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n",
	} {
		r := s.raw(t)
		r.send(t, req)
		r.read(t, "PUT")
	}
	m := s.metricsText(t)
	for _, line := range []string{
		`concurrencydb_requests_total{command="POST /db/{acc}/counter/{id}",protocol="http",status="200"} 1`,
		`concurrencydb_requests_total{command="GET /db/{acc}/kv/{id}",protocol="http",status="404"} 1`,
		`concurrencydb_requests_total{command="unmatched",protocol="http",status="404"} 2`,
		`concurrencydb_requests_total{command="unmatched",protocol="http",status="413"} 1`,
		`concurrencydb_requests_total{command="unmatched",protocol="http",status="505"} 1`,
		`concurrencydb_request_duration_seconds_count{command="POST /db/{acc}/counter/{id}",protocol="http"} 1`,
		"concurrencydb_group_commit_writes_count ",
		"concurrencydb_commit_duration_seconds_count ",
		"concurrencydb_mutex_waiters 0",
		"concurrencydb_keys ",
		"concurrencydb_disk_usage_bytes ",
		`concurrencydb_open_connections{protocol="http"} `,
		"concurrencydb_writable 1",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(m, "secret-123") {
		t.Errorf("/metrics contains a raw request path")
	}
}

// TestMetricsNeedTheGlobalTokenWhenAuthIsOn: the figures span every
// account, so an account token is 403 and no token 401.
func TestMetricsNeedTheGlobalTokenWhenAuthIsOn(t *testing.T) {
	s := newMetricsServer(t, vfs.Default, core.Auth{Token: "t", Accounts: map[string]string{"acme": "a"}})
	for _, c := range []struct {
		h      hdr
		status int
	}{
		{nil, http.StatusUnauthorized},
		{hdr{"Authorization", "Bearer wrong"}, http.StatusUnauthorized},
		{hdr{"Authorization", "Bearer a"}, http.StatusForbidden},
		{hdr{"Authorization", "Bearer t"}, http.StatusOK},
	} {
		if r := s.do(t, "GET", "/metrics", nil, c.h); r.status != c.status {
			t.Errorf("GET /metrics with %v = %d %s, want %d", c.h, r.status, r.body, c.status)
		}
	}
}

// TestMetricsAbsentWhenNotConfigured: without Config.Metrics the route is
// a JSON 404.
func TestMetricsAbsentWhenNotConfigured(t *testing.T) {
	s := newServer(t)
	r := s.do(t, "GET", "/metrics", nil, nil)
	if r.status != http.StatusNotFound || !strings.Contains(string(r.body), `"not_found"`) {
		t.Fatalf("GET /metrics without metrics = %d %s, want 404 not_found", r.status, r.body)
	}
}

// TestSlowLogNamesTheRouteButNotMutexWaits: above the threshold a request
// is logged with its route and path; a mutex request, whose time is the
// wait it asked for, is not.
func TestSlowLogNamesTheRouteButNotMutexWaits(t *testing.T) {
	logs := logtest.Capture(t)
	s := newServerWith(t, core.Config{}, httpapi.Config{SlowLog: time.Nanosecond})
	s.do(t, "POST", "/db/acme/counter/slowkey", nil, nil).want(t, 200)
	s.do(t, "POST", "/db/acme/mlock/m?dur=10", nil, nil).want(t, 200)
	got := logs.String()
	if !strings.Contains(got, "slow operation") || !strings.Contains(got, "/db/acme/counter/slowkey") || !strings.Contains(got, "protocol=http") {
		t.Fatalf("no slow-operation line for the counter POST:\n%s", got)
	}
	if strings.Contains(got, "/mlock/") {
		t.Fatalf("a mutex request was logged as slow:\n%s", got)
	}
}
