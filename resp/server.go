package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/internal/evloop"
	"github.com/concurrencydb/concurrencydb/internal/fdbudget"
)

// Config configures a Server. Zero fields take the defaults noted.
type Config struct {
	Auth           core.Auth // tokens (core/auth.go)
	DefaultAccount string    // "0" when empty
	MaxConns       int       // 0 = 10000
	// Conns is the budget of descriptors shared with HTTP (nil: none): a
	// connection beyond it is refused as beyond MaxConns (fdbudget).
	Conns *fdbudget.Budget
	// EventLoops serving the connections: 0 = 1. One loop, as Redis has one
	// thread, measured best on 2 cores shared with the benchmark client
	// (+12% SET and GET against two); more suit a machine with idle cores.
	EventLoops int
	MaxArgs    int // max arguments per command, 0 = 1024*1024
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
	loops  *gnet.Client // the event loops that serve every connection (loop.go)
	rp     replier
	start  time.Time
	runID  string // INFO's run_id and master_replid: 40 hex digits, new each start

	ctx     context.Context // parent of every connection's context
	cancel  context.CancelFunc
	conns   sync.WaitGroup // open connections
	workers sync.WaitGroup // goroutines of off-loop commands and the replier
	serving sync.WaitGroup // Serve's accept loop

	nextID      atomic.Int64
	totalConns  atomic.Int64
	totalCmds   atomic.Int64
	rejectConns atomic.Int64
	opStats     *opStats    // observe.go
	draining    atomic.Bool // Drain or Shutdown has begun (shutdown.go)

	cursors cursorTable

	mu struct {
		sync.Mutex
		clients map[int64]*client
		ln      net.Listener
		closed  bool
		passes  map[gnet.EventLoop]*loopPass // one per event loop
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
		runID:  newRunID(),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.clients = make(map[int64]*client)
	s.cmds = buildCommands()
	s.opStats = newOpStats(s.cmds)
	s.cursors.init(16384)
	s.rp.wake = make(chan struct{}, 1)
	return s
}

// Serve accepts connections on ln until Close and hands each to the event
// loops; it returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.mu.closed || s.mu.ln != nil {
		s.mu.Unlock()
		ln.Close()
		if s.mu.ln != nil {
			return errors.New("resp: Serve called twice")
		}
		return nil
	}
	loops, err := startLoops(s, max(s.cfg.EventLoops, 1))
	if err != nil {
		s.mu.Unlock()
		ln.Close()
		return err
	}
	s.mu.ln, s.loops = ln, loops
	s.workers.Add(1)
	s.serving.Add(1)
	s.mu.Unlock()
	defer s.serving.Done()
	go func() {
		defer s.workers.Done()
		s.replyLoop()
	}()
	evloop.Accept(ln, "resp", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.closed || s.draining.Load()
	}, s.accept)
	return nil
}

// Close stops accepting, closes every connection (a parked MLOCK leaves
// its queue: OnClose), cancels their contexts and waits for their
// goroutines.
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
	// NB: an accept in progress waits for a loop to register its
	// connection; stopping the loops first would leave it waiting forever.
	s.serving.Wait()
	if loops != nil {
		// Stopping the loops closes every connection (OnClose).
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

// client is one connection's state. Fields in mu are read by other
// connections (CLIENT LIST); loopState belongs to the connection's event
// loop (see loop.go); the rest is set once at accept, or belongs to
// whoever runs the connection's commands (the loop, or an off-loop
// command's goroutine while offloop is set).
type client struct {
	id      int64
	addr    string
	laddr   string
	created time.Time
	ctx     context.Context // the connection's; carries pl
	cancel  context.CancelFunc
	pl      *core.Pipeline
	// x is the call being executed, reused for every command: a call
	// passed to a handler through a func value escapes to the heap, and
	// only one goroutine at a time runs a connection's commands.
	x call

	authed    bool
	limitedTo string // account an account token limits it to; "" = all
	quit      bool
	// The transaction being queued (nil: none) and the keys WATCHed, by
	// account and id (multi.go). Only c's own commands touch them.
	tx       *txState
	watches  []core.Watched
	watching map[string]bool
	// What CLIENT LIST, on any loop, shows of them: 1 + the commands
	// queued (0: no MULTI), and the keys watched.
	txShown, watchShown atomic.Int64
	// blocked: a parked MLOCK waits for its mutex (park → deliver or
	// close); CLIENT LIST on any loop shows it as flags=b, as Redis shows
	// a client blocked in BLPOP.
	blocked atomic.Bool

	loopState

	mu struct {
		sync.Mutex
		gc      gnet.Conn // nil until the loop opened it
		name    string
		account string
		limited string // limitedTo, for CLIENT LIST on other connections
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

// conn is the client's gnet connection, nil before the loop opened it.
func (c *client) conn() gnet.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.gc
}

// accept registers nc with the event loops, or refuses it with an error
// reply over the connection limit or during shutdown.
func (s *Server) accept(nc net.Conn) {
	s.mu.Lock()
	if s.mu.closed || s.draining.Load() {
		s.mu.Unlock()
		refuse(nc, "ERR server is shutting down")
		return
	}
	if len(s.mu.clients) >= s.cfg.MaxConns || !s.cfg.Conns.Take() {
		s.mu.Unlock()
		s.rejectConns.Add(1)
		refuse(nc, "ERR max number of clients reached")
		return
	}
	c := &client{
		id:      s.nextID.Add(1),
		addr:    nc.RemoteAddr().String(),
		laddr:   nc.LocalAddr().String(),
		created: time.Now(),
		authed:  !s.cfg.Auth.Enabled(),
	}
	c.guard = newFrameGuard(s.maxArg, s.cfg.MaxArgs)
	c.mu.account = s.cfg.DefaultAccount
	ctx, cancel := context.WithCancel(s.ctx)
	c.ctx, c.pl = core.WithPipeline(ctx)
	c.cancel = cancel
	s.mu.clients[c.id] = c
	s.conns.Add(1)
	loops := s.loops
	s.mu.Unlock()
	s.totalConns.Add(1)
	// NB: EnrollContext duplicates the socket for the loop and closes nc.
	// It returns once the loop ran OnOpen — unless registering failed,
	// which it does not always report.
	if _, err := loops.EnrollContext(nc, c); err != nil || c.conn() == nil {
		s.forget(c)
	}
}

func refuse(nc net.Conn, msg string) {
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	nc.Write(redcon.AppendError(nil, msg))
	nc.Close()
}

// forget drops a closed connection.
func (s *Server) forget(c *client) {
	c.cancel()
	s.mu.Lock()
	delete(s.mu.clients, c.id)
	s.mu.Unlock()
	s.cfg.Conns.Release()
	c.unwatch(s)
	s.conns.Done()
}

// maxHeldReplies bounds the reply bytes a connection holds: a pipeline of
// many GETs of large values is answered in parts, and a connection whose
// written, queued and built replies reach it is not served until they
// drain, so a client that does not read its replies cannot grow the
// server's memory (R7, loop.go).
const maxHeldReplies = 1 << 20

// exec checks one command against the table and the limits, then runs its
// handler (R2). It appends the reply to out. now is when it started.
func (s *Server) exec(c *client, args [][]byte, out []byte, now time.Time) []byte {
	if len(args) == 0 {
		return out
	}
	s.totalCmds.Add(1)
	cmd := s.lookup(args[0])
	if cmd == nil {
		c.abortTx()
		return redcon.AppendError(out, unknownCommand(args))
	}
	name := cmd.lname
	c.mu.Lock()
	c.mu.lastCmd, c.mu.cmdAt = name, now
	c.mu.Unlock()
	if len(args) > s.cfg.MaxArgs {
		return s.refused(c, cmd, fmt.Sprintf("ERR too many arguments: %d, max_args is %d", len(args), s.cfg.MaxArgs), out)
	}
	for _, a := range args {
		if len(a) > s.maxArg {
			return s.refused(c, cmd, fmt.Sprintf("ERR argument of %d bytes is larger than max_value_bytes (%d)", len(a), s.maxArg), out)
		}
	}
	if a := cmd.spec.Arity; (a > 0 && len(args) != a) || (a < 0 && len(args) < -a) {
		return s.refused(c, cmd, arityErr(name), out)
	}
	if !c.authed && cmd.spec.Flags&core.CmdNoAuth == 0 {
		if cmd.spec.Name == "EXEC" { // EXECABORT … because of: NOAUTH …, as Redis
			return s.refused(c, cmd, strings.TrimSuffix(string(appendErr(nil, name, core.ErrNoAuth)[1:]), "\r\n"), out)
		}
		return appendErr(out, name, core.ErrNoAuth)
	}
	if c.tx != nil && !txControl(cmd) {
		return s.queue(c, cmd, args, out)
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
	// As Redis: arguments are added while the list is under 128 bytes,
	// each cut to what is left of them.
	list := len(b)
	for _, a := range args[1:] {
		if len(b)-list >= 128 {
			break
		}
		b = append(b, '\'')
		b = append(b, truncate(a, 128-(len(b)-1-list))...)
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
