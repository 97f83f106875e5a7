// Package resp serves concurrencydb over the Redis protocol (RESP2: event
// loops from github.com/panjf2000/gnet, parsing and reply encoding from
// github.com/tidwall/redcon; see loop.go for why): the standard Redis
// string, counter, TTL and keyspace commands plus the extension commands
// (SEQ.*, CTR.*, KV.*, LOCK.*, MLOCK). It parses arguments, calls one
// core.Store method and encodes the reply; every rule both protocols obey
// lives in core.
//
// Invariants (tests cite these IDs):
//
//   - R1: no reply leaves before every write it reflects is fsynced (core's
//     D1). Every command read from a connection in one go is submitted as a
//     whole and waited for once (core.Pipeline); its replies are written in
//     order, by the event loop, and never before their writes are synced.
//     A connection's replies leave in the order of its commands.
//   - R2: dispatch is driven by the command table (core.Commands): arity,
//     auth and limits are checked before a handler runs, so a refused
//     command changes nothing. An unknown command answers Redis's own
//     "ERR unknown command" text, never a silent success.
//   - R3: a key `{acc}:rest` (acc non-empty, without `}`) addresses account
//     acc, id rest; every other key the connection's current account
//     (SELECT). Mutex names follow the same rule. A command never spans two
//     accounts: keys of different accounts in one command answer CROSSSLOT.
//   - R4: a connection has its own context, cancelled when it closes or the
//     server closes; a client that disconnects while blocked in MLOCK is
//     noticed at once and leaves the queue (core's M1); one whose grant was
//     not yet written passes the mutex on, and a grant is not written
//     behind replies the client has not read (gnet still holds them): it
//     waits until they are, so that a client that leaves without reading
//     passes the mutex on too. A blocked MLOCK parks its
//     connection instead of blocking the event loop, so it never holds up
//     another connection. (A command that walks a keyspace runs off the
//     loop, in a goroutine; KEYS and FLUSHALL hold core's apply lock while
//     they walk, so — like KEYS in Redis — they delay every command for
//     that time; SCAN, RANDOMKEY and DBSIZE hold it only briefly.)
//   - R5: core errors map to RESP error prefixes in one ordered table
//     (errors.go); every core sentinel is mapped.
//   - R6: framing is bounded before redcon parses it (framing.go): a bulk
//     argument, a command's argument count and size, and an inline line
//     have limits (Redis's much smaller ones for a connection that has not
//     authenticated, when auth is on); a frame beyond them answers "ERR
//     Protocol error" and the connection closes, after the commands before
//     it were answered. Within
//     them, exec's max_args and max_value_bytes checks answer a clear error
//     and the connection keeps working.
//   - R7: a connection with about 1 MiB of replies unread or unwritten is
//     not served until they drain, then served again in full; input that
//     waits meanwhile (or behind a blocked command) is bounded by
//     maxBacklog (16 MiB, or two arguments), beyond which the connection is
//     closed with an error after its earlier replies. So a client that
//     pipelines commands and never reads its replies cannot grow the
//     server's memory, and holds up only itself. A connection the server
//     closes (QUIT, an error) gets its written replies first.
//   - R8: Shutdown (shutdown.go) stops accepting, lets every command
//     already running finish and its reply be written, then closes each
//     connection; commands not yet run — read after Shutdown (or Drain,
//     which the binary calls before it stops the mutex waiters) began, or
//     waiting behind a blocked MLOCK or a throttled connection's replies —
//     get one error reply ("server is shutting down") for all of them
//     before the connection closes, never silence. NB: one, not one each:
//     a closing connection keeps none of its input (R6), so the commands
//     in it are not counted; a client reads the error, then EOF.
//     Label values reported to Config.Observe come from the command table
//     or a reply's error prefix, never from client text (metrics X1).
//   - R9: a transaction (MULTI … EXEC, multi.go) runs whole or not at all
//     as Redis's does: a command refused while queued makes EXEC run
//     nothing; EXEC runs the queue inside core.Store.Atomically (core's
//     A1, A2), on the event loop, and its reply is held like any other
//     until its writes are synced (R1). Only commands that take the apply
//     lock as a key command does may be queued (allowedInTx); the others
//     would wait for the lock EXEC holds.
package resp
