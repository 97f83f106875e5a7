package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
)

// Config configures a Server. Zero fields take the defaults noted.
type Config struct {
	Auth           core.Auth // tokens (core/auth.go)
	DefaultAccount string    // "0" when empty
	MaxConns       int       // 0 = 10000
	MaxArgs        int       // max arguments per command, 0 = 1024*1024
	// Observe, when set, is called once per command after its reply is
	// released, with the lower-case command name ("unknown" for one not in
	// the table), its status ("ok" or the error prefix) and its latency.
	Observe func(command, status string, d time.Duration)
	// SlowLog: a command slower than this is logged (slog.Warn); 0 = off.
	SlowLog time.Duration
}

// Server is a RESP listener over a core.Store.
type Server struct {
	store  *core.Store
	cfg    Config
	maxArg int // max bytes of one argument: a value or a key
	cmds   map[string]*command
	rs     *redcon.Server
	start  time.Time

	ctx    context.Context // parent of every connection's context
	cancel context.CancelFunc
	conns  sync.WaitGroup // connection goroutines

	nextID      atomic.Int64
	totalConns  atomic.Int64
	totalCmds   atomic.Int64
	rejectConns atomic.Int64
	opStats     *opStats    // observe.go
	draining    atomic.Bool // Shutdown has begun (shutdown.go)

	cursors cursorTable

	mu struct {
		sync.Mutex
		clients map[int64]*client
		ln      net.Listener
		closed  bool
	}
}

// NewServer returns a server for store; call Serve to start it.
func NewServer(store *core.Store, cfg Config) *Server {
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = "0"
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10000
	}
	if cfg.MaxArgs <= 0 {
		cfg.MaxArgs = 1024 * 1024
	}
	sc := store.Config()
	s := &Server{
		store:  store,
		cfg:    cfg,
		maxArg: max(sc.MaxValueBytes, sc.MaxKeyBytes+258), // a key may carry "{acc}:"
		start:  time.Now(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.clients = make(map[int64]*client)
	s.cmds = buildCommands()
	s.opStats = newOpStats(s.cmds)
	s.cursors.init(16384)
	s.rs = redcon.NewServerNetwork("tcp", "", s.handle, s.accept, s.closed)
	return s
}

// Serve accepts connections on ln until Close; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	ln = &drainListener{Listener: ln, s: s}
	wl := &listener{Listener: ln, maxArg: s.maxArg, maxArgs: s.cfg.MaxArgs}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.mu.ln = wl
	s.mu.Unlock()
	err := s.rs.Serve(wl)
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return err
}

// Close stops accepting, closes every connection, cancels their contexts
// (a blocked MLOCK leaves its queue) and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	ln := s.mu.ln
	clients := make([]*client, 0, len(s.mu.clients))
	for _, c := range s.mu.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	s.cancel()
	var err error
	if ln != nil {
		err = ln.Close()
		s.rs.Close()
	}
	for _, c := range clients {
		c.nc.Conn.Close()
	}
	s.conns.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// client is one connection's state. Fields in mu are read by other
// connections (CLIENT LIST); the rest belong to the connection's goroutine.
type client struct {
	id      int64
	addr    string
	laddr   string
	created time.Time
	nc      *conn
	ctx     context.Context // the connection's; carries pl
	cancel  context.CancelFunc
	pl      *core.Pipeline
	// x is the call being executed, reused for every command: a call
	// passed to a handler through a func value escapes to the heap, and
	// only this connection's goroutine runs commands.
	x call

	authed    bool
	limitedTo string // account an account token limits it to; "" = all
	quit      bool

	out   []byte // replies of the pipeline being run
	marks []int
	pend  []core.Pending
	ops   []op        // the pipeline's commands, for metrics (observe.go)
	busy  atomic.Bool // running a pipeline (shutdown.go)

	mu struct {
		sync.Mutex
		name    string
		account string
		libName string
		libVer  string
		lastCmd string
		cmdAt   time.Time
	}
}

func (c *client) account() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.account
}

func (s *Server) accept(rc redcon.Conn) bool {
	nc, ok := rc.NetConn().(*conn)
	if !ok {
		return false
	}
	s.mu.Lock()
	if s.mu.closed || s.draining.Load() {
		s.mu.Unlock()
		nc.Conn.Write(redcon.AppendError(nil, "ERR server is shutting down"))
		return false
	}
	if len(s.mu.clients) >= s.cfg.MaxConns {
		s.mu.Unlock()
		s.rejectConns.Add(1)
		nc.Conn.Write(redcon.AppendError(nil, "ERR max number of clients reached"))
		return false
	}
	c := &client{
		id:      s.nextID.Add(1),
		addr:    rc.RemoteAddr(),
		laddr:   nc.LocalAddr().String(),
		created: time.Now(),
		nc:      nc,
		authed:  !s.cfg.Auth.Enabled(),
	}
	c.mu.account = s.cfg.DefaultAccount
	ctx, cancel := context.WithCancel(s.ctx)
	c.ctx, c.pl = core.WithPipeline(ctx)
	c.cancel = cancel
	s.mu.clients[c.id] = c
	s.conns.Add(1)
	s.mu.Unlock()
	s.totalConns.Add(1)
	rc.SetContext(c)
	return true
}

func (s *Server) closed(rc redcon.Conn, _ error) {
	c, ok := rc.Context().(*client)
	if !ok {
		return
	}
	c.cancel()
	s.mu.Lock()
	delete(s.mu.clients, c.id)
	s.mu.Unlock()
	s.conns.Done()
}

// handle runs first and every command already read behind it (the client's
// pipeline): all are submitted, then each reply is released once its
// writes are durable, in order, in one flush (R1).
func (s *Server) handle(rc redcon.Conn, first redcon.Command) {
	c := rc.Context().(*client)
	defer s.leave(rc, c)
	if !s.enter(rc, c) {
		return
	}
	out, marks, pend, ops := c.out[:0], c.marks[:0], c.pend[:0], c.ops[:0]
	// release writes the replies held so far, each once its writes are
	// durable. Mid-pipeline it writes straight to the socket, which blocks
	// while the client does not read (R7); redcon's buffer is empty then,
	// as redcon flushes it before reading the next pipeline. The last part
	// goes through redcon, which flushes it after handle returns.
	release := func(direct bool) {
		prev := 0
		var wbuf []byte
		for i, p := range pend {
			r := out[prev:marks[i]]
			prev = marks[i]
			if err := p.Wait(c.ctx); err != nil {
				r = appendErr(nil, "", err)
			}
			s.endOp(c, ops[i], r)
			if direct {
				wbuf = append(wbuf, r...)
			} else {
				rc.WriteRaw(r)
			}
		}
		if direct {
			if _, err := c.nc.Conn.Write(wbuf); err != nil {
				c.quit = true // the client is gone: run nothing more
			}
		}
		out, marks, pend, ops = out[:0], marks[:0], pend[:0], ops[:0]
	}
	run := func(args [][]byte) {
		ops = append(ops, s.startOp(args))
		out = s.exec(c, args, out)
		marks = append(marks, len(out))
		pend = append(pend, c.pl.Take())
		if len(out) >= maxHeldReplies {
			release(true)
		}
	}
	run(first.Args)
	for !c.quit {
		rest := rc.ReadPipeline()
		if len(rest) == 0 {
			break
		}
		for _, cmd := range rest {
			if c.quit {
				break // Redis ignores what follows QUIT
			}
			run(cmd.Args)
		}
	}
	release(false)
	if cap(out) > 1<<20 {
		out = nil // do not pin a large buffer to an idle connection
	}
	c.out, c.marks, c.pend, c.ops = out, marks[:0], pend[:0], ops[:0]
	if c.quit {
		rc.Close()
	}
}

// maxHeldReplies bounds the reply bytes a connection holds before writing
// them: a pipeline of many GETs of large values is answered in parts, and a
// client that does not read its replies blocks its own goroutine on the
// socket instead of growing the server's memory (R7).
const maxHeldReplies = 1 << 20

// exec checks one command against the table and the limits, then runs its
// handler (R2). It appends the reply to out.
func (s *Server) exec(c *client, args [][]byte, out []byte) []byte {
	if len(args) == 0 {
		return out
	}
	s.totalCmds.Add(1)
	cmd := s.lookup(args[0])
	if cmd == nil {
		return redcon.AppendError(out, unknownCommand(args))
	}
	name := cmd.lname
	c.mu.Lock()
	c.mu.lastCmd, c.mu.cmdAt = name, time.Now()
	c.mu.Unlock()
	if len(args) > s.cfg.MaxArgs {
		return redcon.AppendError(out, fmt.Sprintf("ERR too many arguments: %d, max_args is %d", len(args), s.cfg.MaxArgs))
	}
	for _, a := range args {
		if len(a) > s.maxArg {
			return redcon.AppendError(out, fmt.Sprintf("ERR argument of %d bytes is larger than max_value_bytes (%d)", len(a), s.maxArg))
		}
	}
	if a := cmd.spec.Arity; (a > 0 && len(args) != a) || (a < 0 && len(args) < -a) {
		return appendArityErr(out, name)
	}
	if !c.authed && cmd.spec.Flags&core.CmdNoAuth == 0 {
		return appendErr(out, name, core.ErrNoAuth)
	}
	if cmd.spec.Flags&core.CmdBlocking != 0 {
		c.pl.Flush() // earlier writes must not wait for the blocking one
	}
	c.x = call{s: s, c: c, args: args, name: name, out: out}
	cmd.h(&c.x)
	out = c.x.out
	c.x = call{} // drop references to the arguments and the reply buffer
	return out
}

func unknownCommand(args [][]byte) string {
	b := []byte("ERR unknown command '")
	b = append(b, truncate(args[0], 128)...)
	b = append(b, "', with args beginning with: "...)
	for _, a := range args[1:] {
		if len(b) > 256 {
			break
		}
		b = append(b, '\'')
		b = append(b, truncate(a, 128)...)
		b = append(b, "' "...)
	}
	return string(b)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// lookup finds a command by name in any case, without allocating.
func (s *Server) lookup(name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil // no command is this long
	}
	for i, ch := range name {
		if ch >= 'A' && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		buf[i] = ch
	}
	return s.cmds[string(buf[:len(name)])]
}

// listener wraps every accepted connection in a conn.
type listener struct {
	net.Listener
	maxArg, maxArgs int // framing limits of every connection (R6)
}

func (l *listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: nc, guard: newFrameGuard(l.maxArg, l.maxArgs)}, nil
}

// conn lets a command that blocks (MLOCK) keep reading the socket, so a
// client that disconnects meanwhile is noticed (R4). Bytes read while
// watching are handed to the next Read, so pipelined commands behind the
// blocking one are not lost.
type conn struct {
	net.Conn
	pending []byte
	rerr    error
	guard   *frameGuard    // nil: no framing limits (R6)
	perr    *protocolError // a refused frame, answered at the next Read
}

func (c *conn) Read(p []byte) (int, error) {
	if c.perr != nil {
		return 0, c.refuse()
	}
	var n int
	var err error
	if len(c.pending) > 0 {
		n = copy(p, c.pending)
		c.pending = c.pending[n:]
	} else if c.rerr != nil {
		return 0, c.rerr
	} else {
		n, err = c.Conn.Read(p)
	}
	if c.guard != nil && n > 0 {
		ok, perr := c.guard.scan(p[:n])
		if perr != nil {
			// Commands before the refused frame run and get their replies
			// first (redcon flushes them before it reads again).
			c.perr, c.pending = perr, nil
			if ok == 0 {
				return 0, c.refuse()
			}
			return ok, nil
		}
	}
	return n, err
}

// refuse answers a refused frame and fails the read, so redcon closes the
// connection (R6).
func (c *conn) refuse() error {
	c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Conn.Write(redcon.AppendError(nil, c.perr.msg))
	return c.perr
}

// watch reads the socket in the background until the returned stop is
// called, and calls gone if the peer closes or the read fails. It must be
// called from the connection's goroutine, between reads; stop returns once
// the reader is finished.
func (c *conn) watch(gone func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Conn.Read(buf)
			c.pending = append(c.pending, buf[:n]...)
			if err == nil && c.guard != nil && int64(len(c.pending)) > c.guard.maxFrame {
				// Bounded like any command (R6): a client may pipeline
				// behind a blocking command, not stream without limit.
				err = &protocolError{"ERR Protocol error: too much data sent while blocked"}
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return // stop's deadline
				}
				c.rerr = err
				gone()
				return
			}
		}
	}()
	return func() {
		c.Conn.SetReadDeadline(time.Unix(1, 0))
		<-done
		c.Conn.SetReadDeadline(time.Time{})
	}
}

// call is one command being run: its arguments and its reply.
type call struct {
	s    *Server
	c    *client
	args [][]byte
	name string // lower case
	out  []byte
}

func (x *call) ctx() context.Context { return x.c.ctx }
func (x *call) store() *core.Store   { return x.s.store }

func (x *call) ok()                 { x.out = redcon.AppendOK(x.out) }
func (x *call) status(s string)     { x.out = redcon.AppendString(x.out, s) }
func (x *call) bulk(b []byte)       { x.out = redcon.AppendBulk(x.out, b) }
func (x *call) bulkString(s string) { x.out = redcon.AppendBulkString(x.out, s) }
func (x *call) null()               { x.out = redcon.AppendNull(x.out) }
func (x *call) int(n int64)         { x.out = redcon.AppendInt(x.out, n) }
func (x *call) array(n int)         { x.out = redcon.AppendArray(x.out, n) }
func (x *call) nullArray()          { x.out = append(x.out, "*-1\r\n"...) }
func (x *call) errorText(msg string) {
	x.out = redcon.AppendError(x.out, msg)
}
func (x *call) err(err error) { x.out = appendErr(x.out, x.name, err) }
func (x *call) syntaxErr()    { x.errorText("ERR syntax error") }
func (x *call) bulkInt(n int64) {
	x.bulk(strconv.AppendInt(nil, n, 10))
}
