// Package persist is concurrencydb's storage layer: the on-disk key
// encoding, record encoding, synced batch commits and recovery, on top of
// Pebble. It knows nothing of commands; package core decides what to write.
//
// Invariants:
//
//   - P1: every key prefix is declared in keys.go with a fixed byte that is
//     never reused for anything else (golden encodings in testdata/).
//   - P2: Commit with sync=true returns only after the batch is in the WAL and
//     the WAL is fsynced; a nil error means the batch survives a crash.
//   - P3: a batch is applied atomically: after a crash either all of its keys
//     are there or none (Pebble's WAL guarantees this), so the revision
//     counter written in a batch (core's D2) always matches its effects.
//   - P4: the format-version key is written when a data directory is created
//     and checked on every open; an unknown version refuses to open.
//   - P5: a data directory is used by one process at a time (Pebble's LOCK
//     file); a second Open fails with ErrLocked.
package persist
