package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/concurrencydb/concurrencydb/core"
)

// Config configures the HTTP API.
type Config struct {
	Auth core.Auth
	// Metrics, when set, is served at GET /metrics (observe.go).
	Metrics http.Handler
	// Observe, when set, is called once per request after it is answered,
	// with "METHOD /route/pattern" (or "unmatched"), the status code and
	// the latency.
	Observe func(command, status string, d time.Duration)
	// SlowLog: a request slower than this is logged (slog.Warn); 0 = off.
	SlowLog time.Duration
	// ConnState, when set, is told of each connection the event-loop
	// Server opens (http.StateNew) and closes (http.StateClosed), with a
	// nil net.Conn.
	ConnState func(net.Conn, http.ConnState)
}

// API serves the HTTP routes over one store.
type API struct {
	store *core.Store
	auth  core.Auth
	cfg   Config
}

// Route is one documented endpoint; the openapi.yaml test checks them.
type Route struct {
	Method, Pattern string
	Query           []string // the query parameters it takes
	Conds           bool     // it takes If-Match and If-None-Match
	Body            bool     // it reads a request body
}

// New returns the handler serving every route of the HTTP API.
func New(store *core.Store, cfg Config) http.Handler {
	mux, _ := newRouter(store, cfg)
	return mux
}

func newRouter(store *core.Store, cfg Config) (*chi.Mux, *API) {
	a := &API{store: store, auth: cfg.Auth, cfg: cfg}
	r := chi.NewRouter()
	r.Use(a.observe)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("%w: no such endpoint %s %s", core.ErrNotFound, r.Method, r.URL.EscapedPath()))
	})
	r.MethodNotAllowed(a.methodNotAllowed)
	// NB: HEAD is served wherever GET is, with GET's status and headers
	// (Content-Length included) and no body (the transport drops it).
	for _, rt := range a.topRoutes() {
		r.Get(rt.pattern, rt.h)
		r.Head(rt.pattern, rt.h)
	}
	// Every route is registered twice: on r itself with its full path,
	// which serves every request that names a route and its method in one
	// tree search, and in the /db/{acc} subrouter, which serves the rest —
	// an unknown path (404) or method (405) under /db/ — after
	// authenticate as well (H5). NB: a request served through the
	// subrouter costs chi a second search and three allocations (the
	// mounted path, and the route pattern joined and rewritten).
	dbRoute := func(r chi.Router, prefix string, wrap func(http.Handler) http.Handler) {
		for _, rt := range a.routes() {
			for _, m := range withHead(rt.method) {
				r.Method(m, prefix+rt.pattern, wrap(served{rt.h, append([]string{}, rt.query...), rt.conds, rt.body}))
				// An empty id is malformed (400), not an unknown path.
				if strings.HasSuffix(rt.pattern, "/{id}") {
					r.Method(m, prefix+strings.TrimSuffix(rt.pattern, "{id}"), wrap(http.HandlerFunc(emptyID)))
				}
			}
		}
	}
	dbRoute(r, "/db/{acc}", a.authenticate)
	r.Route("/db/{acc}", func(r chi.Router) {
		r.Use(a.authenticate)
		dbRoute(r, "", func(h http.Handler) http.Handler { return h })
	})
	return r, a
}

// topRoute is an endpoint outside /db/ (no account, no id).
type topRoute struct {
	method, pattern string
	h               http.HandlerFunc
}

// topRoutes is the table of the endpoints outside /db/.
func (a *API) topRoutes() []topRoute {
	return []topRoute{{"GET", "/healthz", a.healthz}, {"GET", "/metrics", a.metrics}}
}

// withHead is the methods a route of method m is served for: HEAD too
// for a GET.
func withHead(m string) []string {
	if m == http.MethodGet {
		return []string{http.MethodGet, http.MethodHead}
	}
	return []string{m}
}

// allowed is the Allow header of a 405 for path (RFC 9110 15.5.6): the
// methods served on it, from the route table.
func (a *API) allowed(path string) string {
	for _, rt := range a.topRoutes() {
		if path == rt.pattern {
			return strings.Join(withHead(rt.method), ", ")
		}
	}
	rest, ok := strings.CutPrefix(path, "/db/")
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, "/") // the account
	res, _, _ := strings.Cut(rest, "/")
	var ms []string
	for _, rt := range a.routes() {
		if strings.HasPrefix(rt.pattern, "/"+res+"/") {
			ms = append(ms, withHead(rt.method)...)
		}
	}
	return strings.Join(ms, ", ")
}

type route struct {
	method, pattern string
	query           []string // the query parameters h reads; any other is 400
	conds           bool     // h takes If-Match / If-None-Match (else 400 on a write)
	body            bool     // h reads a request body (else one is 400: H2)
	h               endpoint
}

// endpoint is a handler body for /db/{acc}/…/{id}: it gets the decoded
// account and id and either writes its reply and returns nil, or returns
// the error to answer (before writing anything).
type endpoint func(w http.ResponseWriter, r *http.Request, acc, id string) error

// served is a route's endpoint with the query parameters and conditions
// it takes.
type served struct {
	e     endpoint
	query []string // non-nil: nil would let checkQuery take any
	conds bool
	body  bool
}

func (s served) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	if err == nil {
		known := s.query
		if read {
			known = nil // any: a cache-buster (?_=1) on a read misapplies nothing
		}
		err = checkQuery(r, known)
	}
	if err == nil && !s.body && !read && r.Body != nil && r.Body != http.NoBody {
		// Its parameters would be ignored (curl -d owner=…): a release
		// without its owner is a force release (H2; found by review).
		err = fmt.Errorf("%w: %s %s takes no request body: its parameters go in the query string", core.ErrInvalid, r.Method, r.URL.Path)
	}
	if err == nil && !read && (r.Header["If-Unmodified-Since"] != nil || r.Header["If-Modified-Since"] != nil) {
		// Dates are not checked (versions are: If-Match), and a condition
		// is never dropped (found by review: the write went through).
		err = fmt.Errorf("%w: %s %s takes no If-Unmodified-Since or If-Modified-Since: keys carry versions, not dates (If-Match: \"N\" with the ETag)", core.ErrInvalid, r.Method, r.URL.Path)
	}
	if err == nil && !s.conds && !read && (r.Header["If-Match"] != nil || r.Header["If-None-Match"] != nil) {
		// A write that cannot check the condition must not run without it
		// (RFC 9110 13.1.1). NB: a GET may ignore its conditions: the full
		// response is always a right answer to a cache revalidating.
		err = fmt.Errorf("%w: %s %s takes no If-Match or If-None-Match (only kv writes do): the write would be unconditional", core.ErrInvalid, r.Method, r.URL.Path)
	}
	if err == nil {
		err = s.e(w, r, acc, id)
	}
	if err != nil {
		writeError(w, err)
	}
}

// routes is the table of /db/{acc} endpoints, one row per method and path.
func (a *API) routes() []route {
	return []route{
		{"POST", "/sequence/{id}", []string{"count"}, false, false, a.seqNext},
		{"GET", "/sequence/{id}", nil, false, false, a.seqGet},
		{"DELETE", "/sequence/{id}", nil, false, false, a.seqReset},
		{"POST", "/counter/{id}", []string{"add"}, false, false, a.ctrAdd},
		{"GET", "/counter/{id}", nil, false, false, a.ctrGet},
		{"DELETE", "/counter/{id}", nil, false, false, a.ctrDelete},
		{"POST", "/kv/{id}", []string{"ttl", "ver"}, true, true, a.kvSet},
		{"PUT", "/kv/{id}", []string{"ttl", "ver"}, true, true, a.kvSet},
		{"GET", "/kv/{id}", nil, false, false, a.kvGet},
		{"DELETE", "/kv/{id}", []string{"ver"}, true, false, a.kvDelete},
		{"POST", "/lock/{id}", []string{"dur", "owner", "id"}, false, false, a.lockAcquire},
		{"GET", "/lock/{id}", nil, false, false, a.lockGet},
		{"DELETE", "/lock/{id}", []string{"owner", "id"}, false, false, a.lockRelease},
		{"POST", "/mlock/{id}", []string{"dur", "handle", "wait"}, false, false, a.mutexLock},
		{"POST", "/munlock/{id}", []string{"handle"}, false, false, a.mutexUnlock},
	}
}

// waitingRoutes returns, for the routes that may wait (a mutex's turn),
// "METHOD resource" (the path segment after /db/{acc}/): what mayBlock
// matches, so that the event loop runs them in a goroutine of their own.
// Which operations may wait is written once, in core's command table
// (core.CmdBlocking); a route waits when a blocking command names it as
// its HTTP endpoint.
func waitingRoutes() map[string]bool {
	m := make(map[string]bool)
	for _, c := range core.Commands() {
		method, path, ok := strings.Cut(c.HTTP, " ")
		if !ok || c.Flags&core.CmdBlocking == 0 {
			continue
		}
		res, _, _ := strings.Cut(strings.TrimPrefix(path, "/db/{acc}/"), "/")
		m[method+" "+res] = true
	}
	return m
}

// bodyRoutes is the set of "METHOD resource" (as waitingRoutes) whose
// route reads a request body, from the route table.
func bodyRoutes() map[string]bool {
	m := make(map[string]bool)
	for _, rt := range (&API{}).routes() {
		if rt.body {
			res, _, _ := strings.Cut(strings.TrimPrefix(rt.pattern, "/"), "/")
			m[rt.method+" "+res] = true
		}
	}
	return m
}

// Routes lists every endpoint with its full path pattern.
func Routes() []Route {
	var out []Route
	for _, rt := range (&API{}).routes() {
		out = append(out, Route{rt.method, "/db/{acc}" + rt.pattern, rt.query, rt.conds, rt.body})
	}
	for _, rt := range (&API{}).topRoutes() {
		out = append(out, Route{rt.method, rt.pattern, nil, false, false})
	}
	return out
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	if err := a.store.Healthy(); err != nil {
		writeError(w, err)
		return
	}
	writeText(w, "ok\n")
}

// authenticate applies core.Auth to every /db/ request before any
// parameter is parsed (H5).
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.auth.Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		// Only the Bearer scheme carries a token (bearer, observe.go).
		limited, err := a.auth.Identify(bearer(r))
		if err != nil {
			writeError(w, err)
			return
		}
		acc, err := pathParam(r, "acc")
		if err != nil {
			writeError(w, err)
			return
		}
		if err := a.auth.Allow(limited, acc); err != nil {
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers 405. NB: chi answers here, before any
// route's middleware, a method it has no table entry for (BREW, lower-case
// get); under /db/ that request is authenticated first all the same (H5),
// with the account taken from the path as chi would have.
func (a *API) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if r.URL.RawPath != "" {
		// pathParam unescapes it, as for chi's. NB: the raw path, for
		// Allow and the message too: decoded, /db/a%2Fkv/lock/x read as
		// account "a" and resource "kv" (found by review).
		path = r.URL.RawPath
	}
	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", a.allowed(path))
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method_not_allowed", "message": "method " + r.Method + " is not allowed on " + path})
	})
	rest, underDB := strings.CutPrefix(path, "/db/")
	if !underDB || chi.URLParam(r, "acc") != "" {
		answer(w, r) // not /db/, or the /db/{acc} subrouter's: authenticated
		return
	}
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		acc, _, _ := strings.Cut(rest, "/")
		rctx.URLParams.Add("acc", acc)
	}
	a.authenticate(answer).ServeHTTP(w, r)
}

func emptyID(w http.ResponseWriter, r *http.Request) {
	writeError(w, fmt.Errorf("%w: the id in the path is empty", core.ErrInvalid))
}

// pathParam returns a percent-decoded, non-empty path parameter. Its
// upper bound is core's, as over RESP: 255 bytes for an account
// (core.CheckAccount), limits.max_key_bytes for an id (core refuses a
// longer key or mutex name before it changes anything).
func pathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath != "" {
		// chi matched on the escaped path: decode the segment ourselves.
		var err error
		if v, err = url.PathUnescape(v); err != nil {
			return "", fmt.Errorf("%w: %s is not a valid escaped path segment", core.ErrInvalid, name)
		}
	}
	if len(v) < 1 {
		return "", fmt.Errorf("%w: %s is empty", core.ErrInvalid, name)
	}
	if name == "acc" {
		if err := core.CheckAccount(v); err != nil {
			return "", err
		}
	}
	return v, nil
}

// target returns the account and id of a /db/{acc}/…/{id} request.
func target(r *http.Request) (acc, id string, err error) {
	if acc, err = pathParam(r, "acc"); err != nil {
		return "", "", err
	}
	id, err = pathParam(r, "id")
	return acc, id, err
}

// checkQuery refuses (400) a query url.ParseQuery rejects — a bad escape,
// a ';', more than its 10,000 parameters — which r.URL.Query() would read
// as if the rejected pairs were absent: a stray ';' must not turn
// ?owner=bob into a force release, nor a 10,001st parameter drop ?ver=.
// What queryOf's fast path reads (no '%', '+' or ';', fewer than
// maxFastParams pairs) has nothing to reject. A parameter the endpoint
// does not take (not in known) is refused too, for the same reason: a
// misspelt ?Owner=bob or ?TTL=5 read as absent would force-release a lock
// or store a value that never expires. known nil (a read, which ignores
// its parameters): only a malformed query is refused, not a repeated or
// unknown parameter (found by review: ?a=1&a=2 was 400).
func checkQuery(r *http.Request, known []string) error {
	raw := r.URL.RawQuery
	n := strings.Count(raw, "&")
	if known == nil && !strings.ContainsAny(raw, "%+;") && n < maxFastParams {
		return nil
	}
	if !strings.ContainsAny(raw, "%+;") && n < maxFastParams {
		// The common case: names need no unescaping; a few compared
		// pairwise, more through a map.
		var seen map[string]bool
		names := make([]string, 0, 8)
		for rest := raw; rest != ""; {
			var kv string
			kv, rest, _ = strings.Cut(rest, "&")
			name, _, _ := strings.Cut(kv, "=")
			if kv == "" {
				continue
			}
			if !slices.Contains(known, name) {
				return unknownParam(name, known)
			}
			if n >= 8 {
				if seen == nil {
					seen = make(map[string]bool, n+1)
				}
				if seen[name] {
					return repeatedParam(name)
				}
				seen[name] = true
				continue
			}
			if slices.Contains(names, name) {
				return repeatedParam(name)
			}
			names = append(names, name)
		}
		return nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return fmt.Errorf("%w: malformed query: %v", core.ErrInvalid, err)
	}
	if known == nil {
		return nil
	}
	for name, vs := range vals {
		if !slices.Contains(known, name) {
			return unknownParam(name, known)
		}
		if len(vs) > 1 {
			return repeatedParam(name)
		}
	}
	return nil
}

// unknownParam is the error for a parameter the endpoint does not take.
func unknownParam(name string, known []string) error {
	takes := "no query parameters"
	if len(known) > 0 {
		takes = "only " + strings.Join(known, ", ")
	}
	if len(name) > 64 {
		name = name[:64] + "…"
	}
	return fmt.Errorf("%w: unknown query parameter %q: this endpoint takes %s", core.ErrInvalid, name, takes)
}

// repeatedParam is the error for a parameter given twice: reading one of
// them would drop the other (?ver=5&ver=0), as RESP refuses VER twice.
func repeatedParam(name string) error {
	return fmt.Errorf("%w: parameter %s is given more than once", core.ErrInvalid, name)
}

// maxFastParams is well under url.ParseQuery's parameter limit.
const maxFastParams = 1000

// query reads a request's query parameters as url.Values does (Get: the
// first value of a name; Has: present, even empty) without parsing the
// query into a map when it holds no '%', '+' or ';' (nothing to unescape
// or refuse: the common case), else through r.URL.Query().
type query struct {
	raw  string
	vals url.Values // parsed: raw needed unescaping
}

func queryOf(r *http.Request) query {
	if strings.ContainsAny(r.URL.RawQuery, "%+;") || strings.Count(r.URL.RawQuery, "&") >= maxFastParams {
		return query{vals: r.URL.Query()}
	}
	return query{raw: r.URL.RawQuery}
}

func (q query) lookup(name string) (string, bool) {
	if q.vals != nil {
		vs, ok := q.vals[name]
		if !ok || len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	}
	for raw := q.raw; raw != ""; {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(kv, "="); k == name && kv != "" {
			return v, true
		}
	}
	return "", false
}

func (q query) Get(name string) string {
	v, _ := q.lookup(name)
	return v
}

func (q query) Has(name string) bool {
	_, ok := q.lookup(name)
	return ok
}

// seconds reads query parameter name as seconds (core.ParseSeconds).
// Absent gives def, or 400 when required; present but empty is 400.
func seconds(q query, name string, def time.Duration, required bool) (time.Duration, error) {
	if !q.Has(name) {
		if required {
			return 0, fmt.Errorf("%w: %s is required (seconds)", core.ErrInvalid, name)
		}
		return def, nil
	}
	return core.ParseSeconds(name, []byte(q.Get(name)))
}

func uintParam(q query, name string) (uint64, bool, error) {
	s := q.Get(name)
	if s == "" && q.Has(name) {
		// Present but empty (an unset shell variable) is malformed, not
		// absent: absent can mean something else (no ver: unconditional;
		// no handle: force-unlock).
		return 0, false, fmt.Errorf("%w: %s is empty", core.ErrInvalid, name)
	}
	if s == "" {
		return 0, false, nil
	}
	// NB: Redis's integer syntax, as the RESP commands read the same
	// numbers (no '+', no leading zeros, at most 2^63-1).
	n, ok := core.ParseInt([]byte(s))
	if !ok || n < 0 {
		return 0, false, fmt.Errorf("%w: %s must be a non-negative integer, got %q", core.ErrInvalid, name, s)
	}
	return uint64(n), true, nil
}

// wantsJSON reports whether the client prefers JSON results to plain
// text (H4), as RFC 9110 12.5.1 reads Accept: each of the two types gets
// the q of the most specific range that matches it (application/json
// before application/* before */*; text/plain before text/* before */*),
// 0 when none does, and JSON is chosen when its q is above 0 and above
// text's, or equal to it and application/json is named (so "*/*", curl's
// default, is text, and "application/json, text/plain" is JSON). Media
// types are case-insensitive; every Accept line counts; a q that does not
// parse counts as 1.
func wantsJSON(r *http.Request) bool {
	var json, text acceptMatch
	named := false
	for _, line := range r.Header.Values("Accept") {
		for rng := range strings.SplitSeq(line, ",") {
			typ, params, _ := strings.Cut(rng, ";")
			typ = strings.TrimSpace(typ)
			q := acceptQ(params)
			switch {
			case strings.EqualFold(typ, "application/json"):
				json.see(3, q)
				named = named || q > 0
			case strings.EqualFold(typ, "application/*"):
				json.see(2, q)
			case strings.EqualFold(typ, "text/plain"):
				text.see(3, q)
			case strings.EqualFold(typ, "text/*"):
				text.see(2, q)
			case typ == "*/*":
				json.see(1, q)
				text.see(1, q)
			}
		}
	}
	return json.q > 0 && (json.q > text.q || json.q == text.q && named)
}

// acceptMatch is the most specific Accept range seen for one media type.
type acceptMatch struct {
	spec int     // 3 the type itself, 2 type/*, 1 */*, 0 none
	q    float64 // that range's q (the highest, if it is repeated)
}

func (m *acceptMatch) see(spec int, q float64) {
	if spec > m.spec || spec == m.spec && q > m.q {
		m.spec, m.q = spec, q
	}
}

// acceptQ is the q parameter among an Accept range's parameters: 1 when
// absent or malformed.
func acceptQ(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q >= 0 && q <= 1 {
				return q
			}
		}
	}
	return 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeText answers s as text/plain.
//
// NB: only for text this server formats (a number, "ok"): its Content-Type
// is left to net/http, which sniffs exactly "text/plain; charset=utf-8" for
// it. Calling w.Header() would cost a copy of the header map per request
// (net/http snapshots it at WriteHeader): 13% of the bytes allocated per
// POST /sequence, measured.
func writeText(w http.ResponseWriter, s string) {
	_, _ = io.WriteString(w, s)
}

// writeNumber answers a scalar, "N\n" or {key: N} as JSON, unless err is
// set, which it returns for the endpoint to answer.
func writeNumber[T int64 | uint64](w http.ResponseWriter, r *http.Request, key string, n T, err error) error {
	if err != nil {
		return err
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{key: n})
		return nil
	}
	var buf [24]byte
	var b []byte
	switch v := any(n).(type) {
	case int64:
		b = strconv.AppendInt(buf[:0], v, 10)
	case uint64:
		b = strconv.AppendUint(buf[:0], v, 10) // mutex handles use all 64 bits
	}
	b = append(b, '\n')
	if rw, ok := w.(*respWriter); ok {
		_, _ = rw.Write(b) // a concrete call: buf stays on the stack
	} else {
		_, _ = w.Write(bytes.Clone(b))
	}
	return nil
}

// noContent answers 204 unless err is set, which it returns.
func noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}
