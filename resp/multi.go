package resp

import (
	"strings"
	"time"

	"github.com/tidwall/redcon"

	"github.com/concurrencydb/concurrencydb/core"
)

// Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH, as Redis 7.
//
// After MULTI a connection's commands are checked (name, arity, argument
// limits) and queued, answered QUEUED; one refused while queuing (an
// unknown command, a wrong arity, a command not allowed in a transaction)
// answers its error and marks the transaction, which EXEC then discards
// (EXECABORT). EXEC runs the queue inside core.Store.Atomically: no other
// command of any client runs between its commands (core's A1), and its
// reply, the array of their replies, leaves after the fsync of their
// writes, as a pipeline's replies do (D1). A command that fails inside it
// answers its error in the array and the others still run (no rollback, as
// Redis). WATCH makes the next EXEC answer a null array, running nothing,
// when a watched key was written, deleted or expired meanwhile (A2).
//
// Not allowed inside a transaction (refused, the transaction marked): the
// commands that walk the keyspace (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHDB,
// FLUSHALL, INFO), which would wait for the apply lock the transaction
// holds (Redis runs them), and the mutex commands, whose state the apply
// lock does not guard. The queue runs at one time (the clock is read once,
// as Redis 7 freezes it during EXEC).
//
// The queue is bounded (maxTxBytes), and so is EXEC's reply
// (maxExecReply): a client cannot grow the server's memory without bound
// by queuing, nor by reading a large value many times in one EXEC. The
// keys of a queued command are checked as Redis checks them while
// queuing (NOPERM, and CROSSSLOT for R3), so such a command aborts the
// transaction rather than failing in the middle of it, and so are a
// container command's subcommand and its argument count (CLIENT GETNAME
// x, CONFIG GET). Once a transaction is aborted, the commands that pass
// these checks are answered QUEUED but neither kept nor counted, as
// Redis's queueMultiCommand does. Unlike Redis, a transaction whose
// watched key has changed goes on queuing (and CLIENT LIST does not show
// it with flag d): only EXEC looks at the watched keys.

// txState is a connection's transaction while it is queued.
type txState struct {
	cmds    [][][]byte // queued commands, copied out of the read buffer
	bytes   int        // their size, with per-argument overhead
	aborted bool       // a command was refused while queuing: EXECABORT
	// accountLater: a queued command may change the connection's account
	// or token (SELECT, AUTH, HELLO): later keys are checked by EXEC.
	accountLater bool
}

// maxTxBytes bounds a queued transaction's memory: its arguments, their
// slice headers and each command's slot (txCost).
const maxTxBytes = 16 << 20

// maxExecReply bounds the reply EXEC keeps: every queued command runs,
// but a reply that would take EXEC's past this is replaced by an error
// saying the command ran, so many reads of a large value in one
// transaction cannot build a reply of any size (R7 bounds replies
// between commands; EXEC's are one command's). One command's reply is
// still built whole before it is dropped (an MGET of many large values
// is unbounded, inside a transaction or not).
const maxExecReply = 16 << 20

// txControl: the commands that run at once inside MULTI instead of being
// queued, as in Redis.
func txControl(cmd *command) bool {
	switch cmd.spec.Name {
	case "MULTI", "EXEC", "DISCARD", "WATCH", "QUIT":
		return true
	}
	return false
}

// allowedInTx: a queued command must take the apply lock only as a
// command on keys does, and change nothing the apply lock does not guard
// (core.Store.Atomically's rule): keyspace walks and the mutex commands,
// whose state (and its lease timers, and other clients' MLOCKs) has a lock
// of its own, are refused.
func allowedInTx(cmd *command) bool {
	return cmd.spec.Flags&(core.CmdKeyspace|core.CmdBlocking) == 0 && cmd.spec.Group != "mutex"
}

// abortTx marks c's transaction, if any, for EXECABORT.
func (c *client) abortTx() {
	if c.tx != nil {
		c.tx.aborted = true
	}
}

// refused answers msg (an error) for a command refused before it ran. In
// a transaction it aborts it; a refused EXEC discards the transaction, if
// any, and the watched keys at once, as Redis's execCommandAbort does.
func (s *Server) refused(c *client, cmd *command, msg string, out []byte) []byte {
	if cmd.spec.Name == "EXEC" { // in a transaction or not, as Redis
		c.setTx(nil)
		c.unwatch(s)
		return redcon.AppendError(out, "EXECABORT Transaction discarded because of: "+strings.TrimPrefix(msg, "ERR "))
	}
	c.abortTx()
	return redcon.AppendError(out, msg)
}

// queue answers a command sent inside MULTI.
func (s *Server) queue(c *client, cmd *command, args [][]byte, out []byte) []byte {
	if !allowedInTx(cmd) {
		c.tx.aborted = true
		return redcon.AppendError(out, "ERR Command not allowed inside a transaction")
	}
	if msg := subcommandErr(cmd.spec.Name, args); msg != "" {
		c.tx.aborted = true // Redis looks sub-commands up while queuing
		return redcon.AppendError(out, msg)
	}
	// The key checks Redis makes while queuing (ACL: NOPERM; one account,
	// R3: CROSSSLOT), so that such a command aborts the transaction
	// instead of failing inside a half-run EXEC.
	// Not after a queued SELECT, AUTH or HELLO: the keys resolve in the
	// account current when EXEC runs them, unknown now. Nor when the
	// arguments do not pair up (MSET a b c): the handler's own error
	// comes first.
	switch cmd.spec.Name {
	case "SELECT", "AUTH", "HELLO":
		c.tx.accountLater = true
	}
	step := max(cmd.spec.Step, 1)
	if idx := cmd.keyPositions(len(args)); len(idx) > 0 && !c.tx.accountLater &&
		(cmd.spec.LastKey != -1 || step == 1 || (len(args)-cmd.spec.FirstKey)%step == 0) {
		x := call{s: s, c: c, args: args, name: cmd.lname}
		if _, _, ok := x.keysOf(idx); !ok {
			c.tx.aborted = true
			return append(out, x.out...)
		}
	}
	size := 0
	for _, a := range args {
		size += len(a)
	}
	// The copy below: one buffer, the slice headers, the command's slot
	// in cmds, and an allocation header's worth of rounding for each.
	n := size + 24*len(args) + 24 + 2*16
	if c.tx.bytes+n > maxTxBytes {
		c.tx.aborted = true
		return redcon.AppendError(out, "ERR transaction too large: its queued commands would pass 16 MiB")
	}
	if c.tx.aborted { // as Redis's queueMultiCommand: not kept, not counted
		s.totalCmds.Add(-1) // EXEC will not run it
		return redcon.AppendString(out, "QUEUED")
	}
	// NB: args point into the loop's read buffer.
	own, buf := make([][]byte, len(args)), make([]byte, 0, size)
	for i, a := range args {
		buf = append(buf, a...)
		own[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	c.tx.cmds = append(c.tx.cmds, own)
	c.tx.bytes += n
	c.txShown.Add(1)
	s.totalCmds.Add(-1) // counted when EXEC runs it, as Redis counts it
	return redcon.AppendString(out, "QUEUED")
}

func cmdMulti(x *call) {
	if x.c.tx != nil {
		x.errorText("ERR MULTI calls can not be nested")
		return
	}
	x.c.setTx(&txState{})
	x.ok()
}

func cmdDiscard(x *call) {
	if x.c.tx == nil {
		x.errorText("ERR DISCARD without MULTI")
		return
	}
	x.c.setTx(nil)
	x.c.unwatch(x.s)
	x.ok()
}

func cmdExec(x *call) {
	s, c := x.s, x.c
	tx := c.tx
	if tx == nil {
		x.errorText("ERR EXEC without MULTI")
		return
	}
	c.tx = nil
	defer c.setTx(nil) // CLIENT LIST shows the transaction while it runs, as Redis
	// EXEC forgets the watched keys whatever happens. NB: taken off c
	// before the transaction runs: an UNWATCH queued in it then has none
	// to drop (as in Redis, which unwatches before running the queue),
	// and Store.Unwatch, which takes the apply lock, runs only after
	// Atomically released it.
	ws := c.watches
	c.watches, c.watching = nil, nil
	c.watchShown.Store(0)
	defer s.store.Unwatch(ws)
	if tx.aborted {
		x.errorText("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	ctx, out := x.ctx(), x.out
	err := s.store.Atomically(ctx, func() {
		if len(ws) > 0 {
			changed, err := s.store.Changed(ctx, ws)
			if err != nil {
				out = appendErr(out, "exec", err)
				return
			}
			if changed {
				out = append(out, "*-1\r\n"...)
				return
			}
		}
		out = redcon.AppendArray(out, len(tx.cmds))
		start, now := len(out), time.Now()
		for _, args := range tx.cmds {
			// NB: exec reuses c.x, which is x: out is kept aside.
			mark := len(out)
			out = s.exec(c, args, out, now)
			if len(out)-start > maxExecReply {
				// Every command runs (a transaction is never half-run);
				// a reply that does not fit is replaced.
				out = redcon.AppendError(out[:mark], "ERR reply dropped: EXEC's reply passed 16 MiB; the command ran")
			}
		}
	})
	if err != nil {
		out = appendErr(out, "exec", err)
	}
	c.mu.Lock()
	c.mu.lastCmd = "exec" // not its last queued command's (CLIENT LIST cmd=)
	c.mu.Unlock()
	c.x.out = out
}

func cmdWatch(x *call) {
	if x.c.tx != nil {
		x.errorText("ERR WATCH inside MULTI is not allowed")
		return
	}
	c := x.c
	// One account (R3), every key checked before any is watched: a WATCH
	// that answers an error watches nothing.
	acc, ids, ok := x.keysOf(x.span(1, 1))
	if !ok {
		return
	}
	fresh := ids[:0]
	seen := map[string]bool{}
	for _, id := range ids {
		if k := acc + "\x00" + id; !c.watching[k] && !seen[k] {
			fresh = append(fresh, id) // Redis too watches a key once
			seen[k] = true
		}
	}
	var err error
	if c.watches, err = x.s.store.Watch(x.ctx(), acc, fresh, c.watches); err != nil {
		x.err(err)
		return
	}
	if c.watching == nil {
		c.watching = seen
	} else {
		for k := range seen {
			c.watching[k] = true
		}
	}
	c.watchShown.Store(int64(len(c.watching)))
	x.ok()
}

func cmdUnwatch(x *call) {
	x.c.unwatch(x.s)
	x.ok()
}

// unwatch drops c's watched keys (EXEC, DISCARD, UNWATCH, its end).
func (c *client) unwatch(s *Server) {
	s.store.Unwatch(c.watches)
	c.watches, c.watching = nil, nil
	c.watchShown.Store(0)
}

// setTx starts (tx) or ends (nil) c's transaction.
func (c *client) setTx(tx *txState) {
	c.tx = tx
	c.txShown.Store(0)
	if tx != nil {
		c.txShown.Store(1)
	}
}
