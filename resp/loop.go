package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/internal/evloop"
)

// The connection model: event loops, as in Redis.
//
// Connections are served by event loops (gnet; Config.EventLoops, default
// one), not by a goroutine each. When a socket is readable, its loop reads
// it once, parses every complete command in the buffer with redcon's parser
// and submits them all to core as one pipeline (core.Pipeline: nothing
// waits). Then:
//
//   - when every reply is already final (reads of durable data) and nothing
//     of the connection is queued, the loop writes the replies itself;
//   - otherwise they wait in the connection (c.r) for the loop's pass
//     commit (loopPass): a task the loop runs after the connections that
//     were ready, which commits everything the pass wrote in the loop's own
//     goroutine (core.Store.Sync) and then writes every waiting reply (R1)
//     — as Redis fsyncs once per pass of its event loop, before it
//     writes the pass's replies;
//   - replies that cannot wait there — an off-loop command's or a parked
//     MLOCK's own reply when earlier ones are queued, replies released
//     before a command that may reply later, or beyond maxHeldReplies —
//     go to the replier, one goroutine that waits
//     for their fsync in queue order and hands the bytes back to the loop
//     (AsyncWrite). (A closing connection's replies wait for the pass too, so that
//     answerHalfClosed can still reach them.)
//
// So a request costs one read and one write system call and no goroutine
// switch of its own, and a pass costs one commit, however many connections
// it served. Measured on this 2-core machine (bench/): redcon's goroutine
// per connection — a read, a park in the poller, a second read, a wake-up
// per request — served fewer bare SETs without any disk (≈70k/s) than
// Redis serves durable ones; an event loop serves ≈95k/s. Committing in the
// loop's pass instead of a committer goroutine that hands replies back
// through a replier took durable SETs (50 clients) from 0.72× to about
// 0.85× Redis-always and CPU per SET from 15 to 12 µs (paired runs): the
// loop waits during the fsync, but the clients it serves could not have
// sent more before their replies anyway, and every connection that became
// ready meanwhile shares the next commit.
//
// A command that walks a keyspace (KEYS, SCAN, FLUSHALL, …:
// core.CmdKeyspace) runs in a goroutine of its own, off the loop, so the
// loop does not wait for it (KEYS and FLUSHALL hold core's apply lock
// while they walk, so other commands wait for them anyway, as for KEYS in
// Redis; SCAN, RANDOMKEY and DBSIZE hold it only briefly). A command that
// may block (MLOCK) runs on the loop and, when it must wait, parks its
// connection (park) instead of holding the loop or a goroutine: the mutex's
// grant, timeout or stop is a callback from core that queues the outcome
// for the loop (loopPass.grant), so an MUNLOCK run by the next holder's
// own loop delivers its reply as soon as the unlocking connection's input
// is served (unlockingHere), with no goroutine switch and no wake-up of
// the loop; a grant from elsewhere (another loop, a timer, HTTP) wakes the
// holder's loop with a task. Measured with bench/mutexbench, 10 clients on
// one mutex, in three sessions (the machine's speed differs between
// them, so compare within a line): 7,200–8,400 cycles/s with a goroutine
// per waiter against 11,600–12,600 parked; 11,600–12,000 parked with the
// loop's thread locked against 15,900–16,800 not (startLoops says why it
// stays locked); and, unlocked, in 5 alternating pairs, medians 15,100 →
// 16,600 cycles/s and p99 wait 1.36 → 1.16 ms with the grant delivered
// after the unlocking connection's input instead of by a task per grant.
// As shipped (locked, delivered after the input): ~12,300 cycles/s, p99
// wait ~1.3 ms.
//
// Either way the connection reads no further command until that reply is
// written (offloop), which keeps replies in order. Input that arrives
// meanwhile waits in the connection's buffer, bounded by maxBacklog. A
// client that disconnects withdraws its parked MLOCK at once (R4). A
// client that half-closes its socket after its commands (shutdown
// SHUT_WR: nc -N) still gets their replies (answerHalfClosed), as from
// Redis.
//
// A connection whose written replies the client does not read stops being
// served at maxHeldReplies of pending output (R7): the loop parses nothing
// more and looks again a little later; if the client keeps sending without
// reading, the connection is closed once its unread input passes
// maxBacklog.

// loopState is the part of a client only its event loop touches (or the
// goroutine of an off-loop command, while offloop is set for it; a parked
// MLOCK sets offloop too, but has no goroutine: the loop keeps it).
type loopState struct {
	// in is the input read and not yet run (the loop moves every byte gnet
	// reads here once, so it never looks at gnet's buffers again): the
	// guard has scanned in[:scanned]; with perr, in[:limit] precedes the
	// refused frame.
	in      []byte
	guard   *frameGuard
	scanned int
	limit   int
	perr    *protocolError // a refused frame (R6), answered after the commands before it
	args    [][]byte       // parser scratch

	r         replies             // the replies being built
	queued    int                 // replies handed to the replier and not yet written
	heldBytes int                 // their size
	offloop   bool                // a command runs in its own goroutine, or is parked
	park      *parked             // the parked MLOCK, until its reply is written
	onGrant   func(uint64, error) // pass.grant(c), made at c's first wait
	throttled bool                // a wake-up is scheduled (R7)
	closing   bool                // close once idle (closeWhenIdle)
	closeBy   time.Time           // closeWhenIdle's deadline
	backoff   time.Duration       // the last wait of later
	gone      bool                // closed (OnClose ran)
	pass      *loopPass           // c's event loop's
	awaiting  bool                // c is in pass.waiting
}

// replies is a run of commands' replies, in order: out holds them all,
// marks[i] ends the i-th; pend[i] is its durability wait, ops[i] its
// metrics start.
type replies struct {
	c      *client
	out    []byte
	marks  []int
	pend   []core.Pending
	ops    []op
	at     time.Time // when the first of them started
	held   int       // bytes counted in c.heldBytes
	resume bool      // ends an off-loop command: the loop reads input again
}

func (r *replies) reset() {
	r.out, r.marks, r.pend, r.ops = r.out[:0], r.marks[:0], r.pend[:0], r.ops[:0]
	r.held, r.resume, r.at = 0, false, time.Time{}
	if cap(r.out) > maxHeldReplies {
		r.out = nil // do not pin a large buffer
	}
}

func (r *replies) ready() bool {
	for _, p := range r.pend {
		if !p.Ready() {
			return false
		}
	}
	return true
}

var repliesPool = sync.Pool{New: func() any { return new(replies) }}

// throttleRetry and maxRetry bound how soon a throttled or closing
// connection is looked at again (see later).
const (
	throttleRetry = 2 * time.Millisecond
	maxRetry      = 100 * time.Millisecond
)

// startLoops starts n event loops.
func startLoops(s *Server, n int) (*gnet.Client, error) {
	cli, err := gnet.NewClient(&loopHandler{s: s},
		gnet.WithNumEventLoop(n),
		// A loop keeps its OS thread: its caches stay warm while Pebble's
		// flushes and compactions run beside it. Measured with
		// bench/ab.sh, GET 50 clients while those run (PREFILL=1 CHURN=2
		// ROUNDS=5 N=400000, twice, the builds swapped): 0.96× / 0.94×
		// Redis locked against 0.91× / 0.89× not, at the same CPU per
		// request (7.8–7.9 µs); without that background work
		// (PREFILL=1 ROUNDS=5 N=500000), locked 0.93× against unlocked
		// 0.98×, noise.
		//
		// The price: gnet's loop calls runtime.Gosched each time it finds
		// no more events (an idle moment), and a goroutine locked to its
		// thread cannot simply yield: its thread hands the P to another
		// thread and sleeps until that one hands it back, two futex
		// wake-ups per idle moment. A load that idles the loop between
		// requests pays it: bench/mutexbench (10 clients on one mutex,
		// grants delivered by a task) made 11,600–12,000 cycles/s locked
		// against 15,900–16,800 not, p99 wait 1.34–1.43 ms against
		// 1.03–1.09; with grants delivered after the input, ~12,300
		// against 16,100–18,500 (three pairs). In full runs of bench/run.sh
		// single-client GET was 1.04× Redis locked against 1.86–1.96×
		// unlocked. The throughput target (GET ≥ 0.9× at 50 clients)
		// decides; the README says what the idle loads lose.
		//
		// NB: this pays off only because the loop's commit (loopPass)
		// usually blocks in write and fdatasync system calls rather than
		// in a goroutine park (it parks when it must wait for another
		// commit: the committer's, another loop's, a log rotation): with
		// Pebble's WAL the loop parked on its log writer goroutine in
		// every commit, and a locked thread made each park hand the P to
		// another thread and back (single-client SET 215 µs locked, 185
		// µs not).
		gnet.WithLockOSThread(true),
		gnet.WithLogger(evloop.Logger("resp event loop")),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay))
	if err != nil {
		return nil, fmt.Errorf("resp: event loops: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("resp: event loops: %w", err)
	}
	return cli, nil
}

// loopHandler receives the event loops' callbacks.
type loopHandler struct {
	gnet.BuiltinEventEngine
	s *Server
}

func (h *loopHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*client)
	c.mu.Lock()
	c.mu.gc = gc
	c.mu.Unlock()
	c.pass = h.s.passOf(gc.EventLoop())
	if h.s.draining.Load() {
		return redcon.AppendError(nil, "ERR server is shutting down"), gnet.Close
	}
	return nil, gnet.None
}

func (h *loopHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	if c, ok := gc.Context().(*client); ok {
		if errors.Is(err, io.EOF) && !c.gone {
			h.s.answerHalfClosed(c, gc)
		}
		c.gone = true
		if c.park != nil {
			c.park.wait.Cancel() // R4, M1
			c.park = nil
			c.blocked.Store(false)
		}
		h.s.forget(c)
	}
	return gnet.None
}

func (h *loopHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	return h.s.serveInput(gc.Context().(*client), gc)
}

// serveInput runs every complete command in c's input (see the top of the
// file). It runs on c's event loop.
//
// NB: a write to the socket that fails makes gnet close the connection at
// once (OnClose sets c.gone, the input buffer is released): after every
// release the loop must stop touching c's buffers.
func (s *Server) serveInput(c *client, gc gnet.Conn) gnet.Action {
	defer c.pass.deliverHere() // MUNLOCKs' grants
	if c.gone {
		return gnet.Close // a no-op for gnet on a closed connection
	}
	c.takeInput(gc)
	if c.offloop || c.closing || c.quit {
		return s.checkBacklog(c, gc, "ERR Protocol error: too much data sent while blocked")
	}
	if s.draining.Load() {
		if len(c.in) == 0 {
			return gnet.None // Shutdown's drain closes it
		}
		return s.refuseInput(c, gc)
	}
	if c.throttled || gc.OutboundBuffered()+c.heldBytes >= maxHeldReplies {
		if !c.throttled {
			s.throttle(c, gc) // R7
		}
		return s.checkBacklog(c, gc, "ERR Protocol error: too much data sent without reading replies")
	}
	if c.perr == nil && c.scanned < len(c.in) {
		c.guard.unauthed = !c.authed
		ok, perr := c.guard.scan(c.in[c.scanned:])
		if perr != nil {
			c.perr, c.limit = perr, c.scanned+ok
		}
		c.scanned = len(c.in)
	}
	end := len(c.in)
	if c.perr != nil {
		end = c.limit
	}
	used := s.parse(c, gc, c.in[:end])
	if c.gone {
		return gnet.Close
	}
	if !c.throttled {
		c.backoff = 0 // it was served
	}
	c.consume(used)
	if c.perr != nil && !c.offloop && !c.quit && !c.throttled {
		// Every complete command before the refused frame ran (what is
		// left is the head of the refused frame).
		if c.perr.unauthed && c.authed {
			// One of them authenticated the connection (AUTH, HELLO):
			// follow the frame again, with the limits for that.
			c.guard.reset()
			c.perr, c.scanned = nil, 0
			return s.serveInput(c, gc)
		}
		// Answer it and close (R6).
		s.appendReply(c, redcon.AppendError(nil, c.perr.msg))
		c.quit = true
	}
	if c.quit {
		return s.closeWhenIdle(c, gc)
	}
	if s.releaseOrAwait(c, gc); c.gone {
		return gnet.Close
	}
	return gnet.None
}

// answerHalfClosed writes the replies that wait for the loop's commit to a
// client whose end of the connection reached EOF (a half-close after its
// commands: printf … | nc -N), as Redis answers it: gnet closes the socket
// at that EOF, just after it delivered the input (OnTraffic), so this
// commits now, in OnClose, and writes the replies there; gnet sends what
// its buffer holds before it closes. A client that closed both ways
// cannot read them, at no cost but the commit, which its writes needed
// anyway (and the commit is the pass's, so other connections' writes
// share it). Replies that went to the replier (behind an off-loop command
// or a parked MLOCK, before a blocking command, beyond maxHeldReplies)
// are dropped with the connection, and so is what gnet's final write
// cannot put in the socket at once (the README says so).
func (s *Server) answerHalfClosed(c *client, gc gnet.Conn) {
	r := &c.r
	if len(r.marks) == 0 || c.queued > 0 || c.offloop {
		return
	}
	if !r.ready() {
		s.store.Sync()
	}
	gc.Write(s.settle(c, r))
	r.reset()
	s.store.Applied() // after the replies, as a pass does (core's C3)
}

// takeInput moves what gnet has read of c into c.in.
func (c *client) takeInput(gc gnet.Conn) {
	n := gc.InboundBuffered()
	if n == 0 {
		return // NB: gnet's Next(0) and Discard(0) mean "everything"
	}
	if len(c.in) == 0 && cap(c.in) > 1<<20 {
		c.in = nil // do not pin a large buffer to an idle connection
	}
	c.in = slices.Grow(c.in, n)
	m, _ := gc.Read(c.in[len(c.in) : len(c.in)+n])
	c.in = c.in[:len(c.in)+m]
}

// consume drops the first n bytes of c.in.
func (c *client) consume(n int) {
	if n == 0 {
		return
	}
	if rest := len(c.in) - n; rest <= n {
		// Moved to the front, reusing the buffer: it costs no more than
		// what was consumed (a pipeline's partial last command).
		c.in = c.in[:copy(c.in, c.in[n:])]
	} else {
		// NB: not copied: a connection that resumes, command by command,
		// a deep pipeline that waited behind parked MLOCKs would copy the
		// rest of it each time, O(n²) (bench-style probe, 60,000 pipelined
		// handovers: 4.0 s copying, 0.59 s not). takeInput's Grow moves
		// it when the buffer runs out of room.
		c.in = c.in[n:]
	}
	c.scanned -= n
	if c.perr != nil {
		c.limit -= n
	}
}

// parse runs the complete commands at the head of buf, c's input, and
// returns how many bytes they took. It stops early for c's state: an
// off-loop command, QUIT, throttling, a closed connection.
func (s *Server) parse(c *client, gc gnet.Conn, buf []byte) (used int) {
	for used < len(buf) && !c.quit && !c.offloop {
		if len(c.r.out) >= maxHeldReplies {
			if s.release(c, gc); c.gone {
				return used
			}
		}
		if gc.OutboundBuffered()+c.heldBytes >= maxHeldReplies {
			s.throttle(c, gc)
			return used
		}
		var args [][]byte
		if b := buf[used:]; b[0] != '*' || emptyMultibulk(b) {
			// An inline command (inline.go), or "*0"/"*-1", which Redis
			// ignores: neither goes to redcon.
			var n int
			var complete bool
			var err error
			if args, n, complete, err = nextInline(b); err != nil {
				s.appendReply(c, redcon.AppendError(nil, "ERR "+err.Error()))
				c.quit = true
				return len(buf)
			}
			if !complete {
				return used
			}
			used += n
			if b[0] == '*' {
				continue
			}
		} else {
			complete, a, _, left, err := redcon.ReadNextCommand(b, c.args[:0])
			if err != nil { // the guard refuses malformed frames first
				s.appendReply(c, redcon.AppendError(nil, "ERR "+err.Error()))
				c.quit = true
				return len(buf)
			}
			if !complete || len(buf)-len(left) == used {
				return used
			}
			used = len(buf) - len(left)
			args, c.args = a, a[:0]
		}
		if len(args) == 0 {
			continue
		}
		// NB: a connection that has not authenticated gets NOAUTH on the
		// loop: off it, its later input would wait under the
		// unauthenticated backlog bound, and an AUTH behind could be cut
		// off (found by review).
		if cmd := s.lookup(args[0]); cmd != nil && c.authed && c.tx == nil && runsOffLoop(cmd, args) {
			if s.release(c, gc); c.gone {
				return used
			}
			s.startOffLoop(c, args)
			return used
		} else if cmd != nil && cmd.spec.Flags&core.CmdBlocking != 0 {
			// Its reply may come later (park): the replies before it go
			// first.
			if s.release(c, gc); c.gone {
				return used
			}
		}
		s.run(c, args)
	}
	return used
}

// run executes one command as part of c's current replies.
func (s *Server) run(c *client, args [][]byte) {
	r := &c.r
	if r.at.IsZero() {
		// One clock read per read from the socket: the commands it
		// brought start together.
		r.at = time.Now()
	}
	o := s.startOp(args, r.at)
	r.out = s.exec(c, args, r.out, r.at)
	if c.park != nil && !c.park.started {
		// It parked: no reply yet (deliver writes it).
		c.park.op, c.park.started = o, true
		r.at = time.Time{} // the commands after it start when they run
		return
	}
	r.ops = append(r.ops, o)
	r.marks = append(r.marks, len(r.out))
	r.pend = append(r.pend, c.pl.Take())
}

// appendReply adds a reply that is no command's (a protocol error).
func (s *Server) appendReply(c *client, b []byte) {
	r := &c.r
	r.ops = append(r.ops, op{skip: true})
	r.out = append(r.out, b...)
	r.marks = append(r.marks, len(r.out))
	r.pend = append(r.pend, core.Pending{})
}

// release sends c's current replies: written at once when they are final
// and nothing of c is queued before them, else queued for the replier.
func (s *Server) release(c *client, gc gnet.Conn) {
	r := &c.r
	if len(r.marks) == 0 || c.offloop {
		// An off-loop command's reply goes first: written clears offloop
		// and releases these after it (and c.pl is the command's).
		return
	}
	if c.queued == 0 && r.ready() {
		gc.Write(s.settle(c, r))
		r.reset()
		return
	}
	q := repliesPool.Get().(*replies)
	*q, *r = *r, *q // q takes the replies, c.r a recycled (empty) set
	r.reset()
	q.c, q.held = c, len(q.out)
	c.queued++
	c.heldBytes += q.held
	c.pl.Flush() // pipeline writes do not start a commit by themselves
	s.rp.push(q)
}

// releaseOrAwait sends c's current replies like release, except that
// replies waiting for an fsync stay in c.r until the loop's pass commits
// (loopPass), instead of going to the replier.
func (s *Server) releaseOrAwait(c *client, gc gnet.Conn) {
	r := &c.r
	if len(r.marks) == 0 {
		return
	}
	if c.queued > 0 || r.ready() {
		s.release(c, gc)
		return
	}
	p := c.pass
	if !c.awaiting {
		c.awaiting = true
		p.waiting = append(p.waiting, c)
	}
	if !p.scheduled {
		p.scheduled = true
		if err := p.el.Execute(context.Background(), p); err != nil {
			_ = p.Run(context.Background()) // the loops are stopping
		}
	}
}

// settle waits for each of r's replies to be durable (R1), counts them and
// returns the bytes to send: r.out, or a copy where a failed fsync (D6)
// replaced a reply with its error.
func (s *Server) settle(c *client, r *replies) []byte {
	var errs []error // nil unless a wait failed
	for i, p := range r.pend {
		if err := p.Wait(c.ctx); err != nil {
			if errs == nil {
				errs = make([]error, len(r.pend))
			}
			errs[i] = err
		}
	}
	end := time.Now() // one clock read for the lot: they are all durable now
	var fixed []byte
	prev := 0
	for i := range r.pend {
		seg := r.out[prev:r.marks[i]]
		if errs != nil {
			if errs[i] != nil {
				seg = appendErr(nil, "", errs[i])
			}
			fixed = append(fixed, seg...)
		}
		s.endOp(c, r.ops[i], seg, end)
		prev = r.marks[i]
	}
	if errs != nil {
		return fixed
	}
	return r.out
}

// written runs on c's loop once queued replies q were written.
func (s *Server) written(q *replies, gc gnet.Conn) {
	c := q.c
	c.queued--
	c.heldBytes -= q.held
	if q.resume {
		c.offloop = false
		if c.park != nil && c.park.delivered {
			c.park = nil
		}
	}
	q.reset()
	q.c = nil
	repliesPool.Put(q)
	if gc == nil || c.gone {
		return // closed meanwhile
	}
	if pk := c.park; pk != nil && pk.heldBack && c.queued == 1 {
		// The replies before a held-back grant are written (deliver):
		// its turn. NB: deliverHeldBack writes it through written again,
		// which goes on from there (the input behind it, a close).
		s.deliverHeldBack(c, pk)
		return
	}
	if c.closing {
		if c.queued > 0 {
			return
		}
		// Replies added while this was pending (an error about the input
		// that arrived meanwhile) go after it; then close.
		if s.release(c, gc); c.gone {
			return
		}
		c.takeInput(gc)
		if s.draining.Load() && len(c.in) > 0 {
			if s.refuseInput(c, gc) == gnet.Close {
				gc.Close()
			}
			return
		}
		if s.closeWhenIdle(c, gc) == gnet.Close {
			gc.Close()
		}
		return
	}
	if !c.offloop && !c.throttled && (len(c.in) > 0 || gc.InboundBuffered() > 0) {
		// Input that waited behind an off-loop command.
		if s.serveInput(c, gc) == gnet.Close {
			gc.Close()
		}
	}
}

// throttle stops serving c until its pending output drains (R7).
func (s *Server) throttle(c *client, gc gnet.Conn) {
	c.throttled = true
	s.later(c, gc, func() gnet.Action {
		c.throttled = false
		return s.serveInput(c, gc)
	})
}

// later runs fn on c's loop after a wait, unless c is closed by then, and
// closes c if fn says so. The wait doubles from throttleRetry up to
// maxRetry while c keeps waiting (a thousand clients that never read cost
// a few wake-ups a second each, not 500), and starts over once c was
// served (serveInput). NB: gc.Wake runs OnTraffic first.
func (s *Server) later(c *client, gc gnet.Conn, fn func() gnet.Action) {
	c.backoff = nextRetry(c.backoff)
	time.AfterFunc(c.backoff, func() {
		_ = gc.Wake(func(gc gnet.Conn, err error) error {
			if err == nil && !c.gone && fn() == gnet.Close {
				gc.Close()
			}
			return nil
		})
	})
}

// nextRetry is the wait of later after a wait of prev (0: none yet).
func nextRetry(prev time.Duration) time.Duration {
	return min(max(2*prev, throttleRetry), maxRetry)
}

// maxBacklog bounds the input a connection that is not being served may
// hold (while an off-loop command runs, or while it is throttled): a client
// may pipeline behind a blocking command, not stream without limit (R6,
// R7).
const maxBacklog = 16 << 20

// maxUnauthedBacklog is maxBacklog for a connection that has not
// authenticated (auth on): without it, one that never read its NOAUTH
// replies was throttled, and then buffered 16 MiB (2 × max_value_bytes)
// of unscanned input, large frames included (found by review).
const maxUnauthedBacklog = 1 << 20

func (s *Server) checkBacklog(c *client, gc gnet.Conn, msg string) gnet.Action {
	if c.closing {
		// Nothing more of its input will run: keep one byte, so that a
		// shutdown still answers that commands arrived (R8), and drop the
		// rest as it comes.
		c.in, c.scanned, c.perr = c.in[:min(len(c.in), 1)], 0, nil
		return gnet.None
	}
	limit := max(maxBacklog, 2*s.maxArg)
	if !c.authed {
		// Its frames are small (R6), and it has no business pipelining
		// megabytes while it does not read its NOAUTH replies.
		limit = maxUnauthedBacklog
	}
	if len(c.in) <= limit {
		return gnet.None
	}
	return s.answerAndClose(c, gc, msg)
}

// answerAndClose answers msg after c's earlier replies, then closes c.
func (s *Server) answerAndClose(c *client, gc gnet.Conn, msg string) gnet.Action {
	s.appendReply(c, redcon.AppendError(nil, msg))
	c.quit = true
	if c.offloop {
		// Its reply comes first: written releases this one, then closes.
		c.closing = true
		return gnet.None
	}
	return s.closeWhenIdle(c, gc)
}

// refuseInput answers the unread input of c with an error, Shutdown having
// begun (R8), and closes c.
func (s *Server) refuseInput(c *client, gc gnet.Conn) gnet.Action {
	c.takeInput(gc)
	c.in, c.scanned, c.perr = c.in[:0], 0, nil
	return s.answerAndClose(c, gc, "ERR server is shutting down")
}

// closeFlushWait bounds how long a closing connection waits for the
// client to take its last replies.
const closeFlushWait = 10 * time.Second

// closeWhenIdle closes c once nothing of it waits: no reply queued for an
// fsync or an off-loop command, and nothing buffered in gnet, whose own
// close writes what the socket takes at once and drops the rest. A client
// that does not read gets closeFlushWait.
func (s *Server) closeWhenIdle(c *client, gc gnet.Conn) gnet.Action {
	c.closing = true
	// NB: replies waiting for an fsync wait for the loop's pass, not the
	// replier, so that a client that half-closes meanwhile still gets them
	// (answerHalfClosed: printf 'SET a 1\r\nQUIT\r\n' | nc -N).
	if s.releaseOrAwait(c, gc); c.gone {
		return gnet.Close
	}
	if c.queued > 0 || c.awaiting {
		return gnet.None // written or the pass calls again
	}
	if gc.OutboundBuffered() == 0 {
		if s.draining.Load() && !c.quit {
			// R8: input that came while the replies before it drained
			// (kept as one byte: checkBacklog) gets its error reply, not
			// the silence of a close (found by review: a command sent
			// after SIGTERM, behind replies the client had not read yet,
			// was neither run nor answered). NB: not after a QUIT, nor
			// twice: refuseInput sets quit.
			if c.takeInput(gc); len(c.in) > 0 {
				return s.refuseInput(c, gc)
			}
		}
		return gnet.Close
	}
	now := time.Now()
	if c.closeBy.IsZero() {
		c.closeBy = now.Add(closeFlushWait)
	} else if now.After(c.closeBy) {
		return gnet.Close
	}
	s.later(c, gc, func() gnet.Action { return s.closeWhenIdle(c, gc) })
	return gnet.None
}

// runsOffLoop: commands that walk a whole keyspace run in a goroutine;
// INFO only for its keyspace section (INFO replication, a health check's,
// is answered on the loop, also to a client that half-closes).
func runsOffLoop(cmd *command, args [][]byte) bool {
	if cmd.spec.Flags&core.CmdKeyspace == 0 {
		return false
	}
	return cmd.spec.Name != "INFO" || infoWalksKeyspace(args[1:])
}

// parked is a connection's MLOCK waiting for its mutex.
type parked struct {
	wait    *core.MutexWait
	op      op   // the command's metrics start
	started bool // run has seen it park
	// delivered: its outcome is being written or is queued behind earlier
	// replies; written clears the park, and a client that goes before
	// that must still pass a grant on (OnClose).
	delivered bool
	// heldBack: a grant (handle h) that waits for the client to read what
	// is already in gnet's buffer before it is written (deliver).
	heldBack bool
	h        uint64
}

// park makes c's running command (MLOCK, on c's loop) wait for wait's
// outcome, which loopPass.grant queues for the loop and deliver writes:
// c reads no further command until then, as for an off-loop command.
func (s *Server) park(c *client, wait *core.MutexWait) {
	c.park = &parked{wait: wait}
	c.blocked.Store(true)
	c.offloop = true
	c.queued++
}

// grantOutcome is a parked MLOCK's outcome, queued for its loop.
type grantOutcome struct {
	c   *client
	h   uint64
	err error
}

// grant returns the callback core calls with the outcome of c's parked
// MLOCK. It runs under core's mutex lock, on whichever goroutine grants
// (this loop running MUNLOCK, another loop, a timer, an HTTP unlock,
// StopWaiters), so it only queues the outcome: an MUNLOCK run by c's own
// loop delivers it at the end of its connection's input (unlockingHere);
// any other grant schedules a delivery task, one per batch.
func (p *loopPass) grant(c *client) func(uint64, error) {
	return func(h uint64, err error) {
		p.grants.Lock()
		p.grants.q = append(p.grants.q, grantOutcome{c, h, err})
		schedule := !p.grants.scheduled && !p.grants.here
		p.grants.scheduled = p.grants.scheduled || schedule
		p.grants.Unlock()
		if schedule {
			// NB: a task runs after the connections that were ready when
			// it was queued.
			if err := p.el.Execute(context.Background(), deliverGrants{p}); err != nil {
				// The loop is stopping: its connections' OnClose cancels
				// their parked waits, this one's included.
				p.grants.Lock()
				p.grants.scheduled = false
				p.grants.Unlock()
			}
		}
	}
}

// deliverGrants writes the queued outcomes of parked MLOCKs, on the loop.
type deliverGrants struct{ p *loopPass }

func (d deliverGrants) Run(context.Context) error {
	d.p.deliverGrants(func() { d.p.grants.scheduled = false })
	return nil
}

// unlockingHere is called on the loop before it runs an unlock: the
// grants it makes are delivered at the end of the connection's
// serveInput (deliverHere), not by a task, which would cost a wake-up of
// the loop through its eventfd and another pass over epoll. NB: only
// from a command run by serveInput (cmdMUnlock), whose deferred
// deliverHere then delivers them; from anywhere else the loop's later
// grants would wait for the next serveInput.
func (p *loopPass) unlockingHere() {
	if p.unlocking {
		return
	}
	p.unlocking = true
	p.grants.Lock()
	p.grants.here = true
	p.grants.Unlock()
}

// deliverHere delivers what was granted since unlockingHere. NB: in a
// loop, not by recursion: a delivery resumes the granted connection's
// input (written → serveInput), which may unlock again and defer another
// deliverHere; that one returns at once and this loop goes round again.
// Recursing, two connections pipelining MLOCK/MUNLOCK at each other would
// nest a frame per handover until the stack overflowed.
func (p *loopPass) deliverHere() {
	if !p.unlocking || p.delivering {
		return
	}
	p.delivering = true
	for p.unlocking {
		p.unlocking = false
		p.deliverGrants(func() { p.grants.here = false })
	}
	p.delivering = false
}

// deliverGrants takes the queued outcomes, with reset run under the
// grants' lock, and delivers them.
func (p *loopPass) deliverGrants(reset func()) {
	p.grants.Lock()
	q := p.grants.q
	p.grants.q, p.grants.spare = p.grants.spare[:0], nil
	reset()
	p.grants.Unlock()
	for i, g := range q {
		q[i] = grantOutcome{}
		p.s.deliver(g)
	}
	p.grants.Lock()
	p.grants.spare = q[:0]
	p.grants.Unlock()
}

// deliver answers a parked MLOCK with its outcome, on its loop: written at
// once when nothing of the connection is queued before it, else queued
// behind those replies. A connection closed meanwhile withdrew its wait
// (OnClose: M1), so its outcome is dropped.
func (s *Server) deliver(g grantOutcome) {
	c := g.c
	pk := c.park
	if c.gone || pk == nil || pk.delivered {
		return
	}
	gc := c.conn() // set: c's loop opened it before c could park
	if g.err == nil && (c.queued > 1 || gc.OutboundBuffered() > 0) && !s.draining.Load() {
		// M1: the client has not read what it was sent (gnet holds what
		// the socket would not take), or earlier replies are still queued
		// (waiting for their fsync). Written behind them, the grant would
		// count as delivered, and a client that went away without
		// reading would hold the mutex for its whole duration; kept
		// here, the grant is passed on when the client goes (OnClose
		// cancels the wait, which hands a granted mutex to the next
		// waiter). It is written once the earlier replies are (written
		// calls deliverHeldBack) and gnet's buffer is empty; then, a hold
		// that ran out meanwhile is answered as a timeout (found by
		// review: queued behind an fsync, a grant went out unchecked, and
		// stale when the fsync outlasted the hold).
		pk.heldBack, pk.h = true, g.h
		if c.queued <= 1 {
			s.later(c, gc, func() gnet.Action { s.deliverHeldBack(c, pk); return gnet.None })
		}
		return
	}
	pk.heldBack = false
	q := repliesPool.Get().(*replies)
	q.c, q.resume = c, true
	q.out = appendMLockReply(q.out, g.h, g.err)
	q.ops = append(q.ops, pk.op)
	q.marks = append(q.marks, len(q.out))
	q.pend = append(q.pend, core.Pending{})
	// NB: the park stays until written clears it: a write that fails
	// closes c at once, and OnClose must still pass a grant on (M1).
	pk.delivered = true
	c.blocked.Store(false)
	if c.queued > 1 {
		s.rp.push(q) // behind c's earlier replies
		return
	}
	gc.Write(s.settle(c, q))
	s.written(q, gc)
}

// deliverHeldBack delivers pk's held-back grant, on c's loop, unless c
// went (OnClose passed the mutex on) or its output is still not read. A
// grant whose hold ran out meanwhile is answered as a wait that timed out:
// written, the handle would make two clients believe they hold the mutex
// (found by review). During a shutdown it is written at once, so that
// the connection can close.
func (s *Server) deliverHeldBack(c *client, pk *parked) {
	if c.gone || c.park != pk || !pk.heldBack {
		return
	}
	if !pk.wait.Holds() {
		s.deliver(grantOutcome{c: c, err: core.ErrTimeout})
		return
	}
	s.deliver(grantOutcome{c: c, h: pk.h})
}

// startOffLoop runs args in a goroutine of its own; c reads no further
// command until its reply is written.
func (s *Server) startOffLoop(c *client, args [][]byte) {
	own := make([][]byte, len(args)) // args point into the loop's buffer
	for i, a := range args {
		own[i] = append([]byte(nil), a...)
	}
	c.offloop = true
	c.queued++
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		q := repliesPool.Get().(*replies)
		q.c, q.resume = c, true
		now := time.Now()
		q.ops = append(q.ops, s.startOp(own, now))
		q.out = s.exec(c, own, q.out, now)
		q.marks = append(q.marks, len(q.out))
		q.pend = append(q.pend, c.pl.Take())
		c.pl.Flush()
		s.rp.push(q)
	}()
}

// loopPass commits what one event loop's pass over its ready connections
// wrote, and writes the replies that waited for it, as Redis does at the end
// of each pass of its event loop. It runs as a task of the loop, which
// gnet runs after the connections that were ready when it was queued: the
// pass that queued it, and the connections that became ready meanwhile.
// The loop waits for the fsync (core.Store.Sync) — during it no input is
// read, but the clients whose replies it releases could not have sent
// more anyway, and everything that arrived meanwhile shares the next
// commit.
type loopPass struct {
	s         *Server
	el        gnet.EventLoop
	waiting   []*client // connections with replies awaiting the commit
	spare     []*client
	scheduled bool

	// grants are parked MLOCKs' outcomes for the loop to deliver (grant).
	grants struct {
		sync.Mutex
		q, spare  []grantOutcome
		scheduled bool // a deliverGrants task is queued
		here      bool // the running serveInput delivers them (unlockingHere)
	}
	unlocking  bool // grants.here is set (loop only)
	delivering bool // deliverHere runs (loop only)
}

// passOf returns el's loopPass.
func (s *Server) passOf(el gnet.EventLoop) *loopPass {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.passes == nil {
		s.mu.passes = make(map[gnet.EventLoop]*loopPass)
	}
	p := s.mu.passes[el]
	if p == nil {
		p = &loopPass{s: s, el: el}
		s.mu.passes[el] = p
	}
	return p
}

// Run commits and writes the waiting replies. It runs on the loop.
func (p *loopPass) Run(context.Context) error {
	p.scheduled = false
	p.s.store.Sync()
	w := p.waiting
	p.waiting, p.spare = p.spare[:0], nil
	for i, c := range w {
		w[i] = nil
		c.awaiting = false
		if c.gone {
			continue
		}
		if gc := c.conn(); gc != nil {
			// All ready now, or behind queued replies.
			if p.s.release(c, gc); c.closing && !c.gone {
				if p.s.closeWhenIdle(c, gc) == gnet.Close {
					gc.Close()
				}
			}
		}
	}
	p.spare = w[:0]
	// Only now, with the replies written: the clients read them, and send
	// their next commands, while the batch goes into Pebble.
	p.s.store.ApplyLater()
	return nil
}

// replier is the queue of replies waiting for their fsync.
type replier struct {
	mu   sync.Mutex
	q    []*replies
	wake chan struct{} // capacity 1
}

func (rp *replier) push(q *replies) {
	rp.mu.Lock()
	rp.q = append(rp.q, q)
	rp.mu.Unlock()
	select {
	case rp.wake <- struct{}{}:
	default:
	}
}

// replyLoop waits for each queued run of replies in turn and hands it to
// its connection's loop. Queue order is kept per connection, because a
// connection queues a run only behind its own earlier ones.
func (s *Server) replyLoop() {
	var batch []*replies
	for {
		select {
		case <-s.rp.wake:
		case <-s.ctx.Done():
			return
		}
		s.rp.mu.Lock()
		batch = append(batch[:0], s.rp.q...)
		clear(s.rp.q)
		s.rp.q = s.rp.q[:0]
		s.rp.mu.Unlock()
		for i, q := range batch {
			batch[i] = nil
			b := s.settle(q.c, q)
			gc := q.c.conn()
			if gc == nil {
				continue
			}
			// The callback runs on the loop after the write; it gets a
			// nil conn when the connection closed meanwhile.
			if err := gc.AsyncWrite(b, func(gc gnet.Conn, err error) error {
				if err != nil {
					gc = nil // closed meanwhile
				}
				s.written(q, gc)
				return nil
			}); err != nil {
				continue // the loops are stopping
			}
		}
	}
}
