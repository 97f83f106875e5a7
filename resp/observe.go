package resp

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
)

// Observability of the RESP front-end: per-command counters for INFO
// commandstats and errorstats, the Config.Observe hook (Prometheus metrics,
// wired in cmd/concurrencydb) and the slow-operation log.

// op is one command of the pipeline being run, from its start to the
// release of its reply.
type op struct {
	cmd  *command // nil for an unknown command
	skip bool     // an empty command: no reply, nothing to count
	at   time.Time
	// The head of the command's first key, for the slow log: a copy,
	// because the reply may be released after the input buffer was
	// reused. Only a key: no other argument is logged (AUTH's is a token).
	key  [64]byte
	klen uint8
}

// cmdStat is one command's INFO commandstats line.
type cmdStat struct {
	calls, usec, failed atomic.Int64
}

// opStats are the server's request counters.
type opStats struct {
	cmds   map[string]*cmdStat // by lower-case name; built once, read-only
	errors atomic.Int64        // error replies (total_error_replies)
	mu     struct {
		sync.Mutex
		byPrefix map[string]int64 // errorstat_<PREFIX>
	}
}

func newOpStats(cmds map[string]*command) *opStats {
	st := &opStats{cmds: make(map[string]*cmdStat, len(cmds))}
	for name := range cmds {
		st.cmds[name] = &cmdStat{}
	}
	st.mu.byPrefix = make(map[string]int64)
	return st
}

// startOp notes the start of the command args at now.
func (s *Server) startOp(args [][]byte, now time.Time) op {
	o := op{at: now, skip: len(args) == 0}
	if len(args) > 0 {
		o.cmd = s.lookup(args[0])
	}
	if o.cmd != nil {
		if i := o.cmd.spec.FirstKey; i > 0 && i < len(args) {
			o.klen = uint8(copy(o.key[:], args[i]))
		}
	}
	return o
}

// endOp counts o, whose reply is reply, and logs it when it was slow.
// Blocking commands (MLOCK) are left out of the slow log: their time is
// the wait for the mutex, which is what the client asked for.
func (s *Server) endOp(c *client, o op, reply []byte, end time.Time) {
	if o.skip {
		return
	}
	d := end.Sub(o.at)
	status := replyStatus(reply)
	name := "unknown" // never the client's text: metric labels stay bounded (X1)
	if o.cmd != nil {
		name = o.cmd.lname
		if cs := s.opStats.cmds[name]; cs != nil {
			cs.calls.Add(1)
			cs.usec.Add(d.Microseconds())
			if status != "ok" {
				cs.failed.Add(1)
			}
		}
	}
	if status != "ok" {
		s.opStats.errors.Add(1)
		s.opStats.mu.Lock()
		s.opStats.mu.byPrefix[status]++
		s.opStats.mu.Unlock()
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(name, status, d)
	}
	if s.cfg.SlowLog > 0 && d >= s.cfg.SlowLog && (o.cmd == nil || o.cmd.spec.Flags&core.CmdBlocking == 0) {
		slog.Warn("slow operation", "protocol", "resp", "command", name,
			"key", string(o.key[:o.klen]), "status", status,
			"duration_ms", float64(d.Microseconds())/1000, "client", c.addr)
	}
}

// replyStatus is "ok", or the prefix of an error reply ("ERR",
// "WRONGTYPE", …). A prefix that is not a short upper-case word counts as
// "ERR", so the set of statuses stays bounded.
func replyStatus(reply []byte) string {
	if len(reply) == 0 || reply[0] != '-' {
		return "ok"
	}
	p := reply[1:]
	for i, ch := range p {
		if ch == ' ' || ch == '\r' {
			p = p[:i]
			break
		}
	}
	if len(p) == 0 || len(p) > 24 {
		return "ERR"
	}
	for _, ch := range p {
		if ch < 'A' || ch > 'Z' {
			return "ERR"
		}
	}
	return string(p)
}

// RejectedConns is how many connections were refused because MaxConns
// were open (INFO's rejected_connections).
func (s *Server) RejectedConns() int64 { return s.rejectConns.Load() }

// Clients is the number of open RESP connections.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.clients)
}

// commandStats writes INFO's commandstats section: one line per command
// called at least once, in name order.
func (s *Server) commandStats(b *strings.Builder) {
	names := make([]string, 0, len(s.opStats.cmds))
	for name, cs := range s.opStats.cmds {
		if cs.calls.Load() > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		cs := s.opStats.cmds[name]
		calls, usec := cs.calls.Load(), cs.usec.Load()
		fmt.Fprintf(b, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=0,failed_calls=%d\r\n",
			name, calls, usec, float64(usec)/float64(calls), cs.failed.Load())
	}
}

// errorStats writes INFO's errorstats section.
func (s *Server) errorStats(b *strings.Builder) {
	s.opStats.mu.Lock()
	defer s.opStats.mu.Unlock()
	prefixes := make([]string, 0, len(s.opStats.mu.byPrefix))
	for p := range s.opStats.mu.byPrefix {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		fmt.Fprintf(b, "errorstat_%s:count=%d\r\n", p, s.opStats.mu.byPrefix[p])
	}
}
