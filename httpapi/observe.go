package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
)

// observe wraps every request: it reports it to Config.Observe (metrics)
// and logs it when slower than Config.SlowLog. The command is the method
// and chi's route pattern ("POST /db/{acc}/kv/{id}"), never the raw path,
// so the set of labels stays bounded; a path no route matches is
// "unmatched".
func (a *API) observe(next http.Handler) http.Handler {
	if a.cfg.Observe == nil && a.cfg.SlowLog <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		dw, held := w.(durableReporter)
		held = held && dw.deferred()
		var sw *statusWriter
		if !held {
			sw = &statusWriter{ResponseWriter: w}
			w = sw
		}
		returned := false
		defer func() {
			// NB: what the report needs is read now: the event loop
			// reuses the request and its routing context for the
			// connection's next request.
			o := observation{a, label(r), r.URL.Path, r.RemoteAddr, start}
			switch {
			case held:
				// The loop reports it once its response may leave (H7),
				// with the status its writer holds then (500 after a
				// panic: Server.run).
				dw.afterDurable(o)
			case returned:
				o.report(sw.status)
			default: // a panic, answered 500 by whoever recovers it
				o.report(http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
		returned = true
	})
}

// observation is what reporting a request needs, kept by value (no
// allocation per request) until its response may leave.
type observation struct {
	a                 *API
	cmd, path, remote string
	start             time.Time
}

// report reports the request answered status (nothing for the zero
// observation: a response observe did not see, such as a refusal).
func (o observation) report(status int) {
	if o.a != nil {
		o.a.report(o.cmd, o.path, o.remote, status, time.Since(o.start))
	}
}

// label is r's metrics label: the method and chi's route pattern, which
// chi's router stored in r.Pattern ("unmatched" when no route matched).
// The labels are few (one per route and method): each is built once.
// NB: a path under /db/ that no route serves was matched by the /db/{acc}
// mount only (pattern "/db/{acc}/*"): it is unmatched too.
func label(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead:
		if r.Pattern != "" && !strings.HasSuffix(r.Pattern, "/*") {
			k := labelKey{r.Method, r.Pattern}
			if l, ok := labels.Load(k); ok {
				return l.(string)
			}
			l, _ := labels.LoadOrStore(k, r.Method+" "+r.Pattern)
			return l.(string)
		}
	}
	return "unmatched"
}

type labelKey struct{ method, pattern string }

var labels sync.Map // labelKey → string

// durableReporter is the ResponseWriter of a transport that holds a
// response until what it reflects is durable (respWriter): the request is
// reported then, with its final status, so that latencies include the
// fsync as the client sees it.
type durableReporter interface {
	deferred() bool // the response is held (on the loop), not final
	afterDurable(o observation)
}

// report tells Config.Observe and the slow log of a request labelled cmd
// (of path, from remote), answered code after d.
func (a *API) report(cmd, path, remote string, code int, d time.Duration) {
	if code == 0 {
		code = http.StatusOK
	}
	status := strconv.Itoa(code)
	if a.cfg.Observe != nil {
		a.cfg.Observe(cmd, status, d)
	}
	// A mutex request's time is mostly the wait it asked for: not slow.
	if a.cfg.SlowLog > 0 && d >= a.cfg.SlowLog && !strings.HasPrefix(cmd, "POST /db/{acc}/mlock/") {
		if len(path) > 128 {
			path = path[:128]
		}
		slog.Warn("slow operation", "protocol", "http", "command", cmd,
			"path", path, "status", status,
			"duration_ms", float64(d.Microseconds())/1000, "client", remote)
	}
}

// statusWriter records the status a handler answers.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metrics serves GET /metrics. Its figures span every account, so when
// auth is enabled only the global token may read them.
func (a *API) metrics(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Metrics == nil {
		writeError(w, fmt.Errorf("%w: metrics are not enabled on this server", core.ErrNotFound))
		return
	}
	if a.auth.Enabled() {
		limited, err := a.auth.Identify(bearer(r))
		if err != nil {
			writeError(w, err)
			return
		}
		if limited != "" {
			writeError(w, fmt.Errorf("%w: /metrics needs the global token", core.ErrForbidden))
			return
		}
	}
	a.cfg.Metrics.ServeHTTP(w, r)
}

// bearer is the token of an "Authorization: Bearer <token>" header, or "".
func bearer(r *http.Request) string {
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(cred)
	}
	return ""
}
