// Package persist is concurrencydb's storage layer: the on-disk key
// encoding, record encoding, synced batch commits and recovery, on top of
// Pebble. It knows nothing of commands; package core decides what to write.
//
// Invariants:
//
//   - P1: every key prefix is declared in keys.go with a fixed byte that is
//     never reused for anything else (golden encodings in testdata/).
//   - P2: Commit with sync=true returns only after the batch is in the
//     write-ahead log and the log is fdatasynced; a nil error means the
//     batch survives a crash. The log is this package's own (wal.go, with
//     its invariants W1–W4), not Pebble's, which is disabled: the commit's
//     fdatasync runs in the committing goroutine instead of Pebble's log
//     writer goroutine, measured to cost less than half the latency.
//     Commit is Log, which P2 holds for, then Apply, which makes the batch
//     visible to reads; the caller may answer in between (core's C3 says
//     what that takes).
//   - P3: a batch is applied atomically: it is one log record under one
//     CRC, replayed whole or not at all, and Pebble applies a batch
//     atomically; so the revision counter written in a batch (core's D2)
//     always matches its effects after a crash. Open syncs the live log
//     files before replaying them: after a kill -9 the page cache can
//     hold a record whose fdatasync never returned, and its replayed
//     effects must not reach Pebble's tables unless the record is on disk
//     (a power loss during that recovery would else leave the batch half
//     undone by the next replay).
//   - P4: the format-version key is written when a data directory is created
//     and checked on every open; an unknown version refuses to open.
//   - P5: a data directory is used by one process at a time (Pebble's LOCK
//     file); a second Open fails with ErrLocked.
//   - P6: once Pebble reports a background error (a flush, compaction or
//     table read that failed: a disk full for new files, which the
//     pre-allocated log does not notice, or a vanished directory), every
//     later commit fails before it is logged (core's D6 then refuses
//     writes), and Close no longer waits for a flush: without it, the
//     memtables fill and Apply blocks in Pebble's write throttle for good,
//     with the committing event loop inside it. Everything committed
//     before is in the log, which the next open replays. Writes come back
//     only with a restart, also after a transient error.
//   - P7: a commit already inside Pebble's write throttle when the first
//     failure comes (a burst that had outrun the flushes) is past P6's
//     check and waits for a flush that fails as long as the failure lasts.
//     The same holds for the log's rotation (its AsyncFlush) and Close's
//     final flush. Stalled reports such a call once it has waited longer
//     than asked, counted from the failure (the binary then exits, to be
//     restarted); a throttle that waits for a slow but working flush is
//     not reported. Open's replay of the log can wait the same way (a disk
//     with room for a MANIFEST but not for a table): it returns an error
//     10 s after the failure instead, leaving the log as it was; so does
//     the first open of a new directory, whose format key is flushed.
//     Close after a failure returns it (the log is what the next open
//     replays), and syncs the log first unless the log itself failed. Pebble's
//     stop threshold is raised so that one failed flush does not reach it
//     (db.go).
//   - P8: Open refuses, before writing anything, a directory that holds
//     files but no store (ErrNotStore): a data_dir pointed at the wrong
//     place would otherwise get the store's files written among someone
//     else's. A store is recognised by Pebble's manifest; without one,
//     only LOCK (created before it) and lost+found count as empty, so a
//     store that lost its manifest is refused, not opened as a new one;
//     other files beside a store do not matter.
package persist
