package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/persist"
)

// These tests drive the HTTP API end to end: a real core.Store on a temp
// dir, served by a real net/http server on a loopback listener, called with
// net/http clients. They check the "HTTP API" section of issue 2 and the
// invariants H1–H5 of doc.go.

// fakeClock is a core.Clock whose Now moves only when the test advances
// it, so TTL and lock expiry are checked without sleeping or timing.
// NB: AfterFunc runs on real time; mutex tests use the system clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// testServer is one store behind one HTTP listener.
type testServer struct {
	url   string
	store *core.Store
	token string // sent as "Authorization: Bearer token" when not empty
}

// newServer starts a server with default settings.
func newServer(t *testing.T) *testServer {
	return newServerWith(t, core.Config{}, httpapi.Config{})
}

// newServerWith starts a server over a fresh store with ccfg and hcfg.
// Everything is closed when the test ends: listener, then store, then db.
func newServerWith(t *testing.T, ccfg core.Config, hcfg httpapi.Config) *testServer {
	t.Helper()
	db, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing db: %v", err)
		}
	})
	store, err := core.Open(db, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return &testServer{url: serveLoop(t, store, hcfg), store: store}
}

// serveLoop serves the API over store on a loopback port with the
// production transport (httpapi.Server, event loops) and returns its URL;
// the server is closed when the test ends (Close also drops a waiter a
// failed test left blocked).
func serveLoop(t *testing.T, store *core.Store, hcfg httpapi.Config) string {
	t.Helper()
	return serveLoopWith(t, store, hcfg, httpapi.Limits{})
}

func serveLoopWith(t *testing.T, store *core.Store, hcfg httpapi.Config, lim httpapi.Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(store, hcfg, lim)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("closing the HTTP server: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// hdr is a list of header name/value pairs for a request.
type hdr []string

var acceptJSON = hdr{"Accept", "application/json"}

// do sends one request. path is appended to the server URL as is, so
// percent-encoding in it reaches the server unchanged.
func (s *testServer) do(t *testing.T, method, path string, body []byte, h hdr) reply {
	t.Helper()
	return s.doCtx(t, context.Background(), method, path, body, h)
}

func (s *testServer) doCtx(t *testing.T, ctx context.Context, method, path string, body []byte, h hdr) reply {
	t.Helper()
	r, err := s.send(ctx, method, path, body, h)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// send is do for goroutines other than the test's: it returns errors.
func (s *testServer) send(ctx context.Context, method, path string, body []byte, h hdr) (reply, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return reply{}, err
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (s *testServer) get(t *testing.T, path string) reply {
	t.Helper()
	return s.do(t, "GET", path, nil, nil)
}

func (s *testServer) post(t *testing.T, path string) reply {
	t.Helper()
	return s.do(t, "POST", path, nil, nil)
}

func (s *testServer) del(t *testing.T, path string) reply {
	t.Helper()
	return s.do(t, "DELETE", path, nil, nil)
}

// want fails the test unless the reply has the status.
func (r reply) want(t *testing.T, status int) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %q", r.status, status, r.body)
	}
	return r
}

// wantText checks a 200 plain-text reply with exactly body (H4).
func (r reply) wantText(t *testing.T, body string) reply {
	t.Helper()
	r.want(t, http.StatusOK)
	if string(r.body) != body {
		t.Fatalf("body %q, want %q", r.body, body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want text/plain", ct)
	}
	return r
}

// number parses a plain-text "N\n" body.
func (r reply) number(t *testing.T) uint64 {
	t.Helper()
	s, ok := strings.CutSuffix(string(r.body), "\n")
	if !ok {
		t.Fatalf("body %q does not end in a newline", r.body)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("body %q is not a number: %v", r.body, err)
	}
	return n
}

// json decodes a JSON object body; numbers stay json.Number.
func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %q", ct, r.body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// wantJSON checks a 200 JSON reply whose object equals want (numbers as
// json.Number).
func (r reply) wantJSON(t *testing.T, want map[string]any) map[string]any {
	t.Helper()
	r.want(t, http.StatusOK)
	m := r.json(t)
	if len(m) != len(want) {
		t.Fatalf("JSON %s, want %v", r.body, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("JSON %s: %s is %v, want %v", r.body, k, m[k], v)
		}
	}
	return m
}

// wantError checks an error reply: the status and the JSON body
// {"error": code, "message": sentence} (H3).
func (r reply) wantError(t *testing.T, status int, code string) map[string]any {
	t.Helper()
	r.want(t, status)
	m := r.json(t)
	if m["error"] != code {
		t.Fatalf("error code %v, want %q; body %s", m["error"], code, r.body)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Fatalf("error body without a message: %s", r.body)
	}
	return m
}

// num is a JSON number as the decoder returns it.
func num(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

func unum(n uint64) json.Number { return json.Number(strconv.FormatUint(n, 10)) }

// jsonInt reads an integer field of a JSON object.
func jsonInt(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s is %v (%T), want a number", key, m[key], m[key])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

// eventually polls cond until it holds or a generous deadline passes. It
// waits for a state, never asserts how long reaching it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// routePath fills a route pattern with an account and an id.
func routePath(pattern, acc, id string) string {
	return strings.NewReplacer("{acc}", acc, "{id}", id).Replace(pattern)
}

func TestHealthzIs200WhenStoreIsOpen(t *testing.T) {
	s := newServer(t)
	s.get(t, "/healthz").wantText(t, "ok\n")
}

func TestHealthzIs503AfterStoreClosed(t *testing.T) {
	s := newServer(t)
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	s.get(t, "/healthz").wantError(t, http.StatusServiceUnavailable, "shutting_down")
}

// Every route under /db/{acc}: empty and over-long ids (above
// limits.max_key_bytes, 512 by default, as over RESP) and accounts (above
// 255 bytes) are 400, whatever the endpoint, and create nothing.
func TestIDAndAccountOutsideTheirLimitsAre400OnEveryRoute(t *testing.T) {
	s := newServer(t)
	long := strings.Repeat("x", 513)
	for _, rt := range httpapi.Routes() {
		if !strings.HasPrefix(rt.Pattern, "/db/") {
			continue
		}
		for _, c := range []struct{ name, acc, id string }{
			{"empty id", "acme", ""},
			{"513-byte id", "acme", long},
			{"513-byte id percent-encoded", "acme", strings.Repeat("%78", 513)},
			{"256-byte account", long[:256], "k"},
			{"empty account", "", "k"},
		} {
			t.Run(rt.Method+" "+rt.Pattern+" "+c.name, func(t *testing.T) {
				s.do(t, rt.Method, routePath(rt.Pattern, c.acc, c.id)+"?dur=1&owner=o", []byte("v"), nil).
					wantError(t, http.StatusBadRequest, "invalid")
			})
		}
	}
	// Nothing was created under the 512-byte prefix of the long id.
	s.get(t, "/db/acme/kv/"+long[:512]).wantError(t, http.StatusNotFound, "not_found")
}

// The longest account (255 bytes) and the longest id (512 bytes, as the
// longest RESP key) are served over HTTP too.
func TestIDOf512AndAccountOf255BytesAreAccepted(t *testing.T) {
	s := newServer(t)
	acc, id := strings.Repeat("a", 255), strings.Repeat("y", 512)
	s.do(t, "PUT", "/db/"+acc+"/kv/"+id, []byte("v"), nil).want(t, http.StatusOK)
	s.get(t, "/db/"+acc+"/kv/"+id).want(t, http.StatusOK)
	s.post(t, "/db/"+acc+"/sequence/"+id[1:]+"z").wantText(t, "1\n")
	s.post(t, "/db/"+acc+"/mlock/"+id+"?dur=10").want(t, http.StatusOK)
}

// Ids are percent-decoded: %2F is a slash inside one id, not a path
// separator, and the same bytes spelled differently name the same key.
func TestPercentEncodedIDsNameTheDecodedKey(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/a%2Fb", []byte("slash"), nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/kv/a%2Fb").wantValue(t, "slash")
	s.get(t, "/db/acme/kv/a%2fb").wantValue(t, "slash")
	s.get(t, "/db/acme/kv/a").wantError(t, http.StatusNotFound, "not_found")

	s.do(t, "PUT", "/db/acme/kv/sp%20ace%3F", []byte("space"), nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/kv/sp%20ace%3F").wantValue(t, "space")

	s.do(t, "PUT", "/db/acme/kv/%2F", []byte("just a slash"), nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/kv/%2F").wantValue(t, "just a slash")

	// Accounts decode the same way and stay apart.
	s.do(t, "PUT", "/db/a%2Fc/kv/k", []byte("one"), nil).want(t, http.StatusOK)
	s.get(t, "/db/a%2Fc/kv/k").wantValue(t, "one")
	s.get(t, "/db/a/kv/k").wantError(t, http.StatusNotFound, "not_found")

	// Multi-byte UTF-8 in an id counts bytes: 170 three-byte runes plus
	// "xy" = 512 bytes.
	euro := strings.Repeat("%E2%82%AC", 170) + "xy"
	s.post(t, "/db/acme/sequence/"+euro).wantText(t, "1\n")
	s.post(t, "/db/acme/sequence/"+euro+"z").wantError(t, http.StatusBadRequest, "invalid")
}

// The duration rules of the issue hold for every duration parameter:
// seconds with fractions; zero (except wait), negative, non-numeric, empty
// or above the configured maximum is 400 and changes nothing.
func TestDurationsOutsideTheRulesAre400AndChangeNothing(t *testing.T) {
	s := newServerWith(t, core.Config{MaxDuration: 100 * time.Second, MaxWait: 10 * time.Second}, httpapi.Config{})
	bad := []string{"0", "0.0", "-1", "-0.5", "abc", "", "1s", "NaN", "Inf", "+Inf", "101", "100.001", "1e300", "0x10"}
	endpoints := []struct {
		name    string
		path    func(v string) string // a request whose only bad part is v
		touched func(t *testing.T)    // fails if the request changed anything
	}{
		{"kv ttl", func(v string) string { return "/db/acme/kv/k?ttl=" + v },
			func(t *testing.T) { s.get(t, "/db/acme/kv/k").want(t, http.StatusNotFound) }},
		{"lock dur", func(v string) string { return "/db/acme/lock/l?owner=o&dur=" + v },
			func(t *testing.T) { s.get(t, "/db/acme/lock/l").want(t, http.StatusNotFound) }},
		{"mlock dur", func(v string) string { return "/db/acme/mlock/m?dur=" + v },
			func(t *testing.T) { s.post(t, "/db/acme/mlock/m?dur=1&wait=0").want(t, http.StatusOK) }},
		{"mlock wait", func(v string) string { return "/db/acme/mlock/w?dur=1&wait=" + v },
			func(t *testing.T) { s.post(t, "/db/acme/mlock/w?dur=1&wait=0").want(t, http.StatusOK) }},
	}
	for _, ep := range endpoints {
		for _, v := range bad {
			if ep.name == "mlock wait" && (v == "0" || v == "0.0") {
				continue // wait=0 tries once
			}
			if ep.name == "mlock wait" && (v == "101" || v == "100.001") {
				v = "10.5" // above max_wait, below max_duration
			}
			t.Run(ep.name+"="+v, func(t *testing.T) {
				s.do(t, "POST", ep.path(v), []byte("v"), nil).wantError(t, http.StatusBadRequest, "invalid")
			})
		}
		t.Run(ep.name+" changed nothing", func(t *testing.T) {
			ep.touched(t)
			s.post(t, "/db/acme/munlock/m").want(t, http.StatusNoContent)
			s.post(t, "/db/acme/munlock/w").want(t, http.StatusNoContent)
		})
	}
}

func TestDurationsAcceptFractionsAndTheMaximum(t *testing.T) {
	s := newServerWith(t, core.Config{MaxDuration: 100 * time.Second, MaxWait: 10 * time.Second}, httpapi.Config{})
	for _, v := range []string{"0.25", "1", "1.5", "100", "1e1", ".5"} {
		t.Run(v, func(t *testing.T) {
			s.do(t, "POST", "/db/acme/kv/k?ttl="+v, []byte("v"), nil).want(t, http.StatusOK)
			s.post(t, "/db/acme/lock/l"+v+"?owner=o&dur="+v).want(t, http.StatusOK)
			s.post(t, "/db/acme/mlock/m"+v+"?dur="+v).want(t, http.StatusOK)
		})
	}
	s.post(t, "/db/acme/mlock/w?dur=1&wait=10").want(t, http.StatusOK)
	s.post(t, "/db/acme/mlock/w2?dur=1&wait=0").want(t, http.StatusOK)
}

func TestUnknownPathIs404AndWrongMethodIs405(t *testing.T) {
	s := newServer(t)
	s.get(t, "/db/acme/nothing/k").wantError(t, http.StatusNotFound, "not_found")
	s.get(t, "/nothing").wantError(t, http.StatusNotFound, "not_found")
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/db/acme/sequence/k", "POST, GET, HEAD, DELETE"},
		{"GET", "/db/acme/mlock/k", "POST"},
		{"BREW", "/db/acme/kv/k", "POST, PUT, GET, HEAD, DELETE"},
		{"POST", "/healthz", "GET, HEAD"},
	} {
		r := s.do(t, c.method, c.path, nil, nil)
		r.wantError(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

// JSON is chosen as RFC 9110 reads Accept: media types in any case, a q
// of 0 refusing it, every Accept line, and a text/plain the client ranks
// higher winning.
func TestAcceptChoosesJSONCaseInsensitivelyAndNotAtQZero(t *testing.T) {
	s := newServer(t)
	s.post(t, "/db/acme/counter/c?add=5").want(t, http.StatusOK)
	for _, c := range []struct {
		accept string
		json   bool
	}{
		{"application/json", true},
		{"Application/JSON", true},
		{"text/plain, application/json; q=0.5", false},
		{"text/plain;q=0.4, application/json; q=0.5", true},
		{"text/*;q=0.4, application/json; q=0.5", true},
		{"application/json;q=0.9, */*", false},
		{"application/json;q=0.9, text/html, */*;q=0.1", true},
		{"application/json, text/plain", true},
		{"text/plain, application/json", true},
		{"*/*", false},
		{"application/*", true},
		{"application/*, text/plain", false},
		{"application/json;q=abc", true},
		{"text/plain, application/json;q=0", false},
		{"application/json;q=0.0", false},
		{"text/html", false},
		{"application/jsonx", false},
	} {
		got := s.do(t, "GET", "/db/acme/counter/c", nil, hdr{"Accept", c.accept})
		if isJSON := strings.HasPrefix(got.header.Get("Content-Type"), "application/json"); isJSON != c.json {
			t.Errorf("Accept %q: Content-Type %q, body %q", c.accept, got.header.Get("Content-Type"), got.body)
		}
	}
	// The form depends on Accept, and GET /kv is cacheable (it has an ETag).
	s.do(t, "PUT", "/db/acme/kv/k", []byte("v"), nil).want(t, http.StatusOK)
	if got := s.do(t, "GET", "/db/acme/kv/k", nil, nil).header.Get("Vary"); got != "Accept" {
		t.Errorf("GET /kv: Vary %q, want Accept", got)
	}
	r := s.raw(t)
	r.send(t, "GET /db/acme/counter/c HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nAccept: application/json\r\n\r\n")
	if got := r.read(t, "GET"); !strings.HasPrefix(got.header.Get("Content-Type"), "application/json") {
		t.Errorf("two Accept lines, the second JSON: %q", got.body)
	}
}

// HEAD is answered wherever GET is, with GET's status and headers and no
// body.
func TestHeadAnswersAsGetWithoutBody(t *testing.T) {
	s := newServer(t)
	v := s.do(t, "PUT", "/db/acme/kv/k", []byte("hello"), nil).wantVersion(t)
	s.post(t, "/db/acme/sequence/s").want(t, http.StatusOK)
	s.post(t, "/db/acme/counter/c?add=5").want(t, http.StatusOK)
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/db/acme/kv/k", 200},
		{"/db/acme/kv/absent", 404},
		{"/db/acme/sequence/s", 200},
		{"/db/acme/counter/c", 200},
		{"/db/acme/lock/l", 404},
		{"/db/acme/kv/", 400},
		{"/healthz", 200},
		{"/metrics", 404}, // not enabled here
	} {
		get := s.get(t, c.path)
		head := s.do(t, "HEAD", c.path, nil, nil)
		if head.status != c.status || get.status != c.status {
			t.Errorf("%s: HEAD %d, GET %d, want %d", c.path, head.status, get.status, c.status)
		}
		if len(head.body) != 0 {
			t.Errorf("HEAD %s answered a body %q", c.path, head.body)
		}
		for _, h := range []string{"Content-Type", "ETag", "X-Version"} {
			if head.header.Get(h) != get.header.Get(h) {
				t.Errorf("HEAD %s: %s %q, GET's %q", c.path, h, head.header.Get(h), get.header.Get(h))
			}
		}
		if head.header.Get("Content-Length") != strconv.Itoa(len(get.body)) {
			t.Errorf("HEAD %s: Content-Length %q, GET's body has %d bytes", c.path, head.header.Get("Content-Length"), len(get.body))
		}
	}
	checkVersionHeaders(t, s.do(t, "HEAD", "/db/acme/kv/k", nil, nil), v)
}

// bodyFor is b for a route that reads a body (kv writes), else none: a
// body elsewhere is 400 (H2).
func bodyFor(method, path, b string) []byte {
	if strings.Contains(path, "/kv/") && (method == "POST" || method == "PUT") {
		return []byte(b)
	}
	return nil
}

// After the store is closed, every /db/ route answers 503 rather than a
// reply it could not make durable.
func TestRequestsAfterStoreClosedAre503(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/k", []byte("v"), nil).want(t, http.StatusOK)
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"POST", "/db/acme/sequence/s"},
		{"POST", "/db/acme/counter/c"},
		{"PUT", "/db/acme/kv/k"},
		{"GET", "/db/acme/kv/k"},
		{"DELETE", "/db/acme/kv/k"},
		{"POST", "/db/acme/lock/l?owner=o&dur=1"},
		{"POST", "/db/acme/mlock/m?dur=1"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			s.do(t, c.method, c.path, bodyFor(c.method, c.path, "x"), nil).wantError(t, http.StatusServiceUnavailable, "shutting_down")
		})
	}
}

// The defaults of the issue: max_duration 86400 s, max_wait 3600 s.
func TestDefaultDurationLimitsAreADayAndAnHour(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/k?ttl=86400", []byte("v"), nil).want(t, http.StatusOK)
	s.do(t, "PUT", "/db/acme/kv/k?ttl=86400.5", []byte("w"), nil).wantError(t, http.StatusBadRequest, "invalid")
	s.get(t, "/db/acme/kv/k").wantValue(t, "v")
	s.post(t, "/db/acme/lock/l?owner=o&dur=86400").want(t, http.StatusOK)
	s.post(t, "/db/acme/lock/l2?owner=o&dur=86401").wantError(t, http.StatusBadRequest, "invalid")
	h := s.mlock(t, "/db/acme/mlock/m", "dur=86400&wait=3600") // free: granted at once
	s.post(t, "/db/acme/mlock/m?handle="+h+"&dur=86401").wantError(t, http.StatusBadRequest, "invalid")
	s.post(t, "/db/acme/mlock/m2?dur=86401").wantError(t, http.StatusBadRequest, "invalid")
	s.post(t, "/db/acme/mlock/m2?dur=1&wait=3600.5").wantError(t, http.StatusBadRequest, "invalid")
	s.wantMutexFree(t, "/db/acme/mlock/m2")
}
