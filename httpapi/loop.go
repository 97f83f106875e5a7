package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/panjf2000/gnet/v2"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/internal/evloop"
	"github.com/concurrencydb/concurrencydb/internal/fdbudget"
)

// Server serves the HTTP API on event loops, as resp serves RESP, instead
// of net/http's goroutine per connection.
//
// Why: net/http costs per request a read, a second read parked in the
// poller (its background read that watches for a disconnect), deadline
// updates, and two goroutine switches through the committer; measured, it
// capped GET /kv at about 52k requests/s where RESP GET served 98k, and
// durable POSTs shared an fsync 13 to a batch where RESP's shared 35
// (bench/results-2026-11-29.md).
//
// The model (loop.go): when a socket is readable its loop reads it, parses
// every complete request in it (readHead, request.go: net/http's header
// and framing rules, stricter where parsers may disagree) and runs
// the chi router on the loop with a core.Pipeline context, so core calls
// apply and return without waiting for their fsync. Each response is
// built in memory and held until the loop's pass commits (Store.Sync) —
// H7: no response leaves before the writes and reads it reflects are
// durable — then written with one system call per connection per pass.
// A request that may block (POST /mlock/ waits its turn) or is slow and
// rare (GET /metrics) runs in a goroutine of its own, without a pipeline;
// the connection reads no further request until its response is written.
//
// Limits, as net/http's server had them (Limits): a request's headers
// must arrive within ReadHeader and the whole request within Read, an idle
// keep-alive connection is closed after Idle, headers beyond HeaderMax
// are refused 431, a body beyond limits.max_value_bytes 413 (before it is
// read). A connection beyond MaxConns is answered 503 to its first request
// and closed. A
// connection answered with an error, or whose client asked for
// Connection: close, is closed once its responses are written: its write
// side is shut first and its input drained for a moment, so the client
// reads the response rather than a reset.
type Server struct {
	store     *core.Store
	h         http.Handler
	mux       *chi.Mux        // h
	api       *API            // mux's: reports the requests refused before it (H6)
	waiting   map[string]bool // waitingRoutes: run off the loop
	bodies    map[string]bool // bodyRoutes: read a request body
	lim       Limits
	maxBody   int64
	connState func(net.Conn, http.ConnState)
	auth      core.Auth // for authorizeBody; the handlers check it again
	loops     *gnet.Client

	ctx      context.Context // parent of every connection's context
	cancel   context.CancelFunc
	conns    sync.WaitGroup // connections enrolled and not yet closed
	workers  sync.WaitGroup // off-loop requests and the deadline watcher
	serving  sync.WaitGroup // Serve's accept loop
	draining atomic.Bool    // Drain or Shutdown has begun
	// refusedConns counts the connections beyond MaxConns (RefusedConns).
	refusedConns atomic.Int64
	date         atomic.Pointer[dateLine]

	// loopMu guards calls into gnet from other goroutines (outside)
	// against the loop's stop.
	loopMu  sync.RWMutex
	stopped bool

	mu struct {
		sync.Mutex
		conns    map[*conn]struct{} // opened by a loop, not yet closed
		admitted int                // of conns, those within MaxConns (served)
		ln       net.Listener
		closed   bool
		passes   map[gnet.EventLoop]*pass
	}
}

// Limits bound what one HTTP client may hold: a client that sends its
// headers or body slowly, or keeps an idle connection open, is cut off, so
// slow or stalled clients cannot pin connections forever.
type Limits struct {
	ReadHeader time.Duration // request line and headers
	Read       time.Duration // the whole request, body included
	Idle       time.Duration // a keep-alive connection between requests
	HeaderMax  int           // bytes of request headers
	// MaxConns: connections open at once; one more is answered 503
	// (too_many_connections) to its first request, then closed. RESP has
	// resp.max_conns; net/http had no limit, so a flood of idle
	// connections could take every file descriptor.
	MaxConns int
	// Conns is the budget of descriptors shared with RESP (nil: none): a
	// connection beyond it is closed at once (internal/fdbudget).
	Conns *fdbudget.Budget
}

// DefaultLimits are the production limits.
var DefaultLimits = Limits{
	ReadHeader: 10 * time.Second,
	Read:       60 * time.Second,
	Idle:       120 * time.Second,
	HeaderMax:  64 << 10,
	MaxConns:   10000,
}

// NewServer returns a server of the API (New) over store; zero fields of
// lim take DefaultLimits'. Call Serve to start it.
func NewServer(store *core.Store, cfg Config, lim Limits) *Server {
	d := DefaultLimits
	lim.ReadHeader = orDefault(lim.ReadHeader, d.ReadHeader)
	lim.Read = orDefault(lim.Read, d.Read)
	lim.Idle = orDefault(lim.Idle, d.Idle)
	lim.HeaderMax = orDefault(lim.HeaderMax, d.HeaderMax)
	lim.MaxConns = orDefault(lim.MaxConns, d.MaxConns)
	mux, api := newRouter(store, cfg)
	s := &Server{
		store:     store,
		mux:       mux,
		api:       api,
		lim:       lim,
		connState: cfg.ConnState,
		auth:      cfg.Auth,
		waiting:   waitingRoutes(),
		bodies:    bodyRoutes(),
	}
	if store != nil {
		s.maxBody = int64(store.Config().MaxValueBytes)
	}
	s.h = s.mux
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[*conn]struct{})
	return s
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Limits returns the limits s enforces.
func (s *Server) Limits() Limits { return s.lim }

// RefusedConns is how many connections were answered 503 because
// MaxConns were open.
func (s *Server) RefusedConns() int64 { return s.refusedConns.Load() }

// Serve accepts connections on ln until Close or Shutdown and hands each
// to the event loop; it returns nil after them.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.closed || s.mu.ln != nil || s.draining.Load() {
		twice := s.mu.ln != nil
		s.mu.Unlock()
		ln.Close()
		if twice {
			return errors.New("httpapi: Serve called twice")
		}
		return nil
	}
	loops, err := gnet.NewClient(&loopHandler{s: s},
		// One loop, as for RESP: the benchmark client shares the 2 cores.
		gnet.WithNumEventLoop(1),
		// See resp/loop.go: the loop's caches stay warm beside Pebble's
		// background work. (bench/ab.sh HTTP=ctr ROUNDS=5 PREFILL=1, no
		// background work: POST /counter 0.88× locked, 0.90× unlocked.)
		gnet.WithLockOSThread(true),
		gnet.WithLogger(evloop.Logger("http event loop")),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay))
	if err == nil {
		err = loops.Start()
	}
	if err != nil {
		s.mu.Unlock()
		ln.Close()
		return fmt.Errorf("httpapi: event loop: %w", err)
	}
	s.mu.ln, s.loops = ln, loops
	s.serving.Add(1)
	s.workers.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	go func() {
		defer s.workers.Done()
		s.watchDeadlines()
	}()
	evloop.Accept(ln, "http", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.closed || s.draining.Load()
	}, s.accept)
	return nil
}

// accept hands nc to the event loop.
func (s *Server) accept(nc net.Conn) {
	if s.draining.Load() {
		nc.Close()
		return
	}
	if !s.lim.Conns.Take() {
		// The descriptors left for connections are all taken: closed at
		// once, not answered (that would hold this one while it waits for
		// a request).
		s.refusedConns.Add(1)
		nc.Close()
		return
	}
	c := &conn{s: s, remote: nc.RemoteAddr().String()}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	var plctx context.Context
	plctx, c.pl = core.WithPipeline(c.ctx)
	c.rctx = chi.NewRouteContext()
	c.reqctx = context.WithValue(plctx, chi.RouteCtxKey, c.rctx)
	s.conns.Add(1)
	// NB: EnrollContext duplicates the socket for the loop and closes nc;
	// it returns once the loop ran OnOpen, unless registering failed,
	// which it does not always report.
	if _, err := s.loops.EnrollContext(nc, c); err != nil || !c.opened.Load() {
		c.cancel()
		s.lim.Conns.Release()
		s.conns.Done()
	}
}

// Drain begins Shutdown: from now on a new connection is closed, and each
// request read is still served but answered with Connection: close, its
// connection closing after it (as net/http's Shutdown). The binary calls
// it before core.Store.StopWaiters, as resp's Drain.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining.Store(true)
	s.mu.Unlock()
}

// Shutdown stops accepting connections, closes idle ones, and lets every
// busy one finish the requests it has begun: each is answered (H7 still
// holds) with Connection: close, then its connection closes. When ctx ends
// first, Shutdown closes everything as Close does and returns ctx's
// error.
//
// NB: a blocked POST /mlock/ keeps its connection busy; the caller
// answers those first (Drain, then core.Store.StopWaiters), or Shutdown
// waits for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	ln := s.mu.ln
	conns := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		s.wake(c, func(gc gnet.Conn) {
			if c.idle() {
				// Responses written but not yet taken by the client
				// go first.
				c.closeAfter = true
				s.closeWhenFlushed(c, gc)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops accepting, closes every connection, cancels their contexts
// (a blocked POST /mlock/ leaves its queue) and waits for the goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	ln, loops := s.mu.ln, s.loops
	s.mu.Unlock()
	s.cancel()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	// NB: an accept in progress waits for the loop to open its
	// connection; stopping the loop first would leave it waiting.
	s.serving.Wait()
	s.loopMu.Lock()
	s.stopped = true
	s.loopMu.Unlock()
	if loops != nil {
		// Stopping the loop closes every connection (OnClose).
		if serr := loops.Stop(); serr != nil && err == nil {
			err = serr
		}
	}
	s.conns.Wait()
	s.workers.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// watchDeadlines closes connections past their deadline (conn.deadline):
// it looks at every connection a few times per shortest limit, and the
// connection's loop checks the deadline again before it closes it.
func (s *Server) watchDeadlines() {
	tick := min(s.lim.ReadHeader, s.lim.Read, s.lim.Idle, lingerTime) / 4
	t := time.NewTicker(min(max(tick, 5*time.Millisecond), time.Second))
	defer t.Stop()
	var late []*conn
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			late = late[:0]
			s.mu.Lock()
			for c := range s.mu.conns {
				if d := c.deadline.Load(); d != 0 && now.UnixNano() > d {
					late = append(late, c)
				}
			}
			s.mu.Unlock()
			for i, c := range late {
				late[i] = nil
				s.wake(c, func(gc gnet.Conn) {
					if d := c.deadline.Load(); d != 0 && time.Now().UnixNano() > d {
						_ = gc.Close()
					}
				})
			}
		}
	}
}

// outside runs fn, a call into gnet from a goroutine other than the
// loop, unless the loop has stopped: gnet's wake-ups after Stop would
// write to its closed (and maybe reused) event descriptor.
func (s *Server) outside(fn func()) {
	s.loopMu.RLock()
	defer s.loopMu.RUnlock()
	if !s.stopped {
		fn()
	}
}

// wake runs fn on c's loop (after OnTraffic, which gnet runs first),
// unless c is closed by then.
func (s *Server) wake(c *conn, fn func(gc gnet.Conn)) {
	s.outside(func() {
		_ = c.gc.Wake(func(gc gnet.Conn, err error) error {
			if err == nil && !c.gone {
				fn(gc)
			}
			return nil
		})
	})
}

// loopHandler receives the event loop's callbacks.
type loopHandler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *loopHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := h.s
	c := gc.Context().(*conn)
	c.gc = gc
	c.pass = s.passOf(gc.EventLoop())
	c.opened.Store(true)
	s.mu.Lock()
	// A refused connection, while it lingers, does not count: a burst of
	// them must not keep the server refusing.
	full := s.mu.admitted >= s.lim.MaxConns
	if !full {
		s.mu.admitted++
		c.admitted = true
	}
	s.mu.conns[c] = struct{}{}
	s.mu.Unlock()
	if s.connState != nil {
		s.connState(nil, http.StateNew)
	}
	if s.draining.Load() {
		return nil, gnet.Close
	}
	if full {
		// Not admitted: its first bytes are answered 503 (serve), within
		// ReadHeader; Redis answers "max number of clients reached" at
		// once, but an HTTP response must follow a request.
		s.refusedConns.Add(1)
	}
	s.setDeadline(c)
	return nil, gnet.None
}

func (h *loopHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	s := h.s
	c, ok := gc.Context().(*conn)
	if !ok || c.gone {
		return gnet.None
	}
	if errors.Is(err, io.EOF) && len(c.held) > 0 && !c.offloop {
		// The client half-closed after its requests (printf … | nc -N):
		// gnet closes the socket at that EOF, right after delivering the
		// input, before the pass's commit would release the responses;
		// commit now and write them here (gnet sends what its buffer
		// holds before it closes), as net/http answers such a client.
		for _, h := range c.held {
			if !h.pend.Ready() {
				s.store.Sync()
				break
			}
		}
		s.writeHeld(c, gc)
		s.store.Applied() // after the responses, as a pass does (core's C3)
	}
	c.gone = true
	c.cancel()
	c.abandon()
	s.mu.Lock()
	delete(s.mu.conns, c)
	if c.admitted {
		s.mu.admitted--
	}
	s.mu.Unlock()
	if s.connState != nil {
		s.connState(nil, http.StateClosed)
	}
	s.lim.Conns.Release()
	s.conns.Done()
	return gnet.None
}

func (h *loopHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	return h.s.serve(gc.Context().(*conn), gc)
}

// pass commits what one event loop's pass over its ready connections
// wrote, then writes the responses that waited for it (as resp's
// loopPass: one fsync per pass, however many connections it served). It
// also holds the loop's parser scratch.
type pass struct {
	s         *Server
	el        gnet.EventLoop
	waiting   []*conn
	spare     []*conn
	scheduled bool
	parser    parser
}

func (s *Server) passOf(el gnet.EventLoop) *pass {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.passes == nil {
		s.mu.passes = make(map[gnet.EventLoop]*pass)
	}
	p := s.mu.passes[el]
	if p == nil {
		p = &pass{s: s, el: el}
		s.mu.passes[el] = p
	}
	return p
}

// Run commits and writes the waiting responses. It runs on the loop.
func (p *pass) Run(context.Context) error {
	p.scheduled = false
	p.s.store.Sync()
	w := p.waiting
	p.waiting, p.spare = p.spare[:0], nil
	for i, c := range w {
		w[i] = nil
		c.awaiting = false
		if !c.gone {
			p.s.flush(c, c.gc)
		}
	}
	p.spare = w[:0]
	p.s.store.Applied() // after the responses: see core.Store.Applied
	return nil
}

// await holds c's responses for the loop's pass.
func (p *pass) await(c *conn) {
	if !c.awaiting {
		c.awaiting = true
		p.waiting = append(p.waiting, c)
	}
	if !p.scheduled {
		p.scheduled = true
		if err := p.el.Execute(context.Background(), p); err != nil {
			_ = p.Run(context.Background()) // the loop is stopping
		}
	}
}

// shutWrite ends c's output (a FIN after what was written), so that a
// client still sending reads the response instead of a reset.
func shutWrite(gc gnet.Conn) {
	_ = syscall.Shutdown(gc.Fd(), syscall.SHUT_WR)
}
