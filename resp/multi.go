package resp

import (
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
// by queuing, nor by reading a large value many times in one EXEC. Unlike
// Redis, a container command's subcommand (CLIENT GETNAME x, CONFIG GET)
// is checked when EXEC runs it, not when it is queued: its error comes in
// EXEC's array.

// txState is a connection's transaction while it is queued.
type txState struct {
	cmds    [][][]byte // queued commands, copied out of the read buffer
	bytes   int        // their size, with per-argument overhead
	aborted bool       // a command was refused while queuing: EXECABORT
}

// maxTxBytes bounds a queued transaction's memory: its arguments, their
// slice headers and each command's slot (txCost).
const maxTxBytes = 16 << 20

// maxExecReply bounds the reply EXEC builds: once it passes this, the
// commands left are not run and each answers an error, so a transaction
// of many reads of large values cannot build a reply of any size (R7
// bounds replies between commands; EXEC's are one command's).
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

// queue answers a command sent inside MULTI.
func (s *Server) queue(c *client, cmd *command, args [][]byte, out []byte) []byte {
	if !allowedInTx(cmd) {
		c.tx.aborted = true
		return redcon.AppendError(out, "ERR Command not allowed inside a transaction")
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
	// NB: args point into the loop's read buffer.
	own, buf := make([][]byte, len(args)), make([]byte, 0, size)
	for i, a := range args {
		buf = append(buf, a...)
		own[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	c.tx.cmds = append(c.tx.cmds, own)
	c.tx.bytes += n
	s.totalCmds.Add(-1) // counted when EXEC runs it, as Redis counts it
	return redcon.AppendString(out, "QUEUED")
}

func cmdMulti(x *call) {
	if x.c.tx != nil {
		x.errorText("ERR MULTI calls can not be nested")
		return
	}
	x.c.tx = &txState{}
	x.ok()
}

func cmdDiscard(x *call) {
	if x.c.tx == nil {
		x.errorText("ERR DISCARD without MULTI")
		return
	}
	x.c.tx = nil
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
	// EXEC forgets the watched keys whatever happens. NB: taken off c
	// before the transaction runs: an UNWATCH queued in it then has none
	// to drop (as in Redis, which unwatches before running the queue),
	// and Store.Unwatch, which takes the apply lock, runs only after
	// Atomically released it.
	ws := c.watches
	c.watches, c.watching = nil, nil
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
			if len(out)-start > maxExecReply {
				out = redcon.AppendError(out, "ERR not run: EXEC's reply passed 16 MiB before this command")
				continue
			}
			// NB: exec reuses c.x, which is x: out is kept aside.
			out = s.exec(c, args, out, now)
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
	type key struct{ acc, id string }
	keys := make([]key, 0, len(x.args)-1)
	for i := 1; i < len(x.args); i++ { // all checked before any is watched
		acc, id, ok := x.key(i)
		if !ok {
			return
		}
		keys = append(keys, key{acc, id})
	}
	for _, kk := range keys {
		acc, id := kk.acc, kk.id
		k := acc + "\x00" + id
		if c.watching[k] {
			continue // Redis too watches a key once
		}
		var err error
		if c.watches, err = x.s.store.Watch(x.ctx(), acc, []string{id}, c.watches); err != nil {
			x.err(err)
			return
		}
		if c.watching == nil {
			c.watching = map[string]bool{}
		}
		c.watching[k] = true
	}
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
}
