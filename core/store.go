package core

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/concurrencydb/concurrencydb/persist"
)

// Store is the keyspace of all accounts plus the mutex table. All methods
// are safe for concurrent use.
//
// Shape (see DESIGN.md, "Concurrency model"): a command runs under the apply
// lock (mu) against an in-memory overlay of records (mem), appends its
// effects to the open batch and takes that batch's flight; it then releases
// the lock and waits for the flight outside it. One committer goroutine swaps
// in a fresh batch and commits the old one with fsync; commands arriving
// during that fsync fill the next batch, so concurrent writers share one
// fsync (group commit) and a hot key costs no disk round-trip per write (D5).
type Store struct {
	db    *persist.DB
	cfg   Config
	clock Clock
	env   commitEnv

	kick  chan struct{} // a batch has writes; capacity 1
	full  chan struct{} // the open batch reached expect writes; capacity 1
	stopc chan struct{} // closed by Close
	wg    sync.WaitGroup

	// commitMu makes commits one at a time, the committer's and Sync's: a
	// commit that starts finds no batch in flight, so flights complete
	// in gen order (D5). NB: it is held across the commit's fsync, but only
	// commits wait for it; the apply lock (mu) is never held across one.
	commitMu sync.Mutex

	mu struct {
		sync.Mutex
		rev      uint64               // last revision handed out (D2, D3)
		mem      map[string]*entry    // pending writes, and a cache of committed records
		ring     *ring                // committed records evicted from mem (C2); nil when off or closed
		txn      txn                  // the running command's (runKeys)
		watch    map[string]*watchKey // keys a connection watches (tx.go); nil when none
		batch    *persist.Batch       // the open batch
		open     *flight              // the open batch's flight
		inflight *flight              // the batch being synced, or nil
		durable  uint64               // gen of the last synced batch
		failed   error                // set once a sync fails (D6)
		// The last synced batch until it is applied to Pebble (Applied),
		// or nil; applied is the gen of the last one Pebble has (C3);
		// applyErr is set once an apply fails, for good.
		applying *flight
		applied  uint64
		applyErr error
		// The keys of the batches that failed (D6), in their sync or their
		// apply: their entries stay in mem for good. spareKeys is an
		// applied batch's list, for reuse.
		failedKeys, spareKeys []string
		// Highest gen of any entry evicted so far (see loadLocked).
		evictedGen uint64
		// applied when an eviction pass found nothing to evict (all
		// pending, or not in Pebble yet): no pass can succeed before the
		// next apply, or before loads have added stuckBytes of evictable
		// entries (storeLocked).
		evictStuck uint64
		stuckBytes int
		// Eviction passes that walked mem (evictLocked), for tests.
		evictPasses int
		// Entries deleted from mem since it was last rebuilt (evictLocked).
		evicted int
		// Sum of entryCost over mem, pending entries included.
		memBytes int
		// Group-commit gathering (see gather).
		expect     int           // writes the last synced batch released
		lastCommit time.Duration // how long that batch's commit took
		gathering  bool          // the committer waits for expect writes

		closed bool
	}

	// reads is held (shared) by Pebble reads made without the apply lock;
	// Close waits for them, so none runs after the caller closes the DB.
	reads sync.RWMutex

	mutexes mutexTable
	stats   Stats
}

// Stats are counters for INFO and metrics; read them with atomic loads.
type Stats struct {
	Commits     atomic.Uint64 // synced batches
	Writes      atomic.Uint64 // writes committed (sum of batch sizes)
	CommitNanos atomic.Uint64 // total time in commit
	RingHits    atomic.Uint64 // records read back from the record ring (C2)
	DiskReads   atomic.Uint64 // records read from Pebble: in neither cache
}

// entry is one key's latest known state: committed (gen ≤ durable) or
// pending in the open or in-flight batch. Entries are immutable once
// published in mem; a write replaces the entry.
type entry struct {
	rec    persist.Record
	gen    uint64 // batch generation that wrote it; ≤ durable for cache entries
	exists bool
	// inline holds a value of up to len(inline) bytes, which rec.Value
	// then points into: the entry and its value are one allocation, and
	// reading the value touches no other cache line. (23 bytes: the
	// struct stays in the 96-byte size class.)
	inline [23]byte
}

// newEntry makes k's entry for rec. rec.Value must not be written to
// afterwards: it is copied in when small, else kept.
func newEntry(rec persist.Record, exists bool, gen uint64) *entry {
	e := &entry{rec: rec, exists: exists, gen: gen}
	if v := rec.Value; v != nil && len(v) <= len(e.inline) {
		e.rec.Value = e.inline[:copy(e.inline[:], v):len(v)]
	}
	return e
}

// inlineMax is the largest value newEntry copies into the entry.
const inlineMax = len(entry{}.inline)

// storedValue is v as put stores it. NB: the entry outlives the command,
// so it must not share the caller's buffer (RESP arguments point into a
// reused read buffer): a large value is cloned here, a small one is
// copied into its entry by newEntry. A nil value becomes an empty one, not
// none: Get reads a nil value as "no key", and Pebble gives an empty one
// back after a reload.
func storedValue(v []byte) []byte {
	switch {
	case len(v) > inlineMax:
		return bytes.Clone(v)
	case v == nil:
		return []byte{}
	}
	return v
}

// flight is one batch on its way to disk. done closes when it is synced
// (err nil) or failed.
type flight struct {
	gen    uint64
	n      int  // writes in the batch
	kicked bool // the committer was told about it (see Pipeline)
	done   chan struct{}
	err    error
	// Once synced: the batch, until it is applied to Pebble (claimed by
	// the goroutine that applies it), and applied, closed then.
	batch   *persist.Batch
	claimed bool
	applied chan struct{}
	// keys written in the batch (mem's own strings; repeats included):
	// its entries are the pending ones a listing must merge with Pebble's
	// (txn.pendingIn), found without walking the whole cache.
	keys []string
}

// commitEnv is what the committer needs from storage, as funcs so that tests
// can count or hold syncs (STYLE 17).
type commitEnv struct {
	newBatch func() *persist.Batch
	log      func(*persist.Batch) error // persist.DB.Log: write and sync
	apply    func(*persist.Batch) error // persist.DB.Apply
}

// Open starts a store over db. The caller closes db after Store.Close.
func Open(db *persist.DB, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	s := &Store{
		db:    db,
		cfg:   cfg,
		clock: cfg.Clock,
		kick:  make(chan struct{}, 1),
		full:  make(chan struct{}, 1),
		stopc: make(chan struct{}),
	}
	s.env = commitEnv{
		newBatch: db.NewBatch,
		log:      func(b *persist.Batch) error { return db.Log(b, !cfg.NoSync) },
		apply:    db.Apply,
	}
	// D3 for mutex handles: every process start takes a new durable epoch.
	if err := db.SetEpoch(db.Epoch + 1); err != nil {
		return nil, fmt.Errorf("store epoch: %w", err)
	}
	s.mutexes.init(s.clock, db.Epoch)
	// Not db.Revision: that is from when db opened, and a store closed and
	// opened again on the same db would reissue its revisions (D3).
	rev, err := db.LoadRevision()
	if err != nil {
		return nil, fmt.Errorf("load revision: %w", err)
	}
	s.mu.rev = rev
	s.mu.mem = make(map[string]*entry)
	if s.mu.ring, err = newRing(cfg.RingBytes); err != nil {
		return nil, err
	}
	s.mu.batch = s.env.newBatch()
	s.mu.open = newFlight(1)
	s.Go("committer", s.commitLoop)
	s.Go("reaper", s.reapLoop)
	return s, nil
}

func newFlight(gen uint64) *flight { return &flight{gen: gen, done: make(chan struct{})} }

// Go runs fn in a goroutine that Close waits for (STYLE 13).
func (s *Store) Go(name string, fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Close stops accepting writes, commits what is pending, fails blocked
// mutex waiters with ErrClosed and stops the store's goroutines.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	s.reads.Lock() // wait for unlocked Pebble reads in flight (readDB)
	s.reads.Unlock()
	close(s.stopc)
	s.wg.Wait()
	s.Applied() // the committer's drain left its last batch to apply
	s.mutexes.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.ring.free()
	s.mu.ring = nil
	return s.mu.failed
}

// StopWaiters answers every blocked mutex waiter with ErrClosed and refuses
// new mutex requests. Shutdown calls it first, so that front-ends can drain
// their in-flight requests without waiting out long mutex waits.
func (s *Store) StopWaiters() { s.mutexes.close() }

// Healthy reports nil when the store is open and writable.
func (s *Store) Healthy() error {
	if err := s.db.StorageErr(); err != nil {
		// P6: the next commit fails; say so before a write tries.
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writableLocked()
}

func (s *Store) writableLocked() error {
	if s.mu.closed {
		return ErrClosed
	}
	return s.mu.failed
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

// Stats returns the store's counters.
func (s *Store) Stats() *Stats { return &s.stats }

// DiskUsage is the size of the store's files in bytes (0 once closed).
func (s *Store) DiskUsage() uint64 {
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		return 0
	}
	return s.db.DiskUsage()
}

// txn is one command's view of the keyspace while it holds the apply lock.
// It tracks dep, the flight of the newest write the command reflects, which
// the command waits for before it returns (D1).
type txn struct {
	s   *Store
	now int64 // unix ms, read once per command (T1)
	dep *flight
	// deferKick: the caller (a Pipeline) starts the commit itself once it
	// has submitted all its commands, so they share one fsync.
	deferKick bool
}

// update runs fn under the apply lock as a write command and waits for
// everything it wrote or read to be durable.
func (s *Store) update(ctx context.Context, fn func(t *txn) error) error {
	return s.run(ctx, true, fn)
}

// view runs fn under the apply lock as a read command and waits for the
// writes it read to be durable.
func (s *Store) view(ctx context.Context, fn func(t *txn) error) error {
	return s.run(ctx, false, fn)
}

func (s *Store) run(ctx context.Context, write bool, fn func(t *txn) error) error {
	return s.runKeys(ctx, write, nil, fn)
}

// runKeys is run for a command on the keys ks: a record of ks that is not
// cached is read from Pebble with the apply lock released (loadLocked), so
// one command's disk reads do not stall others. fn may still get any key.
func (s *Store) runKeys(ctx context.Context, write bool, ks [][]byte, fn func(t *txn) error) error {
	p := pipelineFrom(ctx)
	held := p != nil && p.held == s // inside Atomically: the lock is ours already
	if !held {
		s.mu.Lock()
	}
	dep, err := s.runLocked(write, ks, p, held, fn)
	if !held {
		s.mu.Unlock()
	}
	if p != nil {
		p.add(s, dep) // the front-end waits before replying (D1; see Pipeline)
		return err
	}
	if werr := waitFor(ctx, dep); werr != nil {
		return werr
	}
	return err
}

// runLocked is runKeys under the apply lock; it returns the flight the
// command waits for. held: the lock is held for a whole transaction
// (Atomically), so records are read with it held too.
func (s *Store) runLocked(write bool, ks [][]byte, p *Pipeline, held bool, fn func(t *txn) error) (*flight, error) {
	var loadErr error
	for _, k := range ks {
		var err error
		if held {
			// NB: releasing the lock here would let another command run
			// in the middle of the transaction.
			_, err = (&txn{s: s}).get(k)
		} else {
			err = s.loadLocked(k)
		}
		if err != nil && loadErr == nil {
			loadErr = err
		}
	}
	if write {
		if err := s.writableLocked(); err != nil {
			return nil, err
		}
		// NB: before fn, not at the key: a write of several keys (DEL,
		// MSET, RENAME) that met an unreadable one part-way would have
		// changed the keys before it and still answered an error.
		if loadErr != nil {
			return nil, loadErr
		}
	} else if s.mu.closed {
		return nil, ErrClosed
	}
	// One txn per store, reused under the apply lock: fn takes it by
	// pointer, so a fresh one per command would be a heap allocation.
	t := &s.mu.txn
	var now int64
	if held {
		now = p.now // one time for a whole transaction (A1)
	} else {
		now = s.clock.Now().UnixMilli()
	}
	*t = txn{s: s, now: now, deferKick: p != nil}
	err := fn(t)
	dep := t.dep
	*t = txn{}
	if p == nil && dep == s.mu.open && !s.mu.open.kicked {
		// It reflects a Pipeline's write whose commit is not started yet:
		// start it rather than wait for the pipeline to.
		s.mu.open.kicked = true
		s.kickCommitter()
	}
	return dep, err
}

// waitFor waits until f (nil: nothing) is durable.
func waitFor(ctx context.Context, f *flight) error {
	if f == nil {
		return nil
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *txn) depend(f *flight) {
	if f != nil && (t.dep == nil || f.gen > t.dep.gen) {
		t.dep = f
	}
}

// get returns k's current entry (possibly not live: see live).
func (t *txn) get(k []byte) (*entry, error) {
	s := t.s
	e, ok := s.mu.mem[string(k)]
	if !ok {
		e, ok = s.fromRingLocked(k)
	}
	if !ok {
		s.stats.DiskReads.Add(1)
		rec, found, err := s.db.GetRecord(k)
		if err != nil {
			return nil, err
		}
		if s.mu.memBytes >= s.cfg.CacheBytes {
			s.evictLocked()
		}
		e = newEntry(rec, found, s.mu.applied)
		s.storeLocked(k, e)
	}
	if e.gen > s.mu.durable {
		switch {
		case e.gen == s.mu.open.gen:
			t.depend(s.mu.open)
		case s.mu.inflight != nil && e.gen == s.mu.inflight.gen:
			t.depend(s.mu.inflight)
		default:
			// Written by a batch whose sync failed (D6).
			return nil, s.mu.failed
		}
	}
	return e, nil
}

// loadLocked caches k's committed record, reading Pebble with the apply
// lock released; it returns with the lock held again. On a read error it
// caches nothing and returns the error: a write then refuses to run
// (runKeys); a read meets it again in get, under the lock.
//
// The record read is current unless k was written while the lock was
// released: such a write puts k in mem, where it stays while pending, so
// "k still absent from mem" proves no write happened — unless the write
// committed and was evicted again within the window. Such a write has a gen
// above the durable gen at the start of the read, so "nothing evicted with
// a gen above it" rules that out. Otherwise the read is simply not
// installed (get then reads under the lock).
func (s *Store) loadLocked(k []byte) error {
	if _, ok := s.mu.mem[string(k)]; ok || s.mu.closed {
		return nil
	}
	if _, ok := s.fromRingLocked(k); ok {
		return nil
	}
	start := s.mu.durable
	s.reads.RLock() // Close waits for this read before the DB can close
	s.mu.Unlock()
	s.stats.DiskReads.Add(1)
	rec, found, err := s.db.GetRecord(k)
	s.reads.RUnlock()
	s.mu.Lock()
	if _, ok := s.mu.mem[string(k)]; ok || err != nil || s.mu.evictedGen > start {
		return err
	}
	if s.mu.memBytes >= s.cfg.CacheBytes {
		s.evictLocked()
	}
	s.storeLocked(k, newEntry(rec, found, s.mu.applied))
	return nil
}

// fromRingLocked installs k's record from the record ring in mem, when
// the ring has it, and returns its entry. The record is current: k is not
// in mem, so its latest write, if any, was committed and evicted into the
// ring since (C2).
func (s *Store) fromRingLocked(k []byte) (*entry, bool) {
	rec, exists, ok := s.mu.ring.get(k)
	if !ok {
		return nil, false
	}
	s.stats.RingHits.Add(1)
	// NB: copied before evictLocked, which writes the ring rec.Value aliases.
	if len(rec.Value) > inlineMax {
		rec.Value = bytes.Clone(rec.Value)
	}
	e := newEntry(rec, exists, s.mu.applied)
	if s.mu.memBytes >= s.cfg.CacheBytes {
		s.evictLocked()
	}
	s.storeLocked(k, e)
	return e, true
}

// readDB runs fn, which reads Pebble without the apply lock, unless the
// store is closed (ErrClosed).
func (s *Store) readDB(fn func() error) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.reads.RLock()
	s.mu.Unlock()
	defer s.reads.RUnlock()
	return fn()
}

// live reports whether e holds a value at time now (D4: expired is absent).
func (e *entry) live(now int64) bool {
	return e.exists && (e.rec.ExpireAt == 0 || e.rec.ExpireAt > now)
}

func (t *txn) nextRev() uint64 {
	t.s.mu.rev++
	return t.s.mu.rev
}

// put writes rec at k, replacing old (the entry get returned), and keeps
// the expiry index in step. It assigns rec.Mod a new revision, and
// rec.Create too when it is 0 (a new key). It returns the stored record.
func (t *txn) put(k []byte, old *entry, rec persist.Record) persist.Record {
	s := t.s
	rec.Mod = t.nextRev()
	if rec.Create == 0 {
		rec.Create = rec.Mod
	}
	rec.Value = storedValue(rec.Value)
	b := s.mu.batch
	b.PutRecord(k, &rec)
	if s.mu.watch != nil {
		s.touchLocked(k) // A2
	}
	if old.exists && old.rec.ExpireAt != 0 && old.rec.ExpireAt != rec.ExpireAt {
		b.DeleteExpiry(old.rec.ExpireAt, k)
	}
	if rec.ExpireAt != 0 && !(old.exists && old.rec.ExpireAt == rec.ExpireAt) {
		b.SetExpiry(rec.ExpireAt, k)
	}
	e := newEntry(rec, true, s.mu.open.gen) // copies a small value, which may be the caller's
	s.pendLocked(s.storeLocked(k, e))
	s.boundCacheLocked()
	t.wrote()
	return e.rec
}

// del deletes k, whose current entry is old. A delete takes a revision
// too, so a key re-created later gets versions above any it had (D3).
func (t *txn) del(k []byte, old *entry) {
	s := t.s
	t.nextRev()
	b := s.mu.batch
	b.Delete(k)
	if s.mu.watch != nil && old.live(t.now) {
		s.touchLocked(k) // A2: reaping what had expired changes nothing
	}
	if old.exists && old.rec.ExpireAt != 0 {
		b.DeleteExpiry(old.rec.ExpireAt, k)
	}
	s.pendLocked(s.storeLocked(k, &entry{gen: s.mu.open.gen}))
	s.boundCacheLocked()
	t.wrote()
}

func (t *txn) wrote() {
	s := t.s
	s.mu.open.n++
	t.depend(s.mu.open)
	if s.mu.gathering && s.mu.open.n >= s.mu.expect {
		s.mu.gathering = false
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
	if !t.deferKick && !s.mu.open.kicked {
		s.mu.open.kicked = true
		s.kickCommitter()
	}
}

// entryOverhead is what a cached entry costs beyond its key and value
// bytes: the entry and its record (96 B, a small value inside it), the
// map slot (~28–40 B: it depends on how full the map is), allocation
// rounding. Measured (TestEntryCostCovers…, 14,500 to 29,000 keys):
// 155–162 B of heap for a 5-byte value, counted as 154 B; 128 was 8–11%
// short.
const entryOverhead = 136

func entryCost(k string, e *entry) int { return len(k) + cap(e.rec.Value) + entryOverhead }

// storeLocked puts e in mem as k's entry, keeping memBytes, and returns
// k as a string.
func (s *Store) storeLocked(k []byte, e *entry) string {
	if old, ok := s.mu.mem[string(k)]; ok {
		s.mu.memBytes -= entryCost(string(k), old)
	}
	ks := string(k) // NB: the allocation the map's insert made anyway
	s.mu.mem[ks] = e
	cost := entryCost(ks, e)
	s.mu.memBytes += cost
	if e.gen <= s.mu.applied && s.mu.evictStuck != 0 {
		// Entries Pebble has (loads) can be evicted: once they add a
		// tenth of the budget, the next eviction looks again. NB: not at
		// once: each look scans the pending entries; and not only at the
		// next apply: after a failed sync or apply (D6) applied never
		// moves again, and reads would grow the cache without bound (C1).
		s.mu.stuckBytes += cost
		if s.mu.stuckBytes > s.cfg.CacheBytes/10 {
			s.mu.evictStuck, s.mu.stuckBytes = 0, 0
		}
	}
	return ks
}

// maxSpareKeys bounds the key list kept for reuse: a FLUSHDB of millions
// of keys would otherwise pin its list (16 B a key) for good, outside the
// cache's budget (found by review).
const maxSpareKeys = 4096

// pendLocked records that the open batch wrote k (flight.keys).
func (s *Store) pendLocked(k string) {
	s.mu.open.keys = append(s.mu.open.keys, k)
}

// boundCacheLocked evicts when a write took the cache over its budget:
// overwriting cached keys with larger values grows it without any miss.
// The entry just written is pending, so it stays.
func (s *Store) boundCacheLocked() {
	if s.mu.memBytes > s.cfg.CacheBytes {
		s.evictLocked()
	}
}

// evictLocked drops committed entries until the cache is at 90% of its
// budget. Map iteration order is random enough for this bound; pending
// entries are never dropped because they are the only copy until their
// batch syncs, nor synced ones until Pebble has them (C3).
func (s *Store) evictLocked() {
	if s.mu.evictStuck == s.mu.applied && s.mu.applied != 0 {
		return // every entry was pending at this applied gen: don't rescan
	}
	target := s.cfg.CacheBytes / 10 * 9
	removed := 0
	s.mu.evictPasses++
	for k, e := range s.mu.mem {
		if s.mu.memBytes <= target {
			break
		}
		if e.gen <= s.mu.applied {
			s.mu.ring.put(unsafe.Slice(unsafe.StringData(k), len(k)), &e.rec, e.exists) // C2
			s.mu.memBytes -= entryCost(k, e)
			delete(s.mu.mem, k)
			s.mu.evictedGen = max(s.mu.evictedGen, e.gen)
			removed++
		}
	}
	if s.mu.memBytes > target {
		// The pass went through all of mem and evicted every entry it
		// could: what is left is pending (or not in Pebble yet), and no
		// pass can do better before the next apply or stuckBytes more
		// loads. NB: not only when nothing was evicted: while the pending
		// entries alone fill the budget, each read installs one entry and
		// the next pass evicts exactly it, so every read would walk the
		// whole map under the apply lock (found by review: 10 ms a read
		// with 200,000 entries of a failed batch).
		s.mu.evictStuck, s.mu.stuckBytes = s.mu.applied, 0
	}
	s.mu.evicted += removed
	if s.mu.evicted >= max(len(s.mu.mem), 1024) {
		s.rebuildMemLocked()
	}
}

// rebuildMemLocked copies mem into a fresh map. NB: Go's maps keep the
// slots of deleted keys as tombstones, which lookups must probe past; under
// the cache's steady evict-and-insert churn they pile up until a lookup
// costs a microsecond (measured: 45% of the CPU of cached GETs). Rebuilding
// once per len(mem) evictions costs O(1) per eviction.
func (s *Store) rebuildMemLocked() {
	m := make(map[string]*entry, len(s.mu.mem))
	for k, e := range s.mu.mem {
		m[k] = e
	}
	s.mu.mem = m
	s.mu.evicted = 0
}

// maxGather bounds how long the committer waits for a batch to fill.
const maxGather = 500 * time.Microsecond

func (s *Store) commitLoop() {
	gatherTimer := time.NewTimer(time.Hour)
	gatherTimer.Stop()
	for {
		select {
		case <-s.kick:
			s.gather(gatherTimer)
			s.commitOnce()
			s.Applied()
		case <-s.stopc:
			// Drain: commit until nothing is pending.
			for s.commitOnce() {
			}
			return
		}
	}
}

// gather lets the open batch fill before it is committed: when it holds
// fewer writes than the last batch released, the writers of that batch are
// probably about to send their next writes, so the committer waits for them
// — until the batch holds as many writes as the last one, or for at most
// the last commit's duration (capped at maxGather). Fewer, fuller fsyncs
// cost less CPU per write; Redis gets the same effect by fsyncing once per
// event-loop pass. A lone writer is never delayed: its last batch held one
// write, and so does the open one. NB: this is a real-time wait (not the
// injected Clock): it tunes throughput and carries no semantics.
func (s *Store) gather(timer *time.Timer) {
	select {
	case <-s.full: // a stale signal from an earlier wait
	default:
	}
	s.mu.Lock()
	wait := gatherWait(s.mu.open.n, s.mu.expect, s.mu.lastCommit)
	if wait <= 0 || s.mu.closed {
		s.mu.Unlock()
		return
	}
	s.mu.gathering = true
	s.mu.Unlock()
	timer.Reset(wait)
	select {
	case <-s.full:
	case <-timer.C:
	case <-s.stopc:
	}
	timer.Stop()
	s.mu.Lock()
	s.mu.gathering = false
	s.mu.Unlock()
}

// gatherWait is how long the committer may wait for a batch holding n
// writes to fill, when the last batch released expect writes and took last
// to commit: 0 (commit now) once n reaches expect — so a lone writer never
// waits — and at most maxGather.
func gatherWait(n, expect int, last time.Duration) time.Duration {
	if n == 0 || n >= expect {
		return 0
	}
	return min(last, maxGather)
}

// commitOnce commits the open batch if it has writes, and reports whether
// it did anything.
func (s *Store) commitOnce() bool {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	if s.mu.open.n == 0 {
		s.mu.Unlock()
		return false
	}
	if s.mu.applying != nil {
		// The log takes one batch at a time (persist's W4); writes
		// arriving meanwhile join this one.
		s.mu.Unlock()
		s.Applied()
		s.mu.Lock()
	}
	f := s.mu.open
	b := s.mu.batch
	s.mu.batch = s.env.newBatch()
	s.mu.open = newFlight(f.gen + 1)
	s.mu.open.keys, s.mu.spareKeys = s.mu.spareKeys, nil
	if failed := s.mu.failed; failed != nil {
		// D6: never commit after a failed sync; these writes are refused.
		s.mu.failedKeys = append(s.mu.failedKeys, f.keys...)
		s.mu.Unlock()
		f.err = failed
		close(f.done)
		return true
	}
	b.SetRevision(s.mu.rev) // D2
	s.mu.inflight = f
	s.mu.Unlock()

	// NB: real time, not the injected Clock: commit latency is a
	// measurement (metrics, gather), not semantics.
	start := time.Now()
	err := s.env.log(b)
	took := time.Since(start)
	s.stats.CommitNanos.Add(uint64(took))

	s.mu.Lock()
	s.mu.inflight = nil
	if err != nil {
		s.mu.failed = fmt.Errorf("%w: %v", ErrUnavailable, err)
		f.err = s.mu.failed
		s.mu.failedKeys = append(s.mu.failedKeys, f.keys...)
		slog.Error("storage failed; refusing all further writes", "err", err)
	} else {
		// Durable: its writers hear of it now, but its entries stay in
		// mem, and in listings (pendingIn), until Pebble has it (C3).
		f.batch, f.applied = b, make(chan struct{})
		s.mu.applying = f
		s.mu.durable = f.gen
		s.mu.expect, s.mu.lastCommit = f.n, took
		s.stats.Commits.Add(1)
		s.stats.Writes.Add(uint64(f.n))
	}
	pendingNext := s.mu.open.kicked
	s.mu.Unlock()
	if err == nil && s.cfg.CommitObserver != nil {
		// Before the writers hear of it: an acknowledged write is counted
		// (metrics read right after a reply agree with it).
		s.cfg.CommitObserver(f.n, took)
	}
	close(f.done)
	if pendingNext {
		s.kickCommitter()
	}
	return true
}

// Applied applies the last synced batch to Pebble, if no goroutine has
// yet, or waits for the one applying it; once it returns nil, Pebble
// holds every write synced before the call. Until then the batch's entries
// stay in mem (evictLocked) and its keys in listings (pendingIn): a read
// that misses mem goes to Pebble, which must hold every write not in mem
// (C3). Sync leaves the apply to its caller, which answers first: an
// event loop writes the replies the commit released, then calls
// Applied, so its clients do not wait for the memtable inserts (a
// pipeline's batch of ~700 writes takes about a millisecond). The next
// commit applies a batch left so, before it logs its own. Measured
// (ROUNDS=7 bench/ab.sh, with ApplyLater): durable SETs with 50 clients
// 0.97× Redis-always against 0.93× applying before answering; HTTP POST
// sequence 0.97× against 0.90× of Redis's INCR (HTTP=seq, 5 rounds).
//
// A failed apply fail-stops the store like a failed sync (D6), but the
// batch's writes are durable (in the log, replayed at the next open) and
// were acknowledged: they stay readable from mem for good, as committed
// entries that are never evicted, and Pebble never has them in this
// process: Applied then answers that failure, for good.
func (s *Store) Applied() error { return s.appliedCtx(nil) }

// appliedCtx is Applied, but a wait for another goroutine's apply ends
// with ctx (nil: never).
func (s *Store) appliedCtx(ctx context.Context) error {
	s.mu.Lock()
	f := s.mu.applying
	if f == nil {
		err := s.mu.applyErr
		s.mu.Unlock()
		return err
	}
	if f.claimed {
		s.mu.Unlock()
		var done <-chan struct{}
		if ctx != nil {
			done = ctx.Done()
		}
		select {
		case <-f.applied:
		case <-done:
			return ctx.Err()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.applyErr
	}
	f.claimed = true
	s.mu.Unlock()
	err := s.env.apply(f.batch)
	s.mu.Lock()
	s.mu.applying = nil
	if err != nil {
		s.mu.applyErr = fmt.Errorf("%w: %v", ErrUnavailable, err)
		if s.mu.failed == nil {
			s.mu.failed = s.mu.applyErr
			slog.Error("storage failed; refusing all further writes", "err", err)
		}
		s.mu.failedKeys = append(s.mu.failedKeys, f.keys...)
	} else {
		s.mu.applied = f.gen
		if cap(f.keys) <= maxSpareKeys {
			clear(f.keys) // no longer pending: not kept alive by the list
			s.mu.spareKeys = f.keys[:0]
		}
	}
	f.keys, f.batch = nil, nil
	err = s.mu.applyErr
	s.mu.Unlock()
	close(f.applied)
	return err
}

// asyncApplyMin is the size from which ApplyLater hands a batch to another
// goroutine (see ApplyLater).
const asyncApplyMin = 128

// ApplyLater is Applied for an event loop that has answered: a large
// batch (pipelines) is applied by a new goroutine, on another core while
// the loop serves its next pass; a small one at once, where handing it
// over costs more than it saves. Measured (bench/ab.sh): every batch
// handed over, durable SETs with 50 clients 0.82× Redis-always against
// 0.93× for the build that applied inside the commit; batches of 128
// writes or more handed over, against every batch applied inline after
// the replies: INCR -P 16 0.67× against 0.60×, SET -P 16 0.71× against
// 0.63×.
func (s *Store) ApplyLater() {
	s.mu.Lock()
	f := s.mu.applying
	async := f != nil && f.n >= asyncApplyMin && !s.mu.closed
	if async {
		// NB: Add under mu while not closed: Close sets closed under mu
		// before it waits, so it waits for this goroutine (STYLE 13).
		s.wg.Add(1)
	}
	s.mu.Unlock()
	switch {
	case async:
		go func() {
			defer s.wg.Done()
			s.Applied()
		}()
	case f != nil:
		s.Applied()
	}
}

// Sync commits the open batch in the caller's goroutine: once it returns,
// every write applied before the call is durable, or its flight failed
// (D6), so every Pending taken before the call is Ready. An event loop
// calls it once per pass over its ready connections, as Redis fsyncs once
// per event-loop pass: one commit then covers every connection the pass
// served, and no goroutine hands the commit and its replies back and
// forth.
//
// Pebble gets the batch later (see Applied): the caller calls Applied
// once it has answered.
func (s *Store) Sync() {
	s.commitOnce()
}

// kickCommitter tells the committer the open batch has writes to commit.
func (s *Store) kickCommitter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// validName checks an account name and a key id.
func (s *Store) key(acc, id string) ([]byte, error) {
	if err := CheckAccount(acc); err != nil {
		return nil, err
	}
	if len(id) > s.cfg.MaxKeyBytes {
		return nil, invalidf("key is longer than %d bytes", s.cfg.MaxKeyBytes)
	}
	return persist.DataKey(acc, id), nil
}
