package persist

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The write-ahead log is concurrencydb's own: Pebble runs with its WAL
// disabled. Commit appends each batch to the current log file and
// fdatasyncs it in the committing goroutine, then applies the batch to
// Pebble's memtable. Pebble's WAL syncs in a goroutine of its own
// (LogWriter.flushLoop), so every commit handed the sync to another thread
// and the result back: measured on this 2-core machine under 50 clients, a
// commit took ≈245 µs against ≈100 µs for the disk's fdatasync, and the
// RESP event loop waits for every commit. With the sync in the committing
// goroutine, durable SETs at 50 clients went from a median of 0.87× to
// 0.94–0.99× Redis with appendfsync always (bench/ab.sh, 7 paired rounds,
// keys in the record cache), and single-client SET p50 from ≈190 to
// ≈140 µs.
//
// Layout: files wal-NNNNNN.log in the data directory (Pebble ignores names
// that are not its own), each a sequence of records:
//
//	[4] payload length n, little-endian (a record of length 0 is the seal)
//	[4] CRC-32C (Castagnoli) of the next 8+n bytes
//	[8] the number of the file the record was written to, little-endian
//	[n] payload: a Pebble batch in its Repr encoding
//
// The file number in each record is what makes reusing a file safe: a file
// is recycled by renaming it (its old records stay until overwritten, and
// an fdatasync of overwritten blocks is cheaper than one that grows the
// file), and replay stops at the first record that names another file;
// zeros (a fresh or zero-filled file) fail the CRC and end it too.
//
// Invariants (see doc.go for P2, P3):
//
//   - W1: a record is written only after the previous one was synced (one
//     append at a time, under mu), a new or renamed file is used only after
//     its directory was synced, and a file the log leaves is first sealed
//     (an empty record, synced). So, when commits sync (storage.fsync), only
//     the last file holding records can end other than at its seal, at a
//     torn record. (Without sync, a power loss can leave any of this
//     unwritten; that mode promises nothing across crashes.)
//   - W2: Open replays, in file order, every file numbered at or above the
//     checkpoint (the meta key walCheckpoint), each up to its seal, or, for
//     the last file holding records, up to its first record that is short,
//     fails its CRC or names another file (logged as possible damage when
//     a valid record of the file follows it; not refused, as a power loss
//     during an unsynced write can leave that too). A file before that one without
//     its seal is corruption and fails Open (replaying later files over the
//     gap would lose writes silently), and so is a file missing from that
//     range, which starts at the checkpoint's file (or 1) and has no holes
//     (W3: files at or above the checkpoint are never removed). Replay re-applies batches that
//     Pebble may already hold; that is harmless because a batch only sets
//     and deletes whole keys and replay applies a suffix of the log in
//     order, ending at its last state.
//   - W3: a file is recycled or deleted only once a checkpoint above its
//     number is durable in Pebble: the checkpoint is written into the
//     memtable after the file's last batch and then flushed (Pebble flushes
//     memtables in order), so it is never on disk before the batches it
//     covers. Replaying a file whose successors' effects are on disk while
//     theirs are not replayed would roll keys back; W3 rules that out.
//   - W4: the log and Pebble take batches in the same order, one at a time:
//     a logged batch is applied (apply, possibly in another goroutine)
//     before the next one is logged (log waits for its turn). A batch
//     thus reaches Pebble, and the rotation and checkpoint after it run,
//     only once every earlier batch has, as when one call did both.
type wal struct {
	fs      vfs.FS
	dir     string
	pdb     *pebble.DB
	maxFile int64 // a file past this size is rotated (when no flush runs)

	bg       *bgState // Pebble's background errors (P6); set after replay
	mu       sync.Mutex
	f        vfs.File
	num      uint64
	off      int64 // where the next record goes
	size     int64 // the file's size when it was opened: writes below it overwrite
	buf      []byte
	err      error    // the first failed write or sync: sticky (core's D6)
	old      []uint64 // files below num, waiting for a durable checkpoint
	spares   []uint64 // checkpointed files kept for reuse
	flushing bool     // a checkpoint flush runs (at most one)
	flushed  sync.WaitGroup
	// The next file, zero-filled in the background (see prepare).
	preparing, prepared, prepTried bool
	retryAt                        int64 // no rotation attempt before off reaches it
	closed                         bool
	// turn holds a token from a log until that batch's apply (W4);
	// unapplied is set meanwhile, under mu.
	turn      chan struct{}
	unapplied bool

	// inPebble is when the call now inside Pebble under mu (a commit's
	// Apply and checkpoint, Close's flush) entered it (monoNow; 0: none
	// is). Stalled reads it without mu (P7).
	inPebble atomic.Int64
}

// enterPebble marks a call under mu that may wait in Pebble's write
// throttle (P7); the caller defers leavePebble.
func (w *wal) enterPebble() { w.inPebble.Store(monoNow()) }
func (w *wal) leavePebble() { w.inPebble.Store(0) }

// maxSpares is how many checkpointed log files are kept for reuse.
const maxSpares = 2

// walPrepName is the file prepare zero-fills; replay ignores it.
const walPrepName = "wal-prepare.tmp"

const walHeader = 16

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func walName(num uint64) string { return fmt.Sprintf("wal-%06d.log", num) }

// parseWALName returns the number of a log file name.
func parseWALName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, "wal-")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, ".log")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	// Only the spelling walName writes: another one (wal-7.log) would be
	// a second name for one number.
	return n, err == nil && n > 0 && name == walName(n)
}

// openWAL replays the log into pdb (W2), checkpoints what it replayed and
// opens a fresh file for new records.
func openWAL(fs vfs.FS, dir string, pdb *pebble.DB, maxFile int64, bg *bgState) (*wal, error) {
	w := &wal{fs: fs, dir: dir, pdb: pdb, maxFile: maxFile, bg: bg, turn: make(chan struct{}, 1)}
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, n := range names {
		if num, ok := parseWALName(n); ok {
			nums = append(nums, num)
		}
	}
	slices.Sort(nums)
	checkpoint, err := w.checkpoint()
	if err != nil {
		return nil, err
	}
	next := max(checkpoint, 1)
	var live []uint64 // files at or above the checkpoint, in order
	for _, num := range nums {
		next = max(next, num+1)
		if num < checkpoint {
			w.spares = append(w.spares, num)
		} else {
			live = append(live, num)
		}
	}
	// NB: synced before they are replayed: after a kill -9 the page cache
	// may hold a record whose fdatasync never returned (never
	// acknowledged). Replayed, its effects may reach Pebble's tables
	// before the checkpoint; were the power then lost before the kernel
	// wrote the record, the log on disk would end before it and the next
	// replay would apply the batches before it over it: the batch half
	// undone and the revision counter moved back (P3, D2).
	for _, num := range live {
		if err := w.syncFile(num); err != nil {
			return nil, err
		}
	}
	var n int
	err = w.unlessStalled(func() error {
		var err error
		if n, err = w.replayAll(live, checkpoint); err != nil || len(live) == 0 {
			return err
		}
		// Make what was replayed durable in Pebble, so the files can go.
		if err := w.setCheckpoint(next); err != nil {
			return err
		}
		return w.flushOrFail("flush after replay")
	})
	if err != nil {
		return nil, err
	}
	if len(live) > 0 {
		w.spares = append(w.spares, live...)
		if n > 0 {
			slog.Info("replayed the write-ahead log", "files", len(live), "batches", n)
		}
	}
	w.remove(w.trimSpares())
	if err := fs.Remove(fs.PathJoin(dir, walPrepName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	w.num = next
	if w.f, w.size, err = w.newFile(next); err != nil {
		return nil, err
	}
	return w, nil
}

// errOpenStalled is Open's error when the log's replay is stuck inside
// Pebble's write throttle after a storage failure (P7).
var errOpenStalled = errors.New("persist: the log's replay waits for Pebble, whose storage failed")

// openStallWait is how long Open lets a replay go on once Pebble's storage
// has failed (a variable for tests).
var openStallWait = 10 * time.Second

// unlessStalled runs fn, which replays the log into Pebble, and returns its
// error; or, when Pebble's storage fails meanwhile and fn has not returned
// openStallWait later, errOpenStalled: fn then waits in Pebble's write
// throttle for a flush that cannot succeed while the failure lasts (a
// disk with room for Pebble's MANIFEST but not its tables), and Open
// returns instead of hanging for ever, leaving fn's goroutine and Pebble
// behind (P7). Nothing is lost: the log stays as it was.
func (w *wal) unlessStalled(fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-w.bg.done():
	}
	t := time.NewTimer(openStallWait)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("%w: %w", errOpenStalled, w.bg.get())
	}
}

// checkpoint reads the durable checkpoint: files below it are in Pebble.
func (w *wal) checkpoint() (uint64, error) {
	v, closer, err := w.pdb.Get(metaWALCheckpoint)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("persist: corrupt meta key %q", metaWALCheckpoint)
	}
	return binary.BigEndian.Uint64(v), nil
}

// setCheckpoint writes checkpoint num into the memtable: it becomes durable
// with the next flush, together with everything applied before it (W3).
func (w *wal) setCheckpoint(num uint64) error {
	b := w.pdb.NewBatch()
	defer b.Close()
	b.Set(metaWALCheckpoint, binary.BigEndian.AppendUint64(nil, num), nil)
	return w.pdb.Apply(b, pebble.NoSync)
}

// replayAll applies the records of files nums, in order, and returns how
// many (W2). Every file but the last one that holds a record must end with
// its seal (W1): anything else ending it is corruption, and Open fails
// rather than replay later files over a gap.
func (w *wal) replayAll(nums []uint64, checkpoint uint64) (int, error) {
	// Two passes, each streaming one record at a time (a file can be
	// larger than maxFile, and several can be live): the first finds
	// which files hold records and which are sealed, the second applies.
	type file struct {
		records int
		sealed  bool
	}
	files := make([]file, len(nums))
	lastWithRecords := -1
	for i, num := range nums {
		sealed, err := w.scanFile(num, func([]byte) error { files[i].records++; return nil })
		if err != nil {
			return 0, err
		}
		files[i].sealed = sealed
		if files[i].records > 0 || sealed {
			lastWithRecords = i
		}
	}
	// A file missing from the live range (lost by the filesystem, moved
	// by fsck, deleted by hand) is a gap as a corrupt record is: the
	// range starts at the checkpoint's file (or 1) and has no holes, as
	// files at or above the checkpoint are never removed (W2).
	if lastWithRecords >= 0 {
		want := max(checkpoint, 1)
		for i, num := range nums[:lastWithRecords+1] {
			if num != want+uint64(i) {
				return 0, fmt.Errorf("persist: write-ahead log %s is missing and later files hold records: refusing to replay over a gap",
					walName(want+uint64(i)))
			}
		}
	}
	n := 0
	for i, num := range nums {
		if i < lastWithRecords && !files[i].sealed {
			return n, fmt.Errorf("persist: write-ahead log %s: record %d is corrupt or missing and later files hold records: refusing to replay over a gap",
				walName(num), files[i].records+1)
		}
		_, err := w.scanFile(num, func(payload []byte) error {
			b := w.pdb.NewBatch()
			defer b.Close()
			if err := b.SetRepr(slices.Clone(payload)); err != nil {
				return err
			}
			if err := w.pdb.Apply(b, pebble.NoSync); err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("persist: replay %s: %w", walName(num), err)
		}
	}
	return n, nil
}

// flushOrFail flushes Pebble's memtables and waits for the flush, or for
// Pebble's first background error (P6). NB: not Flush, which waits for a
// failing flush for ever.
func (w *wal) flushOrFail(what string) error {
	flushed, err := w.pdb.AsyncFlush()
	if err != nil {
		return fmt.Errorf("persist: %s: %w", what, err)
	}
	select {
	case <-flushed:
		return nil
	case <-w.bg.done():
		return fmt.Errorf("persist: %s: storage cannot write its files: %w", what, w.bg.get())
	}
}

// syncFile makes what the page cache holds of log file num durable.
func (w *wal) syncFile(num uint64) error {
	f, err := w.fs.Open(w.fs.PathJoin(w.dir, walName(num)))
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("persist: sync %s before replaying it: %w", walName(num), err)
	}
	return nil
}

// scanFile calls fn with the payload of each record of file num, in order,
// and reports whether the file ends with its seal. The payload is valid
// only during the call.
func (w *wal) scanFile(num uint64, fn func(payload []byte) error) (sealed bool, err error) {
	name := w.fs.PathJoin(w.dir, walName(num))
	f, err := w.fs.Open(name)
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	left := st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	var buf []byte
	for left >= walHeader {
		head, err := r.Peek(walHeader)
		if err != nil {
			return false, fmt.Errorf("persist: read %s: %w", walName(num), err)
		}
		n := int64(binary.LittleEndian.Uint32(head))
		if n > left-walHeader {
			return false, nil // a torn record, or another file's bytes
		}
		need := walHeader + int(n)
		if cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:need]
		if _, err := io.ReadFull(r, buf); err != nil {
			return false, fmt.Errorf("persist: read %s: %w", walName(num), err)
		}
		payload, _, ok, sealed := nextRecord(buf, num)
		if !ok {
			if !sealed && w.validFollows(r, left-int64(need), num) {
				// NB: not refused: after a power loss during an unsynced
				// write the kernel may have written a later page and not
				// an earlier one, so this is also what a torn tail of
				// never-acknowledged records can look like; refusing would
				// turn that power loss into an outage. But it is also what
				// a damaged disk looks like, so say so.
				slog.Warn("write-ahead log: a damaged record is followed by valid ones; the replay ends at it (a power loss during an unsynced write can leave this; so can a damaged disk, and then acknowledged writes after it are lost)",
					"file", walName(num), "offset", st.Size()-left)
			}
			return sealed, nil
		}
		if err := fn(payload); err != nil {
			return false, err
		}
		left -= int64(need)
	}
	return false, nil
}

// validFollows reports whether the record after a bad one (at r, with left
// bytes of the file from there) is a valid record or seal of file num.
func (w *wal) validFollows(r *bufio.Reader, left int64, num uint64) bool {
	if left < walHeader {
		return false
	}
	head, err := r.Peek(walHeader)
	if err != nil {
		return false
	}
	n := int64(binary.LittleEndian.Uint32(head))
	if n > left-walHeader || n > 64<<20 {
		return false
	}
	buf := make([]byte, walHeader+n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return false
	}
	_, _, ok, sealed := nextRecord(buf, num)
	return ok || sealed
}

// nextRecord decodes the record at the head of data, written to file num.
// sealed reports the seal (the empty record rotation ends a file with);
// otherwise !ok is the end of what file num wrote.
func nextRecord(data []byte, num uint64) (payload, rest []byte, ok, sealed bool) {
	if len(data) < walHeader {
		return nil, nil, false, false
	}
	n := uint64(binary.LittleEndian.Uint32(data))
	if n > uint64(len(data)-walHeader) {
		return nil, nil, false, false
	}
	end := walHeader + int(n)
	if crc32.Checksum(data[8:end], crcTable) != binary.LittleEndian.Uint32(data[4:]) ||
		binary.LittleEndian.Uint64(data[8:]) != num {
		return nil, nil, false, false
	}
	if n == 0 {
		return nil, nil, false, true
	}
	return data[walHeader:end], data[end:], true, false
}

// appendRecord encodes payload as a record of file num.
func appendRecord(buf []byte, num uint64, payload []byte) []byte {
	start := len(buf)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = binary.LittleEndian.AppendUint64(buf, num)
	buf = append(buf, payload...)
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(buf[start+8:], crcTable))
	return buf
}

// commit logs b, syncs the log when sync is set, and applies b to Pebble
// (P2). A failed write or sync fails this and every later commit.
func (w *wal) commit(b *pebble.Batch, sync bool) error {
	if err := w.log(b, sync); err != nil {
		return err
	}
	return w.apply(b)
}

// log writes b to the log, and syncs it when sync. Unless it fails, the
// caller must then apply b (apply) before anything else is logged: log
// waits for that (W4).
func (w *wal) log(b *pebble.Batch, sync bool) (err error) {
	w.turn <- struct{}{}
	defer func() {
		if err != nil {
			<-w.turn // nothing to apply
		}
	}()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	if err := w.bg.get(); err != nil {
		// P6: Pebble cannot write its files (a full disk the pre-allocated
		// log does not notice, a vanished directory); its memtables would
		// fill and Apply stall for good, with the committing event loop
		// inside it. Refused before it is logged: nothing of it is durable.
		w.err = fmt.Errorf("persist: storage cannot write its files: %w", err)
		return w.err
	}
	repr := b.Repr()
	if uint64(len(repr)) > 1<<32-1-walHeader {
		return fmt.Errorf("persist: batch of %d bytes is too large to log", len(repr))
	}
	w.buf = appendRecord(w.buf[:0], w.num, repr)
	if cap(w.buf) > 4<<20 {
		defer func() { w.buf = nil }() // do not pin a large buffer
	}
	if _, err := w.f.Write(w.buf); err != nil {
		w.err = fmt.Errorf("persist: write-ahead log write: %w", err)
		return w.err
	}
	w.off += int64(len(w.buf))
	if sync {
		if err := w.f.SyncData(); err != nil {
			w.err = fmt.Errorf("persist: write-ahead log sync: %w", err)
			return w.err
		}
	}
	w.unapplied = true
	return nil
}

// usableLocked is nil unless the log failed (sticky, D6) or is closed.
func (w *wal) usableLocked() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return pebble.ErrClosed
	}
	return nil
}

// apply applies b, which log just wrote, to Pebble, and rotates the log
// file when it is full. It is what gives the next log its turn (W4).
func (w *wal) apply(b *pebble.Batch) error {
	defer func() { <-w.turn }()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	// NB: not only Apply: the rotation's AsyncFlush below waits in the
	// same throttle, one memtable earlier.
	w.enterPebble()
	defer w.leavePebble()
	if err := w.pdb.Apply(b, pebble.NoSync); err != nil {
		// Logged but not applied: it is replayed at the next open; this
		// process cannot go on as if it were not written.
		w.err = fmt.Errorf("persist: apply: %w", err)
		return w.err
	}
	w.unapplied = false
	if !w.flushing && (w.off >= w.maxFile || w.prepared && w.off > w.size) {
		w.rotateLocked()
	} else if w.off > w.size+min(prepAfter, w.maxFile/4) && !w.preparing && !w.prepared && !w.prepTried {
		w.preparing, w.prepTried = true, true
		w.flushed.Add(1)
		go w.prepare()
	}
	return nil
}

// prepAfter is how far past its size a file grows before prepare starts.
const prepAfter = 64 << 10

// prepare zero-fills the next log file in the background. NB: an fdatasync
// after writing into blocks the file already has on disk needs no journal
// commit for its size and extents; one after an append does. Measured on
// this machine: 97 µs against 142 µs per 2 KB write+fdatasync
// (bench/fsyncprobe-style loop), and durable SETs with 50 clients went
// from 0.78–0.84× to 0.85–1.04× Redis-always per round with every commit
// going to a zero-filled file (paired runs of the prototype). A recycled
// file has its blocks already; a new one (a fresh data directory, or the
// small file left by a clean close) is used while this runs, then swapped
// for the prepared one at once.
//
// NB: on a nearly full disk the fill would take the space the current
// file needs to grow into, and a failed log write fail-stops the store
// (D6); so it runs only while the disk has room for several files.
func (w *wal) prepare() {
	defer w.flushed.Done()
	name := w.fs.PathJoin(w.dir, walPrepName)
	err := errNoRoom
	if du, derr := w.fs.GetDiskUsage(w.dir); derr != nil || du.AvailBytes >= uint64(prepRoomFiles*w.maxFile) {
		err = w.zeroFill(name)
	}
	if err != nil {
		if rerr := w.fs.Remove(name); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			slog.Warn("write-ahead log: remove", "file", walPrepName, "err", rerr)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.preparing = false
	if err != nil {
		if err != errNoRoom {
			slog.Warn("write-ahead log: cannot prepare the next file", "err", err)
		}
		return
	}
	w.prepared = !w.closed
}

// prepRoomFiles: prepare runs only while the disk has room for this many
// log files.
const prepRoomFiles = 8

var errNoRoom = errors.New("not enough free disk space to prepare a log file")

func (w *wal) zeroFill(name string) error {
	f, err := w.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	zeros := make([]byte, min(1<<20, w.maxFile))
	for n := int64(0); n < w.maxFile && err == nil; n += int64(len(zeros)) {
		_, err = f.Write(zeros)
	}
	if err == nil {
		err = f.Sync() // data and size: the blocks are the file's now
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rotateLocked moves new records to the next file and checkpoints the
// current one in the background (W3). A failure to get a new file keeps
// the current one: nothing is lost, the file only grows.
func (w *wal) rotateLocked() {
	if w.off < w.retryAt {
		return // the last attempt failed: retry a quarter file later
	}
	w.retryAt = w.off + w.maxFile/4
	f, size, err := w.newFile(w.num + 1)
	if err != nil {
		w.prepTried = false // a prepared file may yet get it going
		slog.Warn("write-ahead log: cannot start a new file; the current one grows", "err", err)
		return
	}
	// Seal the file (W1): replay then tells a file that ended here from
	// one that lost records in the middle. The new file is synced into the
	// directory already, but holds no record yet, so until the seal is on
	// disk this file still counts as the last.
	_, err = w.f.Write(appendRecord(nil, w.num, nil))
	if err == nil {
		err = w.f.SyncData()
	}
	if err != nil {
		f.Close()
		w.err = fmt.Errorf("persist: write-ahead log seal: %w", err)
		return
	}
	if err := w.f.Close(); err != nil {
		slog.Warn("write-ahead log: close", "err", err)
	}
	w.old = append(w.old, w.num)
	w.f, w.num, w.off, w.size, w.retryAt = f, w.num+1, 0, size, 0
	w.prepTried = false
	if err := w.setCheckpoint(w.num); err != nil {
		slog.Warn("write-ahead log: checkpoint", "err", err)
		return // the old files stay until a later checkpoint
	}
	// NB: the memtable is cut here, under mu, right after the checkpoint:
	// the flush holds only synced batches (W3), and a failing one (P6) is
	// waited for only until Pebble reports it, not for ever as Flush would.
	flushed, err := w.pdb.AsyncFlush()
	if err != nil {
		slog.Warn("write-ahead log: checkpoint flush", "err", err)
		return // the old files stay until a later checkpoint
	}
	done := w.old
	w.old = nil
	w.flushing = true
	w.flushed.Add(1)
	go func() {
		defer w.flushed.Done()
		var err error
		select {
		case <-flushed:
		case <-w.bg.done():
			err = w.bg.get()
		}
		w.mu.Lock()
		w.flushing = false
		if err != nil {
			w.old = append(done, w.old...)
			w.mu.Unlock()
			slog.Warn("write-ahead log: checkpoint flush", "err", err)
			return
		}
		w.spares = append(w.spares, done...)
		drop := w.trimSpares()
		w.mu.Unlock()
		w.remove(drop)
	}()
}

// trimSpares keeps the newest maxSpares spares of full size and returns
// the rest. NB: a smaller file, once reused, would be appended to past its
// size, and an fdatasync after an append costs a journal commit (see
// prepare): measured, durable SETs after a pipelined load that had reused
// the small first file ran ~10% slower until the log moved on.
func (w *wal) trimSpares() (drop []uint64) {
	slices.Sort(w.spares)
	keep := w.spares[:0]
	for _, num := range w.spares {
		st, err := w.fs.Stat(w.fs.PathJoin(w.dir, walName(num)))
		if err != nil || st.Size() < w.maxFile {
			drop = append(drop, num)
			continue
		}
		keep = append(keep, num)
	}
	w.spares = keep
	if len(w.spares) > maxSpares {
		drop = append(drop, w.spares[:len(w.spares)-maxSpares]...)
		w.spares = slices.Clone(w.spares[len(w.spares)-maxSpares:])
	}
	return drop
}

func (w *wal) remove(nums []uint64) {
	for _, num := range nums {
		if err := w.fs.Remove(w.fs.PathJoin(w.dir, walName(num))); err != nil {
			slog.Warn("write-ahead log: remove", "file", walName(num), "err", err)
		}
	}
}

// newFile returns file num ready for records, and its size: the prepared
// file renamed, else a spare renamed, else a new file; either way its
// directory is synced first (W1).
func (w *wal) newFile(num uint64) (vfs.File, int64, error) {
	name := w.fs.PathJoin(w.dir, walName(num))
	var f vfs.File
	var err error
	// NB: ReuseForWrite renames before it opens: once tried, the old name
	// is gone whatever the result, so it leaves the lists at once, and a
	// failure falls through to the next way of getting a file.
	if w.prepared {
		w.prepared = false
		f, err = w.fs.ReuseForWrite(w.fs.PathJoin(w.dir, walPrepName), name, vfs.WriteCategoryUnspecified)
	}
	for f == nil && len(w.spares) > 0 {
		old := w.spares[0]
		w.spares = w.spares[1:]
		f, err = w.fs.ReuseForWrite(w.fs.PathJoin(w.dir, walName(old)), name, vfs.WriteCategoryUnspecified)
	}
	if f == nil {
		f, err = w.fs.Create(name, vfs.WriteCategoryUnspecified)
	}
	if err != nil {
		return nil, 0, err
	}
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	d, err := w.fs.OpenDir(w.dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("persist: sync the data directory: %w", err)
	}
	return f, size, nil
}

// diskUsage is the size of the log's files, spares and the prepared one
// included.
func (w *wal) diskUsage() uint64 {
	names, err := w.fs.List(w.dir)
	if err != nil {
		return 0
	}
	var n uint64
	for _, name := range names {
		if _, ok := parseWALName(name); !ok && name != walPrepName {
			continue
		}
		if st, err := w.fs.Stat(w.fs.PathJoin(w.dir, name)); err == nil {
			n += uint64(st.Size())
		}
	}
	return n
}

// abandon closes the file without a checkpoint (Open failed after the log
// opened): the log stays as it is and is replayed next time.
func (w *wal) abandon() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.flushed.Wait()
	w.f.Close()
}

// close checkpoints everything (so the next open replays nothing) and
// closes the file. On a failure the log stays and is replayed.
//
// NB: Pebble does not return a failed table write: it retries in the
// background, and its Flush waits for ever. Once Pebble has reported one
// (P6), close and the checkpoints stop waiting. A writer already inside
// Pebble's write throttle when the first failure came (its memtables were
// full: a burst that outran the flushes) stays there, and so would close:
// the binary's shutdown watchdog then ends the process. Nothing
// acknowledged is lost: it is all in the log.
func (w *wal) close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.flushed.Wait() // the checkpoint flush and prepare
	w.mu.Lock()
	defer w.mu.Unlock()
	var cerr error
	if w.err == nil {
		// NB: commits made without sync (storage.fsync: false) are durable
		// once Close returns nil, also when no final checkpoint can be
		// made below (P6): then only the log holds them.
		cerr = w.f.SyncData()
	}
	cerr = errors.Join(cerr, w.f.Close())
	if err := w.fs.Remove(w.fs.PathJoin(w.dir, walPrepName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		slog.Warn("write-ahead log: remove", "file", walPrepName, "err", err)
	}
	if w.unapplied && w.err == nil {
		// The caller closes between a Log and its Apply: the final
		// checkpoint would cover a batch Pebble does not have (W3).
		w.err = errors.New("persist: closed with a logged batch not applied; the next open replays it")
	}
	if w.err != nil || w.bg.get() != nil {
		// Fail-stopped (or Pebble cannot flush, P6, which would hang the
		// final flush): the log is what recovery replays, and Close says
		// why the shutdown was not clean.
		return errors.Join(cerr, w.err, w.bg.get())
	}
	w.enterPebble()
	defer w.leavePebble()
	if err := w.setCheckpoint(w.num + 1); err != nil {
		return err
	}
	if err := w.flushOrFail("final flush"); err != nil {
		return errors.Join(cerr, err) // the log is what recovery replays; the files stay
	}
	// Every file is below the checkpoint now: keep the newest for reuse.
	w.spares = append(append(w.spares, w.old...), w.num)
	w.old = nil
	w.remove(w.trimSpares())
	return cerr
}
