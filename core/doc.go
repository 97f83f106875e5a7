// Package core holds the semantics of every concurrencydb command: the
// keyspace of each account, versions, TTLs, persistent locks, in-memory
// mutexes, and the apply loop with group commit that makes writes durable.
// Front-ends (resp, httpapi) parse, call one Store method, and encode.
//
// Invariants (tests cite these IDs):
//
//   - D1: a write is acknowledged (its Store method returns) only after the
//     batch holding it is synced; a read returns a value only after the
//     batch holding that value's write is synced. One mechanism serves both:
//     every call waits on the flight of the newest write it reflects. With
//     a Pipeline context (pipeline.go) the call returns at once and that
//     wait moves to Pending.Wait, which the front-end must pass before
//     replying.
//   - D2: the revision counter is written in the same batch as the writes
//     that used it, so after recovery it is ≥ every revision on disk.
//   - D3: sequences, versions (mod revisions), fencing tokens (create
//     revisions) and mutex handles never go backwards or repeat, also across
//     a crash (for handles, a durable epoch fills the high bits).
//   - D4: expiry and lock expiry are deletes that go through the apply loop
//     (they take a revision and a batch like any write). An expired key is
//     invisible from its deadline on, whether or not it is reclaimed yet.
//   - D5: per key, writes are ordered in memory under the apply lock, so
//     many writes to one key share one fsync; batches commit in order, one
//     at a time (commitMu), whether the committer goroutine commits them or
//     a front-end's event loop does (Store.Sync).
//   - D6: after a failed sync, or a failed apply of a synced batch to
//     Pebble (C3), the store is fail-stopped: no later write is
//     acknowledged, every write answers ErrUnavailable; durable data can
//     still be read.
//   - C1: the record cache (Store.mu.mem) holds committed records within
//     Config.CacheBytes (counted by entryCost; every write and every load
//     evicts when over it) plus the pending ones, which are never evicted
//     because they are the only copy until their batch syncs, and then
//     until Pebble has it (C3). While those alone fill the budget,
//     committed ones may add a tenth of it before the next look (after a
//     failed sync, for good). A record read from Pebble without the apply
//     lock is installed only when no write to it can have happened
//     meanwhile (loadLocked).
//   - C2: the record ring (ring.go) holds, for a key absent from the record
//     cache, nothing or the key's latest committed record: every write
//     goes through the cache, and every committed entry the cache evicts
//     is put into the ring (G1 makes it the key's answer from then on), so
//     a record read back from the ring is current (fromRingLocked). It is
//     only touched under the apply lock. The ring's own invariants, G1–G3
//     (a lookup returns a key's latest put or misses; a drop misses until
//     the next put; no Go pointers, fixed size), are stated in ring.go.
//   - C3: Pebble holds every synced write that is not in the record cache.
//     A synced batch reaches Pebble after its writers have heard of it
//     (Store.Applied: an event loop answers first); until then its
//     entries are not evicted, as pending ones (C1), and its keys are
//     merged into listings (pendingIn); reads of Pebble alone (INFO's key
//     count, the reaper's scan of the expiry index) call Applied first.
//   - A1, A2: a transaction (Atomically) runs its commands with nothing
//     of anyone else's between them; Changed sees every write, delete and
//     expiry of a watched key since Watch (stated in tx.go).
//   - M1: a mutex is granted to waiters first come, first served; a waiter
//     whose client goes (MutexLock's ctx ends, or MutexWait.Cancel) leaves
//     the queue, and one granted before that was noticed passes the mutex
//     on at once: it is never left held by a client that is gone before
//     its grant reached it (a grant written to the socket has).
//   - M2: a mutex is held by at most one handle; it is released by unlock,
//     by force-unlock, or when its duration passes, and the next waiter is
//     granted at once (no polling).
//   - T1: persisted TTLs are absolute deadlines (unix ms), never durations;
//     every command reads the clock once.
package core
