package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/panjf2000/gnet/v2"

	"github.com/concurrencydb/concurrencydb/core"
)

// conn is one HTTP connection. Everything but deadline and opened belongs
// to its event loop (or, while offloop is set, partly to the goroutine of
// its off-loop request, which touches none of these fields).
type conn struct {
	s      *Server
	gc     gnet.Conn // set by OnOpen
	pass   *pass
	remote string
	// admitted: counted in the Server's admitted (within MaxConns).
	// Set by OnOpen.
	admitted bool
	ctx      context.Context // ends when the connection closes
	cancel   context.CancelFunc
	pl       *core.Pipeline
	// reqctx is the context of on-loop requests: ctx with pl and rctx,
	// chi's routing context, reset for each request. A request whose
	// context carries one is routed without chi copying the request
	// (r.WithContext: ~650 B per request).
	reqctx context.Context
	rctx   *chi.Context
	req    *http.Request // reused for each request (resetRequest)
	hdr    http.Header   // req's
	url    url.URL       // req's

	in        []byte // input read; in[off:] is not yet run
	off       int
	chunkAt   int           // a chunked body at the head of in is scanned up to here,
	chunkSum  int64         // and its chunks so far hold this many bytes
	served    bool          // a request was answered (the idle limit applies, not ReadHeader)
	backoff   time.Duration // the last wait of later
	reqStart  time.Time     // when the request at the head of in began
	idleAt    time.Time     // when c became idle (zero: it is not)
	hdrScan   int           // its head (past skipped CR/LF) has no end before this line start
	hdrDone   bool          // its head is read into req (its body is not complete),
	headEnd   int           // and ends at in[off+headEnd]
	continued bool          // 100 Continue was sent for it
	unsent    bool          // it is answered without its body (answerFromHead)
	out       []byte        // responses built, not yet written
	held      []held        // out's responses, in order
	w         respWriter

	awaiting   bool // in pass.waiting
	offloop    bool // a request runs in its own goroutine
	blocked    bool // an off-loop request waits for held responses to go first
	throttled  bool // output the client does not read: a retry is scheduled
	closeAfter bool // close once the responses are written
	lingering  bool // write side shut, input drained until deadline
	gone       bool // OnClose ran

	opened   atomic.Bool  // OnOpen ran
	deadline atomic.Int64 // unix ns after which watchDeadlines closes c; 0 = none
}

// held is one response in conn.out: out[previous end:end].
type held struct {
	end    int
	pend   core.Pending // what it reflects becomes durable (H7)
	status int
	obs    observation // observe's, reported once durable
	head   bool
	close  bool
	http10 bool
}

const (
	// maxHeld bounds the response bytes a connection builds and has not
	// written: past it the loop reads no more requests of it until the
	// client has read them.
	maxHeld = 1 << 20
	// throttleRetry is how soon a throttled connection is looked at again.
	throttleRetry = 2 * time.Millisecond
	maxRetry      = 100 * time.Millisecond
	// lingerTime is how long a closing connection drains its input after
	// its write side was shut.
	lingerTime = 500 * time.Millisecond
	// closeFlushWait bounds how long a closing connection waits for the
	// client to take its last responses.
	closeFlushWait = 10 * time.Second
	// refusedWait is how long a connection beyond MaxConns may stay
	// silent before it is closed unanswered.
	refusedWait = time.Second
	// headerSlack: like net/http, headers may exceed HeaderMax by this much.
	headerSlack = 4096
)

// abandon reports the responses c still held when it closed: the client
// left before they could be written, as net/http's path reported a
// request whose client left while it waited (499), so every request is
// reported once (H6). It runs on the loop, from OnClose.
func (c *conn) abandon() {
	for _, h := range c.held {
		h.obs.report(lookupError(context.Canceled).status)
	}
	clear(c.held)
	c.held, c.out = c.held[:0], c.out[:0]
}

// idle: nothing read, running or waiting.
func (c *conn) idle() bool {
	return c.unread() == 0 && len(c.held) == 0 && !c.offloop && !c.awaiting
}

// unread is how many input bytes wait.
func (c *conn) unread() int { return len(c.in) - c.off }

// maxBacklog bounds the unread input of a connection that is not being
// served (an off-loop request runs, or its responses wait): a client may
// pipeline ahead of what it reads, not stream without limit. NB: gnet
// cannot stop reading a socket, so this bound stands in for TCP's flow
// control, which holds a net/http client back; as RESP's (16 MiB, R7):
// at two requests' worth (~2 MB), a client writing its pipeline while it
// reads the responses, slower, was cut off (found by review).
func (s *Server) maxBacklog() int {
	return max(16<<20, 2*int(s.maxBody)+s.lim.HeaderMax+2*headerSlack)
}

// serve runs every complete request in c's input. It runs on c's loop.
func (s *Server) serve(c *conn, gc gnet.Conn) gnet.Action {
	if c.gone {
		return gnet.Close
	}
	c.takeInput(gc)
	if c.lingering {
		c.in, c.off = c.in[:0], 0
		return gnet.None
	}
	if !c.admitted && !c.closeAfter && c.unread() > 0 {
		// Beyond MaxConns (OnOpen): answered once the client has sent
		// something, not before, since an HTTP client may take a response
		// that precedes its request for a broken connection (Go's
		// Transport: "Unsolicited response received on idle HTTP
		// channel") instead of reading the 503.
		s.refuse(c, errTooManyConns)
		s.releaseOrAwait(c, gc)
		if c.gone {
			return gnet.Close
		}
		return gnet.None
	}
	if c.offloop || c.blocked || c.closeAfter || c.throttled {
		if c.unread() > s.maxBacklog() {
			return gnet.Close
		}
		return gnet.None
	}
	for c.unread() > 0 && !c.closeAfter && !c.blocked && !c.offloop {
		if gc.OutboundBuffered()+len(c.out) >= maxHeld {
			s.throttle(c, gc)
			break
		}
		req, body, n, err := c.pass.parser.next(c, gc)
		if c.gone {
			return gnet.Close // a failed write (100 Continue) closed it
		}
		if err != nil {
			s.refuse(c, err)
			break
		}
		if req == nil {
			break // incomplete
		}
		if s.mayBlock(req) {
			if len(c.held) > 0 {
				c.blocked = true // flush comes back here
				break
			}
			body = bytes.Clone(body) // it points into c.in
			c.consume(n)
			c.compact()
			s.startOffLoop(c, req, body)
			break
		}
		s.runOnLoop(c, req, body)
		c.consume(n)
	}
	c.compact()
	if n := c.unread(); n > 0 && n <= 4 && !c.offloop && !c.blocked && !c.throttled && !c.hdrDone && len(bytes.Trim(c.in[c.off:], "\r\n")) == 0 {
		// Stray CR/LF after a request (some clients end a POST body with
		// one) is not a request begun: the connection is idle, as with
		// net/http.
		c.in = c.in[:c.off]
	}
	if s.draining.Load() && c.idle() {
		c.closeAfter = true
	}
	s.releaseOrAwait(c, gc)
	if c.gone {
		return gnet.Close
	}
	s.setDeadline(c)
	return gnet.None
}

// takeInput moves what gnet has read of c into c.in.
func (c *conn) takeInput(gc gnet.Conn) {
	n := gc.InboundBuffered()
	if n == 0 {
		return // NB: gnet's Next(0) and Discard(0) mean "everything"
	}
	c.compact()
	if len(c.in) == 0 && cap(c.in) > 1<<20 {
		c.in = nil // do not pin a large buffer to an idle connection
	}
	c.in = slices.Grow(c.in, n)
	m, _ := gc.Read(c.in[len(c.in) : len(c.in)+n])
	c.in = c.in[:len(c.in)+m]
}

// consume marks the request of n bytes at the head of the unread input
// as run.
func (c *conn) consume(n int) {
	c.off += n
	// NB: idleAt too: a request answered in the pass that read it leaves
	// c idle again without setDeadline seeing it busy, and the Idle limit
	// counts from the last request, not from the first idle moment.
	c.reqStart, c.hdrDone, c.continued, c.chunkAt, c.chunkSum, c.idleAt = time.Time{}, false, false, 0, 0, time.Time{}
	c.hdrScan = 0
	c.served = true
	c.backoff = 0
}

// compact drops the input that was run (once per pass over c's input: a
// pipelined read is not copied once per request).
func (c *conn) compact() {
	if c.off > 0 {
		n := copy(c.in, c.in[c.off:])
		c.in, c.off = c.in[:n], 0
	}
}

// runOnLoop runs req on the loop with c's pipeline and adds its response
// to c.out, held until what it reflects is durable (H7).
func (s *Server) runOnLoop(c *conn, req *http.Request, body []byte) {
	w := &c.w
	w.reset(true)
	c.rctx.Reset()
	c.rctx.Routes = s.mux
	req.Body = c.bodyOf(body) // req has c.reqctx (resetRequest)
	s.run(w, req)
	pend := c.pl.Take()
	closeIt := req.Close || s.draining.Load() || w.panicked || w.closes()
	head := req.Method == http.MethodHead
	http10 := !req.ProtoAtLeast(1, 1)
	c.out = s.appendResponse(c.out, w, head, closeIt, http10)
	c.held = append(c.held, held{end: len(c.out), pend: pend, status: w.code(), obs: w.obs, head: head, close: closeIt, http10: http10})
	c.closeAfter = c.closeAfter || closeIt
}

// run serves req into w; a panic answers 500 and closes the connection,
// as net/http would, instead of killing the server.
func (s *Server) run(w *respWriter, req *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			slog.Error("http handler panicked", "path", req.URL.Path, "panic", v, "stack", string(debug.Stack()))
			obs := w.obs // observe's: the 500 is reported once written (H6)
			if w.lost != nil {
				w.lost() // the 500 does not announce it
			}
			w.reset(w.held)
			w.obs = obs
			w.panicked = true
			writeError(w, fmt.Errorf("internal error"))
		}
	}()
	s.h.ServeHTTP(w, req)
}

// bodyOf is the body of the request next parsed on c: b, or, for one
// answered before its client sent the body (answerFromHead), a body that
// cannot be read, so that a route that takes none still sees that one was
// announced (400, H2).
func (c *conn) bodyOf(b []byte) io.ReadCloser {
	if c.unsent {
		c.unsent = false
		return unsentBody{}
	}
	return bodyReader(b)
}

// unsentBody is the body of a request answered from its head.
type unsentBody struct{}

func (unsentBody) Read([]byte) (int, error) {
	return 0, errors.New("httpapi: the request body was not sent (Expect: 100-continue, and no route reads it)")
}
func (unsentBody) Close() error { return nil }

// bodyReader returns a request body over b.
func bodyReader(b []byte) io.ReadCloser {
	if len(b) == 0 {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b))
}

// releaseOrAwait writes c's responses when what they reflect is durable
// already (reads of durable data), else holds them for the loop's pass.
func (s *Server) releaseOrAwait(c *conn, gc gnet.Conn) {
	if len(c.held) == 0 {
		if c.closeAfter && !c.offloop {
			s.closeWhenFlushed(c, gc)
		}
		return
	}
	for _, h := range c.held {
		if !h.pend.Ready() {
			c.pass.await(c)
			return
		}
	}
	s.flush(c, gc)
}

// flush writes c's held responses once each is durable (H7), then serves
// c on: closes it, or runs the input that waited behind them.
func (s *Server) flush(c *conn, gc gnet.Conn) {
	if c.gone {
		return
	}
	if len(c.held) > 0 {
		if s.writeHeld(c, gc); c.gone {
			return
		}
	}
	switch {
	case c.closeAfter || (s.draining.Load() && c.idle()):
		c.closeAfter = true
		s.closeWhenFlushed(c, gc)
	case c.blocked || c.unread() > 0:
		// Input that waited behind these responses: an off-loop request,
		// or a request whose 100 Continue had to wait for them.
		c.blocked = false
		if s.serve(c, gc) == gnet.Close {
			_ = gc.Close()
		}
	default:
		s.setDeadline(c)
	}
}

// writeHeld writes c's held responses, waiting for each to be durable: a
// response whose fsync failed (D6) is replaced by its error.
func (s *Server) writeHeld(c *conn, gc gnet.Conn) {
	var fixed []byte // nil unless a wait failed
	prev := 0
	for _, h := range c.held {
		status := h.status
		if err := h.pend.Wait(c.ctx); err != nil {
			var w respWriter
			writeError(&w, err)
			status = w.code()
			if fixed == nil {
				fixed = append([]byte(nil), c.out[:prev]...)
			}
			fixed = s.appendResponse(fixed, &w, h.head, h.close, h.http10)
		} else if fixed != nil {
			fixed = append(fixed, c.out[prev:h.end]...)
		}
		h.obs.report(status)
		prev = h.end
	}
	out := c.out
	if fixed != nil {
		out = fixed
	}
	// NB: emptied before the write: a failed write closes c at once
	// (OnClose), whose abandon must not report these again (H6).
	clear(c.held)
	c.held = c.held[:0]
	_, _ = gc.Write(out)
	c.out = c.out[:0]
	if cap(c.out) > maxHeld {
		c.out = nil
	}
}

// startOffLoop runs req in a goroutine of its own, without a pipeline
// (core waits for durability itself); c reads no further request until
// its response is written.
func (s *Server) startOffLoop(c *conn, req *http.Request, body []byte) {
	c.offloop = true
	c.deadline.Store(0)
	gc := c.gc
	closeIt := req.Close
	head, http10 := req.Method == http.MethodHead, !req.ProtoAtLeast(1, 1)
	r := req.Clone(c.ctx) // a deep copy: c's request is reused
	r.Body = c.bodyOf(body)
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		var w respWriter
		s.run(&w, r)
		// NB: decided once the request has run, not when it started: a
		// waiter answered because the server is stopping (or drained
		// meanwhile) must say Connection: close before its socket closes.
		closeIt := closeIt || w.panicked || w.closes() || s.draining.Load()
		b := s.appendResponse(nil, &w, head, closeIt, http10)
		// NB: a response that cannot be written (the client went, or
		// half-closed and gnet closed the socket) runs w.lost: a mutex
		// granted to it is passed on, not left held by a handle nobody
		// has (M1).
		lost := func() {
			if w.lost != nil {
				w.lost()
			}
		}
		written := false
		s.outside(func() {
			err := gc.AsyncWrite(b, func(gc gnet.Conn, err error) error {
				c.offloop = false
				if err != nil || c.gone {
					lost()
					return nil
				}
				if closeIt || s.draining.Load() {
					c.closeAfter = true
					s.closeWhenFlushed(c, gc)
					return nil
				}
				if s.serve(c, gc) == gnet.Close {
					_ = gc.Close()
				}
				return nil
			})
			written = err == nil // else the callback never runs
		})
		if !written {
			lost()
		}
	}()
}

// refuse answers err (a malformed, oversized or too large request) after
// c's earlier responses and closes c once they are written.
func (s *Server) refuse(c *conn, err error) {
	var w respWriter
	var re *requestError
	if errors.As(err, &re) && re.status != 0 {
		writeJSON(&w, re.status, map[string]any{"error": re.code, "message": re.msg})
	} else {
		writeError(&w, err)
	}
	c.out = s.appendResponse(c.out, &w, false, true, false)
	// Reported as every request is (H6), under the label of a request no
	// route saw.
	start := c.reqStart
	if start.IsZero() {
		start = time.Now()
	}
	obs := observation{a: s.api, cmd: "unmatched", remote: c.remote, start: start}
	c.held = append(c.held, held{end: len(c.out), status: w.code(), obs: obs, close: true})
	c.closeAfter = true
	c.in, c.off = c.in[:0], 0
	c.hdrDone, c.chunkAt, c.chunkSum, c.hdrScan = false, 0, 0, 0
}

// closeWhenFlushed closes c once the client has taken its output: it
// shuts c's write side, drains its input for lingerTime (a client still
// sending gets the response, not a reset), then closes it.
func (s *Server) closeWhenFlushed(c *conn, gc gnet.Conn) {
	if c.lingering || c.gone || c.awaiting || c.offloop {
		return
	}
	if gc.OutboundBuffered() > 0 {
		if c.deadline.Load() == 0 {
			c.deadline.Store(time.Now().Add(closeFlushWait).UnixNano())
		}
		s.later(gc, func() { s.closeWhenFlushed(c, gc) })
		return
	}
	shutWrite(gc)
	c.lingering = true
	c.in, c.off = c.in[:0], 0
	c.deadline.Store(time.Now().Add(lingerTime).UnixNano())
}

// throttle stops reading requests of c until its output drains.
func (s *Server) throttle(c *conn, gc gnet.Conn) {
	c.throttled = true
	s.later(gc, func() {
		c.throttled = false
		if s.serve(c, gc) == gnet.Close {
			_ = gc.Close()
		}
	})
}

// later runs fn on gc's loop after a wait, unless gc closed by then. The
// wait doubles from throttleRetry up to maxRetry while c keeps waiting, and
// starts over once c was served.
func (s *Server) later(gc gnet.Conn, fn func()) {
	c := gc.Context().(*conn)
	c.backoff = min(max(2*c.backoff, throttleRetry), maxRetry)
	time.AfterFunc(c.backoff, func() {
		s.wake(c, func(gnet.Conn) { fn() })
	})
}

// setDeadline sets when watchDeadlines cuts c off: a request being read
// has ReadHeader for its headers and Read in all from its first byte; an
// idle connection has Idle. A busy one (a request running, responses
// waiting) has none, as net/http has no write timeout here.
func (s *Server) setDeadline(c *conn) {
	switch {
	case c.lingering:
	case c.offloop || c.awaiting || len(c.held) > 0 || c.closeAfter || c.blocked || c.throttled:
		c.idleAt = time.Time{}
		c.deadline.Store(0)
	case c.unread() > 0:
		c.idleAt = time.Time{}
		if c.reqStart.IsZero() {
			c.reqStart = time.Now()
		}
		lim := s.lim.ReadHeader
		if c.hdrDone {
			lim = s.lim.Read
		}
		c.deadline.Store(c.reqStart.Add(lim).UnixNano())
	default:
		// NB: kept while idle, a wake-up (gc.Wake runs OnTraffic) must not
		// push it back. A new connection has ReadHeader for its first
		// request, as with net/http.
		if c.idleAt.IsZero() {
			c.idleAt = time.Now()
		}
		lim := s.lim.Idle
		if !c.served {
			lim = s.lim.ReadHeader
		}
		if !c.admitted {
			// Beyond MaxConns and silent: it does not count, so it must
			// not hold its descriptor for long either.
			lim = min(lim, refusedWait)
		}
		c.deadline.Store(c.idleAt.Add(lim).UnixNano())
	}
}

// mayBlock: requests of the routes that may wait (waitingRoutes, from
// core's command table: POST /db/{acc}/mlock/{id}) and the slow, rare
// GET /metrics run off the loop. The path is split as chi splits it (the escaped form when
// there is one).
func (s *Server) mayBlock(r *http.Request) bool {
	if r.URL.RawPath == "/metrics" || r.URL.RawPath == "" && r.URL.Path == "/metrics" {
		return true
	}
	res, _, ok := resourceOf(r)
	return ok && s.waiting[r.Method+" "+res]
}

// takesBody reports whether a route reads the body of r (kv writes).
func (s *Server) takesBody(r *http.Request) bool {
	res, id, ok := resourceOf(r)
	return ok && id != "" && s.bodies[r.Method+" "+res]
}

// resourceOf splits r's path /db/{acc}/{res}/{id} into its resource
// ("kv": with the method, "POST kv", the key of waitingRoutes and
// bodyRoutes) and its (raw) id; ok is false for a path of another form.
// NB: the caller joins method and resource in the map index itself, where
// the joined string needs no allocation; returned, it would be one per
// request.
func resourceOf(r *http.Request) (res, id string, ok bool) {
	p := r.URL.RawPath
	if p == "" {
		p = r.URL.Path
	}
	rest, ok := strings.CutPrefix(p, "/db/")
	if !ok {
		return "", "", false
	}
	_, rest, _ = strings.Cut(rest, "/") // the account
	return strings.Cut(rest, "/")
}

// requestError is a request the transport refuses before any handler.
type requestError struct {
	status    int
	code, msg string
}

func (e *requestError) Error() string { return e.msg }

// errTooManyConns answers a connection beyond Limits.MaxConns.
var errTooManyConns = &requestError{http.StatusServiceUnavailable, "too_many_connections", "max number of connections reached"}

// parser holds the readers that decode chunked bodies; one per loop
// (they are reused).
type parser struct {
	br   bytes.Reader
	bufr *bufio.Reader
}

// next parses the request at the head of c's unread input: the request,
// its body (pointing into c.in) and the bytes it took; a nil request while
// it is incomplete. It answers 100 Continue when the client waits for it.
func (p *parser) next(c *conn, gc gnet.Conn) (*http.Request, []byte, int, error) {
	s, buf := c.s, c.in[c.off:]
	req, end := c.req, c.headEnd
	if !c.hdrDone {
		// RFC 9112 2.2: empty lines before a request line are ignored;
		// like net/http, up to 4 CR or LF bytes.
		skip := 0
		for skip < min(len(buf), 4) && (buf[skip] == '\r' || buf[skip] == '\n') {
			skip++
		}
		maxHdr := s.lim.HeaderMax + headerSlack
		// NB: from where the last read's scan stopped: a head sent a few
		// bytes at a time is scanned once, not once per read (quadratic:
		// ~120 µs of the loop per read of a 64 KiB head). Once past the
		// skipped bytes, skip no longer changes, so hdrScan stays valid.
		end, c.hdrScan = headerEnd(buf[skip:min(len(buf), skip+maxHdr)], c.hdrScan)
		if end < 0 {
			if len(buf)-skip >= maxHdr {
				return nil, nil, 0, &requestError{http.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
					fmt.Sprintf("request headers are larger than %d bytes", s.lim.HeaderMax)}
			}
			return nil, nil, 0, nil
		}
		end += skip
		req = c.resetRequest()
		if err := readHead(buf[skip:end], req); err != nil {
			return nil, nil, 0, err
		}
		if e := req.Header.Get("Expect"); e != "" && !asciiEqualFold([]byte(e), "100-continue") {
			return nil, nil, 0, &requestError{http.StatusExpectationFailed, "expectation_failed",
				fmt.Sprintf("unsupported Expect: %q", e)}
		}
		if req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
			if err := s.authorizeBody(req); err != nil {
				return nil, nil, 0, err
			}
		}
	}
	// else: the head was read by an earlier call, which kept it (a body
	// that trickles in does not make the head be parsed again).
	var body []byte
	n := end
	if len(req.TransferEncoding) > 0 { // only "chunked" passes readHead
		var complete bool
		var err error
		body, n, complete, err = p.chunked(c, buf[end:], s.maxBody)
		if err != nil {
			return nil, nil, 0, err
		}
		if !complete {
			c.hdrDone, c.headEnd = true, end
			if c.answerFromHead(req) {
				return req, nil, end, nil
			}
			p.expect100(c, gc, req)
			return nil, nil, 0, nil
		}
		n += end
	} else if req.ContentLength > 0 {
		if req.ContentLength > s.maxBody {
			return nil, nil, 0, tooLarge(s.maxBody)
		}
		if int64(len(buf)-end) < req.ContentLength {
			c.hdrDone, c.headEnd = true, end
			if c.answerFromHead(req) {
				return req, nil, end, nil
			}
			p.expect100(c, gc, req)
			return nil, nil, 0, nil
		}
		n = end + int(req.ContentLength)
		body = buf[end:n]
	}
	return req, body, n, nil
}

// headerEnd returns the length of the header section at the head of b,
// through its first empty line (CRLF or bare LF), or -1.
//
// It starts at from, 0 or the resume offset of an earlier call on a
// prefix of b, and returns where a later call may resume: the start of
// the last line, which may yet turn out to be the empty one.
func headerEnd(b []byte, from int) (end, resume int) {
	for i := from; ; {
		if i > 0 { // a line start: is the line empty?
			switch {
			case i < len(b) && b[i] == '\n':
				return i + 1, 0
			case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
				return i + 2, 0
			}
		}
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, i
		}
		i += j + 1
	}
}

// chunked decodes a chunked body at the head of b: the body, the bytes it
// took (its trailer section included), and whether it is complete. It
// scans the chunk framing from where the last call stopped (c.chunkAt),
// and decodes the body once, when all of it is there: a body that
// trickles in costs no more than one that arrives at once.
func (p *parser) chunked(c *conn, b []byte, max int64) ([]byte, int, bool, error) {
	end, err := scanChunks(b, &c.chunkAt, &c.chunkSum, max)
	// NB: 6 bytes a byte: a body of max bytes sent in 1-byte chunks
	// ("1\r\nx\r\n") is valid and must pass, up to 64 MiB of framing
	// (a connection's buffer is bounded by the body's size plus that);
	// framing beyond (chunk extensions, or tiny chunks of a huge body) is
	// refused before it is buffered further.
	if err == nil && end < 0 && int64(len(b)) > max+min(5*max, 64<<20)+64<<10 {
		err = fmt.Errorf("%w: the chunk framing of the body is out of proportion to a %d-byte body (chunk extensions, or chunks too small?)", core.ErrTooLarge, max)
	}
	if err != nil || end < 0 {
		return nil, 0, false, err
	}
	if p.bufr == nil {
		p.bufr = bufio.NewReaderSize(&p.br, 4096)
	}
	p.br.Reset(b[:end])
	p.bufr.Reset(&p.br)
	body, err := io.ReadAll(httputil.NewChunkedReader(p.bufr))
	if err != nil {
		return nil, 0, false, fmt.Errorf("%w: malformed chunked body: %v", core.ErrInvalid, err)
	}
	return body, end, true, nil
}

// scanChunks walks the chunk framing of b from *at (the start of a
// chunk's size line; *sum counts the chunks before it) and returns the end
// of the whole chunked body, -1 while it is incomplete; *at and *sum then
// say where to resume. A body whose chunks add up to more than max is
// refused 413; malformed framing 400.
func scanChunks(b []byte, at *int, sum *int64, max int64) (int, error) {
	for {
		nl := bytes.IndexByte(b[*at:], '\n')
		if nl < 0 {
			if len(b)-*at > 4096 {
				return -1, fmt.Errorf("%w: malformed chunked body: a chunk size line is too long", core.ErrInvalid)
			}
			return -1, nil
		}
		line := b[*at : *at+nl]
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // a chunk extension
		}
		line = bytes.TrimRight(line, " \t\r")
		size, perr := strconv.ParseUint(string(line), 16, 63)
		if perr != nil || len(line) == 0 {
			return -1, fmt.Errorf("%w: malformed chunked body: bad chunk size %q", core.ErrInvalid, line)
		}
		if size > uint64(max) || *sum+int64(size) > max {
			return -1, tooLarge(max)
		}
		data := *at + nl + 1
		if size == 0 {
			return trailerEnd(b, data)
		}
		if len(b)-data < int(size)+2 {
			return -1, nil
		}
		e := data + int(size)
		switch {
		case b[e] == '\r' && b[e+1] == '\n':
			e += 2
		case b[e] == '\n':
			e++
		default:
			return -1, fmt.Errorf("%w: malformed chunked body: a chunk does not end with CRLF", core.ErrInvalid)
		}
		*at, *sum = e, *sum+int64(size)
	}
}

// trailerEnd returns the end of the trailer section that starts at b[at]
// (after the last chunk): its lines up to an empty one, each checked as
// net/http checks a header line; -1 while incomplete. It looks at most
// 4 KiB past at: never at the requests pipelined behind it.
func trailerEnd(b []byte, at int) (int, error) {
	t := b[at:]
	switch {
	case len(t) >= 1 && t[0] == '\n':
		return at + 1, nil
	case len(t) >= 2 && t[0] == '\r' && t[1] == '\n':
		return at + 2, nil
	case len(t) < 2:
		return -1, nil
	}
	e, _ := headerEnd(t[:min(len(t), 4098)], 0)
	if e < 0 {
		if len(t) > 4096 {
			return -1, fmt.Errorf("%w: malformed chunked body: its trailer section is too long", core.ErrInvalid)
		}
		return -1, nil
	}
	for rest := t[:e]; len(rest) > 0; {
		var line []byte
		if line, rest = cutLine(rest); len(line) == 0 {
			break
		}
		if _, _, err := headerLine(line); err != nil {
			return -1, fmt.Errorf("%w: malformed chunked body: bad trailer line", core.ErrInvalid)
		}
	}
	return at + e, nil
}

func tooLarge(max int64) error {
	return fmt.Errorf("%w: the body is larger than %d bytes", core.ErrTooLarge, max)
}

// maxBodyOutsideDB bounds the body of a request outside /db/ with auth on.
const maxBodyOutsideDB = 4096

// authorizeBody refuses, from its head alone, a request whose body its
// sender may not have read (H9): with auth on, one without a valid token,
// or under /db/{acc} with a token that does not grant acc. The body is
// buffered whole before any handler runs, so without this a client with
// no token could make the server hold max_value_bytes per connection
// (1 MiB, 10,000 connections by default) and be told 401 only once it had
// sent it all; it is now answered 401/403 at once, with no 100 Continue,
// and the connection closed, as net/http does for a handler that answers
// without reading the body. The handlers authenticate every request again
// (H5): this check only decides whether to read the body.
func (s *Server) authorizeBody(req *http.Request) error {
	if !s.auth.Enabled() {
		return nil
	}
	path := req.URL.Path
	if req.URL.RawPath != "" {
		path = req.URL.RawPath
	}
	rest, underDB := strings.CutPrefix(path, "/db/")
	if !underDB {
		// /healthz needs no token; /metrics checks its own. No route
		// here takes a body, so a client without a token may not make
		// the server buffer more than a small one (H9).
		if req.ContentLength > maxBodyOutsideDB || len(req.TransferEncoding) > 0 {
			return fmt.Errorf("%w: no endpoint outside /db/ takes a request body (at most %d bytes are accepted, not chunked)", core.ErrTooLarge, maxBodyOutsideDB)
		}
		return nil
	}
	limited, err := s.auth.Identify(bearer(req))
	if err != nil {
		return err
	}
	acc, _, _ := strings.Cut(rest, "/")
	if acc, err = url.PathUnescape(acc); err != nil || core.CheckAccount(acc) != nil {
		return nil // the handler answers the bad path, once the token passed
	}
	return s.auth.Allow(limited, acc)
}

// answerFromHead reports whether req, whose client waits for 100 Continue
// before it sends the body, is to be answered from its head: no route
// reads the body of its method and path (404, 405, a read, or a write
// that takes no body: 400, H2). net/http sends 100 Continue only when the
// handler reads the body, so a client that sent a large body's head to
// the wrong place is told at once instead of after uploading it (found by
// review). The connection is then closed after the response, as net/http
// does: the client may send the body anyway or its next request, and the
// two cannot be told apart. NB: a request the route reads the body of is
// still told to send it before its query is checked (kv's ttl=abc is 400
// once the body is in).
func (c *conn) answerFromHead(req *http.Request) bool {
	if c.continued || !req.ProtoAtLeast(1, 1) || !asciiEqualFold([]byte(req.Header.Get("Expect")), "100-continue") || c.s.takesBody(req) {
		return false
	}
	req.Close, c.unsent = true, true
	return true
}

// expect100 tells a client that waits for it (Expect: 100-continue) to
// send its body, once per request.
//
// NB: not while earlier responses of c wait (they go first); flush serves
// c again once they are written.
func (p *parser) expect100(c *conn, gc gnet.Conn, req *http.Request) {
	if c.continued || len(c.held) > 0 || !req.ProtoAtLeast(1, 1) || !asciiEqualFold([]byte(req.Header.Get("Expect")), "100-continue") {
		return
	}
	c.continued = true
	_, _ = gc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n"))
}

// respWriter is the http.ResponseWriter of the event-loop server: the
// response is built in memory and written by the loop.
type respWriter struct {
	hdr      http.Header
	status   int
	body     []byte
	obs      observation
	held     bool // on the loop: observe reports once durable (afterDurable)
	panicked bool
	// lost undoes what the response announces if it never reaches the
	// client (onLoss: a granted mutex is passed on, M1).
	lost func()
}

// onLoss sets what to do if the response never reaches the client.
func (w *respWriter) onLoss(fn func()) { w.lost = fn }

// closes reports whether the handler asked for the connection to be closed
// after its response (Connection: close, which net/http honours too).
func (w *respWriter) closes() bool {
	return w.hdr != nil && asciiEqualFold([]byte(w.hdr.Get("Connection")), "close")
}

func (w *respWriter) reset(deferred bool) {
	if w.hdr != nil {
		clear(w.hdr)
	}
	w.status, w.body, w.obs, w.held, w.panicked, w.lost = 0, w.body[:0], observation{}, deferred, false, nil
}

func (w *respWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header)
	}
	return w.hdr
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func (w *respWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// deferred: the response is held until what it reflects is durable (on
// the loop); false when it is final already (off the loop).
func (w *respWriter) deferred() bool { return w.held }

// afterDurable keeps o to report the request once its response may leave
// (H7).
func (w *respWriter) afterDurable(o observation) { w.obs = o }

// appendResponse appends w's response to dst: the status line, w's
// headers, Content-Type when w set none (sniffed, as net/http does), Date,
// Content-Length and Connection; the body unless head.
func (s *Server) appendResponse(dst []byte, w *respWriter, head, closeIt, http10 bool) []byte {
	status := w.code()
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, http.StatusText(status)...)
	dst = append(dst, "\r\n"...)
	hasType := false
	if len(w.hdr) > 0 {
		keys := make([]string, 0, len(w.hdr))
		for k := range w.hdr {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			switch k {
			case "Content-Length", "Connection", "Date", "Transfer-Encoding":
				continue // the transport's own
			case "Content-Type":
				hasType = true
			}
			for _, v := range w.hdr[k] {
				dst = append(dst, k...)
				dst = append(dst, ": "...)
				dst = appendHeaderValue(dst, v)
				dst = append(dst, "\r\n"...)
			}
		}
	}
	bodyOK := status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
	if bodyOK && !hasType && len(w.body) > 0 {
		dst = append(dst, "Content-Type: "...)
		dst = append(dst, sniff(w.body)...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "Date: "...)
	dst = append(dst, s.dateNow()...)
	dst = append(dst, "\r\n"...)
	if bodyOK {
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(w.body)), 10)
		dst = append(dst, "\r\n"...)
	}
	if closeIt {
		dst = append(dst, "Connection: close\r\n"...)
	} else if http10 {
		dst = append(dst, "Connection: keep-alive\r\n"...) // an HTTP/1.0 client that asked for it
	}
	dst = append(dst, "\r\n"...)
	if bodyOK && !head {
		dst = append(dst, w.body...)
	}
	return dst
}

// sniff is http.DetectContentType(b), answered at once for the bodies
// most responses have: a number and a newline.
func sniff(b []byte) string {
	for _, c := range b {
		if (c < '0' || c > '9') && c != '-' && c != '\n' {
			return http.DetectContentType(b)
		}
	}
	return "text/plain; charset=utf-8"
}

// appendHeaderValue appends v with any CR or LF replaced by a space, as
// net/http does, so that no value can split the response.
func appendHeaderValue(dst []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b == '\r' || b == '\n' {
			b = ' '
		}
		dst = append(dst, b)
	}
	return dst
}

// dateLine is the Date header's value, formatted once per second.
type dateLine struct {
	sec int64
	b   []byte
}

func (s *Server) dateNow() []byte {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &dateLine{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	s.date.Store(d)
	return d.b
}
