package persist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrLocked is returned by Open when another process holds the data directory (P5).
var ErrLocked = errors.New("data directory is in use by another process")

// ErrNotStore is returned by Open for a directory that holds files but no
// store (P8).
var ErrNotStore = errors.New("directory is not empty and holds no concurrencydb store")

// Options configure Open. The zero value is the production default.
type Options struct {
	// FS is the filesystem; nil means the real disk. Tests pass an in-memory,
	// crashable or fault-injecting vfs.FS.
	FS vfs.FS
	// CacheBytes is the block cache size (default 16 MiB: a $5 server).
	CacheBytes int64
	// MemTableBytes is the memtable size (default 4 MiB).
	MemTableBytes uint64
	// MaxOpenFiles bounds the table files Pebble keeps open (default
	// 1,000): the binary sets these descriptors aside from the
	// connections' (internal/fdbudget).
	MaxOpenFiles int
	// WALFileBytes is the size past which the write-ahead log moves to a
	// new file and checkpoints the old one (default 16 MiB; wal.go).
	WALFileBytes int64
}

// DB is an open data directory.
type DB struct {
	pdb *pebble.DB
	wal *wal
	// Revision and Epoch are the values read from disk at Open.
	Revision uint64
	Epoch    uint64
}

// Open opens (creating if needed) the data directory dir.
func Open(dir string, o Options) (*DB, error) {
	if o.CacheBytes == 0 {
		o.CacheBytes = 16 << 20
	}
	if o.MaxOpenFiles == 0 {
		o.MaxOpenFiles = 1000
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 4 << 20
	}
	if o.WALFileBytes == 0 {
		o.WALFileBytes = 16 << 20
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if err := checkDir(o.FS, dir); err != nil {
		return nil, err
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	bg := &bgState{failed: make(chan struct{})}
	stalls := &stallLog{}
	popts := &pebble.Options{
		FS:              throttledFS{o.FS, bg},
		Cache:           cache,
		MemTableSize:    o.MemTableBytes,
		MaxOpenFiles:    o.MaxOpenFiles,
		LoggerAndTracer: quietLogger{},
		// wal.go logs and syncs every batch itself (P2).
		DisableWAL: true,
		// P6. NB: it also replaces Pebble's own logging of these, which
		// repeats a failing flush's error thousands of times a second.
		EventListener: &pebble.EventListener{
			BackgroundError: bg.set,
			WriteStallBegin: stalls.begin,
			WriteStallEnd:   stalls.end,
		},
		// Pebble stops writes once its queued memtables reach this many
		// memtables' worth, counting the one being filled as full; at its
		// default (2), one memtable whose flush fails already stalls the
		// next write that needs room, possibly before P6 has seen the
		// error. With 4, a failed flush leaves room for two more memtables
		// of writes, which P6 refuses first. Measured: resident memory after
		// run.sh's 1M-key load 86.2 / 88.2 MB with 2, 87.2 / 87.4 with 4.
		MemTableStopWritesThreshold: 4,
		// L0 is compacted into the next level once it holds this many
		// sublevels (Pebble's default: 4). Each such compaction rewrites
		// the part of that level the flushed keys overlap, which for a
		// working set of random keys is all of it; waiting for 16 flushes
		// instead of 4 rewrites it a quarter as often. Measured
		// (bench/ab.sh, PREFILL=6, N=1000000, 4 rounds): server CPU per
		// INCR 11.25 → 10.38 µs with 50 clients and 4.57 → 3.66 µs with
		// -P 16; GET unchanged (6.85 / 6.73 µs), resident memory after
		// 1M keys 87 / 88 MB. 32 measured no better than 16. Reads check
		// up to 16 L0 tables, whose Bloom filters skip most of them.
		L0CompactionThreshold: 16,
		L0StopWritesThreshold: 64, // must be ≥ the above; Pebble's default is 12
	}
	// Every write reads the key's current record first (create revision,
	// expiry index, type). Bloom filters let that read skip the table
	// blocks of a key that is not there, which is most new keys.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	pdb, err := pebble.Open(dir, popts)
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("%w: %s: %v", ErrLocked, dir, err)
		}
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	db := &DB{pdb: pdb}
	// Refuse an unknown format before the log is touched: replaying and
	// checkpointing another format's log would change the directory (P4).
	if v, ok, err := db.Get(metaFormat); err != nil || (ok && string(v) != "1" && string(v) != strconv.Itoa(FormatVersion)) {
		pdb.Close()
		if err == nil {
			err = formatError(v)
		}
		return nil, err
	} else if !ok {
		// P8: no format key, yet keys outside our meta keys: another
		// program's Pebble store, given by mistake (checkDir lets any
		// store through). A new store of ours has none: the format key
		// is its first write (found by review: such a directory was
		// opened and written into).
		if k, err := db.firstForeignKey(); err != nil || k != nil {
			pdb.Close()
			if err == nil {
				err = fmt.Errorf("%w: %s is a Pebble store of another program (it holds %q and no concurrencydb format key); give an empty or a new directory", ErrNotStore, dir, k)
			}
			return nil, err
		}
	}
	if db.wal, err = openWAL(o.FS, dir, pdb, o.WALFileBytes, bg); err != nil {
		if !errors.Is(err, errOpenStalled) {
			pdb.Close()
		} // else a replay is stuck inside Pebble, which cannot close under it
		return nil, err
	}
	fail := func(err error) (*DB, error) {
		db.wal.abandon()
		pdb.Close()
		return nil, err
	}
	if err := db.checkFormat(); err != nil {
		return fail(err)
	}
	if db.Revision, err = db.metaUint(metaRevision); err != nil {
		return fail(err)
	}
	if db.Epoch, err = db.metaUint(metaEpoch); err != nil {
		return fail(err)
	}
	return db, nil
}

// checkDir refuses a directory that has files of its own but no store in
// it (P8): a data_dir pointed at the wrong place by mistake (a home
// directory, another program's data) would otherwise get Pebble's and the
// log's files written among them. A store is recognised by Pebble's
// manifest. Without one, only LOCK (the one file Pebble creates before its
// manifest, so a first start that crashed there) and a filesystem's
// lost+found count as empty: tables, logs or OPTIONS without a manifest
// are a damaged or partly copied store, which Pebble would open as a new
// one, deleting its tables, and the log would replay part of it over
// that. Once a store is there, other files beside it do not matter.
func checkDir(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return nil // a missing directory is created by Pebble; other errors surface there
	}
	var foreign []string
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "MANIFEST-"), strings.HasPrefix(n, "marker.manifest."), n == "CURRENT":
			return nil
		case n == "LOCK", n == "lost+found":
		default:
			foreign = append(foreign, n)
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	slices.Sort(foreign)
	if len(foreign) > 3 {
		foreign = append(foreign[:3], "…")
	}
	return fmt.Errorf("%w: %s holds %s; give an empty or a new directory", ErrNotStore, dir, strings.Join(foreign, ", "))
}

// isLockErr recognises the flock failure Pebble returns when another
// process holds the directory's LOCK file, and the error of Pebble's
// in-process lock table when this process already has it open.
func isLockErr(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) ||
		strings.Contains(err.Error(), "resource temporarily unavailable") ||
		strings.Contains(err.Error(), "lock held by current process")
}

func (db *DB) checkFormat() error {
	v, ok, err := db.Get(metaFormat)
	if err != nil {
		return err
	}
	if !ok || string(v) == "1" {
		// A new directory, or format 1 (whose log Pebble replayed at
		// open). NB: the key must reach Pebble's own tables at once, not
		// only wal.go's log: a format-1 build opening the directory after
		// a crash reads Pebble alone, and would take a directory without
		// the key for a new one and ignore the log (P4).
		b := db.NewBatch()
		b.b.Set(metaFormat, []byte(strconv.Itoa(FormatVersion)), nil)
		if err := db.Commit(b, true); err != nil {
			return err
		}
		// NB: not Flush, which waits for a failing flush (P6) for ever: a
		// first start on a disk with room for the MANIFEST but not for a
		// table would hang here, before anything watches for stalls (P7).
		return db.wal.unlessStalled(func() error { return db.wal.flushOrFail("flush of the format key") })
	}
	if string(v) != strconv.Itoa(FormatVersion) {
		return formatError(v) // written by the log just replayed
	}
	return nil
}

// firstForeignKey returns the first key of Pebble that is not one of our
// meta keys, or nil.
func (db *DB) firstForeignKey() ([]byte, error) {
	it, err := db.pdb.NewIter(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if !bytes.HasPrefix(it.Key(), metaKey("")) {
			return bytes.Clone(it.Key()), nil
		}
	}
	return nil, it.Error()
}

// formatError refuses a data format this build does not read (P4).
func formatError(v []byte) error {
	return fmt.Errorf("persist: P4: data format %q, this build reads %d", v, FormatVersion)
}

func (db *DB) metaUint(k []byte) (uint64, error) {
	v, ok, err := db.Get(k)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("persist: corrupt meta key %q", k)
	}
	return binary.BigEndian.Uint64(v), nil
}

// LoadRevision reads the revision counter as it is on disk now (the last
// SetRevision committed). Unlike the Revision field, read once at Open, it
// is right for a store started again on a DB that stayed open (core's D3).
func (db *DB) LoadRevision() (uint64, error) { return db.metaUint(metaRevision) }

// Close checkpoints the log (the next Open replays nothing) and closes the
// store. Writes committed without sync are made durable by the checkpoint.
func (db *DB) Close() error {
	werr := db.wal.close()
	if err := db.pdb.Close(); err != nil {
		return err
	}
	return werr
}

// Get returns a copy of the value stored at k.
func (db *DB) Get(k []byte) ([]byte, bool, error) {
	v, closer, err := db.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// GetRecord reads and decodes the record of a data key.
func (db *DB) GetRecord(k []byte) (Record, bool, error) {
	v, ok, err := db.Get(k)
	if err != nil || !ok {
		return Record{}, false, err
	}
	r, err := DecodeRecord(v)
	return r, err == nil, err
}

// SetEpoch durably stores the mutex-handle epoch (see core's mutex handles).
func (db *DB) SetEpoch(e uint64) error {
	b := db.NewBatch()
	b.b.Set(metaEpoch, binary.BigEndian.AppendUint64(nil, e), nil)
	if err := db.Commit(b, true); err != nil {
		return err
	}
	db.Epoch = e
	return nil
}

// Batch is a set of writes applied atomically by Commit (P3).
type Batch struct {
	b   *pebble.Batch
	buf []byte
}

// NewBatch returns an empty batch.
func (db *DB) NewBatch() *Batch { return &Batch{b: db.pdb.NewBatch()} }

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Count is the number of writes in the batch.
func (b *Batch) Count() int { return int(b.b.Count()) }

// PutRecord stores r at data key k.
func (b *Batch) PutRecord(k []byte, r *Record) {
	b.buf = AppendRecord(b.buf[:0], r)
	b.b.Set(k, b.buf, nil)
}

// Delete removes data key k.
func (b *Batch) Delete(k []byte) { b.b.Delete(k, nil) }

// SetExpiry adds k to the expiry index at time at (unix ms).
func (b *Batch) SetExpiry(at int64, k []byte) { b.b.Set(expiryKey(at, k), nil, nil) }

// DeleteExpiry removes k's entry at time at from the expiry index.
func (b *Batch) DeleteExpiry(at int64, k []byte) { b.b.Delete(expiryKey(at, k), nil) }

// SetRevision records the highest revision whose effects are in this batch
// or an earlier one (core's D2).
func (b *Batch) SetRevision(rev uint64) {
	b.b.Set(metaRevision, binary.BigEndian.AppendUint64(nil, rev), nil)
}

// Commit applies b; with sync it returns only once b is fsynced (P2). A
// failed write or sync is returned, and every later Commit fails too: the
// log's state on disk is unknown after it (core's D6 fail-stops on it).
// NB: a batch whose sync succeeded but whose apply to Pebble then failed
// (a closed or broken Pebble) is reported as failed, yet it is in the log
// and reappears after a restart: a failed write's outcome is unknown, as
// always after an error.
func (db *DB) Commit(b *Batch, sync bool) error {
	defer b.b.Close()
	return db.wal.commit(b.b, sync)
}

// Log is the first half of Commit: it writes b to the log, and with sync
// returns only once b is fsynced (P2: b survives a crash), but reads do
// not see b until Apply(b), the second half, has returned. After a nil
// error the caller must call Apply(b), in any goroutine; the next Log
// waits until it has (W4). Errors are Commit's.
func (db *DB) Log(b *Batch, sync bool) error {
	err := db.wal.log(b.b, sync)
	if err != nil {
		b.b.Close()
	}
	return err
}

// Apply is the second half of Commit: it makes b, which Log wrote, visible
// to reads. An error is sticky, as Commit's: b is in the log, and the next
// open replays it.
func (db *DB) Apply(b *Batch) error {
	defer b.b.Close()
	return db.wal.apply(b.b)
}

// ScanExpired calls fn for index entries with expiry ≤ upTo, in time order,
// at most limit of them.
func (db *DB) ScanExpired(upTo int64, limit int, fn func(at int64, dataKey []byte)) error {
	it, err := db.pdb.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixExpiry},
		UpperBound: expiryKey(upTo+1, nil),
	})
	if err != nil {
		return err
	}
	n := 0
	for it.First(); it.Valid() && n < limit; it.Next() {
		k := it.Key()
		if len(k) < 9 {
			continue
		}
		fn(int64(binary.BigEndian.Uint64(k[1:9])), append([]byte(nil), k[9:]...))
		n++
	}
	return it.Close()
}

// Scan calls fn for each data key in [start, end) in key order with its
// decoded record, until fn returns false. The record's Value is only valid
// during the call.
func (db *DB) Scan(start, end []byte, fn func(k []byte, r Record) bool) error {
	v, err := db.View(start, end)
	if err != nil {
		return err
	}
	return v.Scan(fn)
}

// A View is the data keys of a range as they were when View was called: a
// commit applied since does not change what its Scan reads.
type View struct{ it *pebble.Iterator }

// View takes a view of the data keys in [start, end); its Scan or Close
// must follow.
func (db *DB) View(start, end []byte) (*View, error) {
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, err
	}
	return &View{it}, nil
}

// Scan is DB.Scan over the view, which it closes.
func (v *View) Scan(fn func(k []byte, r Record) bool) error {
	it := v.it
	for it.First(); it.Valid(); it.Next() {
		r, err := DecodeRecord(it.Value())
		if err != nil {
			it.Close()
			return fmt.Errorf("key %q: %w", it.Key(), err)
		}
		if !fn(it.Key(), r) {
			break
		}
	}
	return it.Close()
}

// Close releases a view that will not be scanned.
func (v *View) Close() error { return v.it.Close() }

// StorageErr is Pebble's first background error (P6), or nil: once set,
// commits fail, and the store is not healthy even before a write tries.
func (db *DB) StorageErr() error { return db.wal.bg.get() }

// Stalled reports a commit (or Close) that has been waiting inside Pebble
// for longer than d since Pebble's storage failed (P7): Apply and
// AsyncFlush wait in Pebble's write throttle for a flush that cannot
// succeed while the failure lasts, and the committer (an event loop, in
// the binary) waits with them. nil when no call under the log's lock is in
// Pebble, when Pebble reports no error, or when the wait is not d old
// counted from the later of the call and the failure: a slow disk stalls
// writes too, but its flushes finish, and a failure that clears at
// Pebble's next retry ends the wait well within seconds.
func (db *DB) Stalled(d time.Duration) error {
	err := db.wal.bg.get()
	if err == nil {
		return nil
	}
	since := db.wal.inPebble.Load()
	if since == 0 {
		return nil
	}
	at := db.wal.bg.at.Load()
	if at == 0 {
		return nil // the failure is being recorded: it has just come
	}
	if held := time.Duration(monoNow() - max(since, at)); held > d {
		return fmt.Errorf("persist: a write has waited %v for Pebble since its storage failed: %w", held.Round(time.Millisecond), err)
	}
	return nil
}

// monoBase and monoNow give Stalled monotonic instants as integers (a
// wall clock stepped while a commit waits must not make or hide a stall);
// monoNow is never 0, which stands for "none".
var monoBase = time.Now()

func monoNow() int64 { return int64(time.Since(monoBase)) + 1 }

// DiskUsage is the total size of the store's files in bytes: Pebble's and
// the write-ahead log's.
func (db *DB) DiskUsage() uint64 { return db.pdb.Metrics().DiskSpaceUsage() + db.wal.diskUsage() }

// bgState holds Pebble's first background error (P6): a flush,
// compaction or table read that failed. The listener runs in Pebble's
// goroutines, some under Pebble's own lock, so it only records.
// stallLog logs Pebble's write stalls (its memtables or L0 full, writes
// held until a flush or compaction catches up) that last stallLogMin or
// more: every commit waits behind one (persist's W4), so a stall is a
// latency spike for every client, which the log should explain.
type stallLog struct {
	mu     sync.Mutex
	at     time.Time
	reason string
}

const stallLogMin = 50 * time.Millisecond

func (l *stallLog) begin(info pebble.WriteStallBeginInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at, l.reason = time.Now(), info.Reason
}

func (l *stallLog) end() {
	l.mu.Lock()
	at, reason := l.at, l.reason
	l.at = time.Time{}
	l.mu.Unlock()
	if d := time.Since(at); !at.IsZero() && d >= stallLogMin {
		slog.Warn("storage stalled writes", "reason", reason, "duration_ms", d.Milliseconds())
	}
}

type bgState struct {
	err    atomic.Pointer[error]
	at     atomic.Int64  // monoNow of the first error (Stalled)
	failed chan struct{} // closed with the first error
}

func (b *bgState) set(err error) {
	if b.err.CompareAndSwap(nil, &err) {
		b.at.Store(monoNow())
		close(b.failed)
		slog.Error("storage cannot write its files; refusing writes until a restart (later errors are not logged)", "err", err.Error())
	}
}

// throttledFS slows the creation of files once Pebble has failed to write
// its files (P6): Pebble retries a failed flush at once, for ever (measured:
// ~47,000 creations a second, more than a core), and the fail-stopped
// server still serves reads on the same cores.
type throttledFS struct {
	vfs.FS
	bg *bgState
}

func (fs throttledFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if fs.bg.get() != nil {
		time.Sleep(100 * time.Millisecond)
	}
	return fs.FS.Create(name, c)
}

// Unwrap lets Pebble reach the underlying FS (as faultfs does).
func (fs throttledFS) Unwrap() vfs.FS { return fs.FS }

// get returns the first background error, or nil (also for a nil b: the
// log's tests run without a listener).
func (b *bgState) get() error {
	if b == nil {
		return nil
	}
	if p := b.err.Load(); p != nil {
		return *p
	}
	return nil
}

// done is closed once there is a background error (never for a nil b).
func (b *bgState) done() <-chan struct{} {
	if b == nil {
		return nil
	}
	return b.failed
}

// quietLogger drops Pebble's informational chatter but keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	slog.Error("pebble: " + fmt.Sprintf(format, args...))
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
func (quietLogger) Eventf(context.Context, string, ...interface{}) {}
func (quietLogger) IsTracingEnabled(context.Context) bool          { return false }
