// Package resp serves concurrencydb over the Redis protocol (RESP2, with
// github.com/tidwall/redcon): the standard Redis string, counter, TTL and
// keyspace commands plus the extension commands (SEQ.*, CTR.*, KV.*,
// LOCK.*, MLOCK). It parses arguments, calls one core.Store method and
// encodes the reply; every rule both protocols obey lives in core.
//
// Invariants (tests cite these IDs):
//
//   - R1: no reply leaves before every write it reflects is fsynced (core's
//     D1). A pipeline is submitted as a whole and waited for once
//     (core.Pipeline), then its replies are written in order in one flush.
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
//     noticed at once and leaves the queue (core's M1).
//   - R5: core errors map to RESP error prefixes in one ordered table
//     (errors.go); every core sentinel is mapped.
//   - R6: framing is bounded before redcon buffers it (framing.go): a bulk
//     argument, a command's argument count and size, and an inline line
//     have limits; a frame beyond them answers "ERR Protocol error" and the
//     connection closes, after the commands before it were answered. Within
//     them, exec's max_args and max_value_bytes checks answer a clear error
//     and the connection keeps working.
//   - R7: a connection holds at most about 1 MiB of replies (plus one
//     reply) before writing them, so a client that pipelines commands and
//     never reads its replies blocks only its own goroutine on the socket;
//     the server's memory stays bounded.
//   - R8: Shutdown (shutdown.go) stops accepting, lets every pipeline
//     already read run and flush its replies, then closes each connection;
//     a command arriving afterwards gets an error reply, never silence.
//     Label values reported to Config.Observe come from the command table
//     or a reply's error prefix, never from client text (metrics X1).
package resp
