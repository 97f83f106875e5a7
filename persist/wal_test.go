package persist

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

func putT(t *testing.T, db *DB, id string, v int, sync bool) {
	t.Helper()
	b := db.NewBatch()
	b.PutRecord(DataKey("a", id), &Record{Type: TypeString, Create: 1, Mod: uint64(v), Value: []byte(strconv.Itoa(v))})
	b.SetRevision(uint64(v))
	if err := db.Commit(b, sync); err != nil {
		t.Fatalf("commit %s=%d: %v", id, v, err)
	}
}

func getT(t *testing.T, db *DB, id string) string {
	t.Helper()
	r, ok, err := db.GetRecord(DataKey("a", id))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "<absent>"
	}
	return string(r.Value)
}

func walFiles(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := parseWALName(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// A crash at any point of a log that rotates every few records keeps every
// synced write at its last value: nothing is lost and no key rolls back to
// an older value (W1, W2, W3), while checkpoints recycle old files.
func TestRotatingLogSurvivesACrashAtAnyCommit_W1_W2_W3(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem, WALFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	last := map[string]int{}
	for i := 1; i <= 300; i++ {
		// A key written once (its loss shows a dropped file) and one of
		// seven rewritten ones (a rollback shows a stale replay).
		for _, id := range []string{fmt.Sprintf("u%d", i), fmt.Sprintf("k%d", i%7)} {
			putT(t, db, id, i, true)
			last[id] = i
		}
		if i%3 != 0 {
			// Let the checkpoint flush finish, so that the log rotates
			// (and recycles) often; otherwise commits go on meanwhile,
			// and the crash below may hit a flush in progress.
			db.wal.flushed.Wait()
			continue
		}
		c, err := Open("db", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{}), WALFileBytes: 600})
		if err != nil {
			t.Fatalf("open the crash clone after %d commits: %v", i, err)
		}
		for id, v := range last {
			if got := getT(t, c, id); got != strconv.Itoa(v) {
				t.Fatalf("after a crash at commit %d: %s = %s, want %d", i, id, got, v)
			}
		}
		if c.Revision != uint64(i) {
			t.Fatalf("after a crash at commit %d: revision %d", i, c.Revision)
		}
		c.Close()
	}
	if n := len(walFiles(t, mem, "db")); n > maxSpares+3 {
		t.Fatalf("%d log files after 300 commits of a 600-byte log: old files are not recycled", n)
	}
}

// Replay ends at the first record that is short, fails its CRC or was
// written to another file (a recycled file's old content) (W2).
func TestReplayStopsAtATornCorruptOrStaleRecord_W2(t *testing.T) {
	good := appendRecord(nil, 5, []byte("one"))
	good = appendRecord(good, 5, []byte("two"))
	cases := map[string][]byte{
		"torn":                appendRecord(nil, 5, []byte("three"))[:walHeader+2],
		"corrupt":             func() []byte { r := appendRecord(nil, 5, []byte("three")); r[len(r)-1] ^= 1; return r }(),
		"stale":               appendRecord(nil, 4, []byte("three")),
		"zeros":               make([]byte, 64),
		"another file's seal": appendRecord(nil, 4, nil),
	}
	for name, tail := range cases {
		data := append(bytes.Clone(good), tail...)
		data = appendRecord(data, 5, []byte("after")) // never reached
		var got []string
		for {
			p, rest, ok, sealed := nextRecord(data, 5)
			if sealed {
				t.Errorf("%s tail: read as a seal", name)
			}
			if !ok {
				break
			}
			got = append(got, string(p))
			data = rest
		}
		if fmt.Sprint(got) != "[one two]" {
			t.Errorf("%s tail: replayed %q, want [one two]", name, got)
		}
	}
}

// On a real disk a recycled log file is renamed, not truncated, so its old
// records follow the new ones. A child process writes with a log that
// rotates every few records (waiting for checkpoints, so files get reused)
// and exits without closing, as after kill -9 once every write was
// acknowledged; the parent opens the directory, which replays the log,
// finds the last values, and closes it cleanly for the next round.
func TestRecycledLogFilesOnDiskReplayOnlyTheirOwnRecords_W1_W2(t *testing.T) {
	if dir := os.Getenv("CDB_WAL_CHILD_DIR"); dir != "" {
		round, _ := strconv.Atoi(os.Getenv("CDB_WAL_CHILD_ROUND"))
		db, err := Open(dir, Options{WALFileBytes: 2048})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		for i := range 300 {
			putT(t, db, fmt.Sprintf("k%d", i%5), round*1000+i, true)
			putT(t, db, fmt.Sprintf("u%d.%d", round, i), i, true)
			db.wal.flushed.Wait()
		}
		os.Exit(0) // no Close: the log is all there is of the last records
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRecycledLogFilesOnDiskReplayOnlyTheirOwnRecords_W1_W2$")
		cmd.Env = append(os.Environ(), "CDB_WAL_CHILD_DIR="+dir, "CDB_WAL_CHILD_ROUND="+strconv.Itoa(round))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child round %d: %v\n%s", round, err, out)
		}
		if n := len(walFiles(t, vfs.Default, dir)); n < 2 {
			t.Fatalf("round %d: %d log files: the log did not rotate", round, n)
		}
		db, err := Open(dir, Options{WALFileBytes: 2048})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if got, want := getT(t, db, fmt.Sprintf("k%d", i)), strconv.Itoa(round*1000+295+i); got != want {
				t.Fatalf("round %d: k%d = %s, want %s", round, i, got, want)
			}
		}
		for r := 0; r <= round; r++ {
			for i := range 300 {
				if got := getT(t, db, fmt.Sprintf("u%d.%d", r, i)); got != strconv.Itoa(i) {
					t.Fatalf("round %d: u%d.%d = %s, want %d", round, r, i, got, i)
				}
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if n := len(walFiles(t, vfs.Default, dir)); n > maxSpares {
			t.Fatalf("%d log files after a clean close, want at most %d kept for reuse", n, maxSpares)
		}
	}
}

// After a failed log sync every later commit fails too, even once the disk
// works again: what the log holds is unknown (core's D6 relies on it).
func TestFailedLogSyncFailsEveryLaterCommit_P2(t *testing.T) {
	fs := faultfs.New(vfs.NewMem())
	db, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	putT(t, db, "before", 1, true)
	fs.FailSyncs()
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "x"), &Record{Type: TypeString, Value: []byte("x")})
	if err := db.Commit(b, true); err == nil {
		t.Fatal("commit with a failing sync returned nil")
	}
	fs.ReleaseSyncs()
	b = db.NewBatch()
	b.PutRecord(DataKey("a", "y"), &Record{Type: TypeString, Value: []byte("y")})
	if err := db.Commit(b, true); err == nil {
		t.Fatal("commit after a failed sync returned nil once the disk recovered")
	}
	if got := getT(t, db, "before"); got != "1" {
		t.Fatalf("data committed before the failure: %s, want 1", got)
	}
}

// Writes committed without sync are durable once the store is closed, and
// a clean close leaves nothing to replay (the checkpoint covers the log).
func TestCloseMakesUnsyncedCommitsDurable(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	putT(t, db, "k", 3, false)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open("db", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := getT(t, c, "k"); got != "3" {
		t.Fatalf("unsynced write after Close and a crash: %s, want 3", got)
	}
	if cp, err := c.wal.checkpoint(); err != nil || cp <= c.wal.num-1 {
		t.Fatalf("checkpoint %d (%v) does not cover the files before %d", cp, err, c.wal.num)
	}
}

// A format-1 directory (logged through Pebble's own WAL) opens with its
// synced writes, which only Pebble's WAL held, and is upgraded to format 2
// (P4); a crash right after keeps the upgrade.
func TestFormat1DirectoryIsReplayedAndUpgraded_P4(t *testing.T) {
	mem := vfs.NewCrashableMem()
	pdb, err := pebble.Open("db", &pebble.Options{FS: mem, LoggerAndTracer: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	k := DataKey("a", "k")
	if err := pdb.Set(metaFormat, []byte("1"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Set(k, AppendRecord(nil, &Record{Type: TypeString, Create: 1, Mod: 1, Value: []byte("old")}), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{}) // only Pebble's WAL has them
	pdb.Close()

	db, err := Open("db", Options{FS: crashed})
	if err != nil {
		t.Fatalf("open a format-1 directory: %v", err)
	}
	if got := getT(t, db, "k"); got != "old" {
		t.Fatalf("format-1 write: %s, want old", got)
	}
	again, err := Open("db", Options{FS: crashed.CrashClone(vfs.CrashCloneCfg{})})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if v, _, err := again.Get(metaFormat); err != nil || string(v) != strconv.Itoa(FormatVersion) {
		t.Fatalf("format after the upgrade and a crash: %q (%v)", v, err)
	}
	if got := getT(t, again, "k"); got != "old" {
		t.Fatalf("after the upgrade and a crash: %s, want old", got)
	}
}

// A fresh directory's first log file grows by appending, whose fdatasync is
// slower; the next file is zero-filled in the background and the log moves
// to it early, so later records overwrite blocks the file already has
// (prepare). A clean close leaves no prepared file behind.
func TestLogMovesToAZeroFilledFile(t *testing.T) {
	mem := vfs.NewMem()
	const size = 64 << 10
	db, err := Open("db", Options{FS: mem, WALFileBytes: size})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; db.wal.num == 1; i++ {
		if i == 10000 {
			t.Fatal("the log never left its first, appended-to file")
		}
		putT(t, db, "k", i, true)
		db.wal.flushed.Wait()
	}
	if db.wal.size < size {
		t.Fatalf("the second log file has %d bytes on disk, want a zero-filled %d", db.wal.size, size)
	}
	// The small first file is not kept for reuse: reused, it would be
	// appended to again.
	db.wal.flushed.Wait()
	db.wal.mu.Lock()
	spares := slices.Clone(db.wal.spares)
	db.wal.mu.Unlock()
	if slices.Contains(spares, 1) {
		t.Fatalf("the appended-to first file is kept for reuse (spares %v)", spares)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("db/" + walPrepName); err == nil {
		t.Fatal("a prepared log file is left after Close")
	}
}

// DiskUsage counts the log's files too: they hold up to a few times
// WALFileBytes, which Pebble's own figure leaves out.
func TestDiskUsageCountsTheLog(t *testing.T) {
	mem := vfs.NewMem()
	db, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := db.DiskUsage()
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "k"), &Record{Type: TypeString, Value: bytes.Repeat([]byte("v"), 100<<10)})
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if after := db.DiskUsage(); after < before+100<<10 {
		t.Fatalf("DiskUsage %d after logging 100 KiB, %d before", after, before)
	}
}

// holdTables blocks syncs of Pebble's sstables while held: a checkpoint
// flush then cannot finish.
type holdTables struct {
	mu   sync.Mutex
	hold chan struct{}
}

func (h *holdTables) MaybeError(op errorfs.Op) error {
	if op.Kind != errorfs.OpFileSync && op.Kind != errorfs.OpFileSyncData {
		return nil
	}
	if !strings.HasSuffix(op.Path, ".sst") {
		return nil
	}
	h.mu.Lock()
	c := h.hold
	h.mu.Unlock()
	if c != nil {
		<-c
	}
	return nil
}

func (h *holdTables) String() string { return "holdTables" }

// holdTablesT opens a store whose table syncs block until the returned
// release (also run at cleanup, before the store closes).
func holdTablesT(t *testing.T, mem vfs.FS) (*DB, func()) {
	return holdTablesOpts(t, Options{FS: mem, WALFileBytes: 600})
}

// holdTablesOpts is holdTablesT with other options (o.FS is wrapped).
func holdTablesOpts(t *testing.T, o Options) (*DB, func()) {
	h := &holdTables{}
	o.FS = errorfs.Wrap(o.FS, h)
	db, err := Open("db", o)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.hold = make(chan struct{})
	h.mu.Unlock()
	release := sync.OnceFunc(func() {
		h.mu.Lock()
		close(h.hold)
		h.hold = nil
		h.mu.Unlock()
	})
	t.Cleanup(func() { release(); db.Close() })
	return db, release
}

// While a checkpoint flush cannot finish, the log neither recycles nor
// deletes the files it covers (W3): a crash then keeps every write. NB:
// enough writes for many files' worth: a log that did not wait for the
// flush would rotate on, keep the covered files as spares and, once no
// prepared file is ready, reuse one (over writes that are in no table),
// or delete it past maxSpares; 60 writes had not got that far.
func TestNoLogFileIsReusedWhileItsCheckpointFlushIsStuck_W3(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, _ := holdTablesT(t, mem)
	const n = 400 // ~40 files of 600 bytes
	for i := 1; i <= n; i++ {
		putT(t, db, fmt.Sprintf("u%d", i), i, true)
	}
	c, err := Open("db", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{}), WALFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 1; i <= n; i++ {
		if got := getT(t, c, fmt.Sprintf("u%d", i)); got != strconv.Itoa(i) {
			t.Fatalf("crash during a stuck checkpoint flush: u%d = %s, want %d", i, got, i)
		}
	}
}

// A crash soon after a recovery keeps what the recovery replayed: replayed
// files are reused only once the replay is flushed (W2, W3).
func TestACrashRightAfterRecoveryKeepsReplayedWrites_W2_W3(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem, WALFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 40; i++ {
		putT(t, db, fmt.Sprintf("u%d", i), i, true)
	}
	crash1 := mem.CrashClone(vfs.CrashCloneCfg{})
	db.Close()
	c1, err := Open("db", Options{FS: crash1, WALFileBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	putT(t, c1, "after", 1, true) // overwrites the head of a reused file
	crash2 := crash1.CrashClone(vfs.CrashCloneCfg{})
	c1.Close()
	c2, err := Open("db", Options{FS: crash2})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for i := 1; i <= 40; i++ {
		if got := getT(t, c2, fmt.Sprintf("u%d", i)); got != strconv.Itoa(i) {
			t.Fatalf("after two crashes: u%d = %s, want %d", i, got, i)
		}
	}
	if got := getT(t, c2, "after"); got != "1" {
		t.Fatalf("after two crashes: after = %s, want 1", got)
	}
}

// One flipped byte in a log file that later files follow fails Open with
// an error naming the file, instead of replaying the later files over the
// gap and losing the writes after it silently (W1, W2).
func TestCorruptRecordBeforeLaterFilesFailsOpen_W2(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, _ := holdTablesT(t, mem) // the files stay above the checkpoint
	for i := 1; i <= 20; i++ {
		putT(t, db, fmt.Sprintf("u%d", i), i, true)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	name := "db/" + walName(1)
	f, err := crashed.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(f)
	off := 0
	for range 2 {
		_, rest, ok, _ := nextRecord(data[off:], 1)
		if !ok {
			t.Fatal("short file")
		}
		off = len(data) - len(rest)
	}
	if _, err := f.WriteAt([]byte{data[off+walHeader+5] ^ 0xff}, int64(off+walHeader+5)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err := Open("db", Options{FS: crashed, WALFileBytes: 600})
	if err == nil {
		c.Close()
		t.Fatal("Open replayed over a corrupt record that later log files follow")
	}
	if !strings.Contains(err.Error(), walName(1)) {
		t.Fatalf("Open error %q does not name %s", err, walName(1))
	}
}

// A crash between creating the next file and sealing the current one
// leaves an unsealed file followed by an empty one: that is the normal end
// of the log, not corruption (W1).
func TestUnsealedFileFollowedOnlyByEmptyFilesReplays_W1(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 1; i <= 5; i++ {
		putT(t, db, fmt.Sprintf("u%d", i), i, true)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	f, err := crashed.Create("db/"+walName(db.wal.num+1), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 4096))
	f.Close()
	c, err := Open("db", Options{FS: crashed})
	if err != nil {
		t.Fatalf("Open of a log ending unsealed before an empty file: %v", err)
	}
	defer c.Close()
	if got := getT(t, c, "u5"); got != "5" {
		t.Fatalf("u5 = %s, want 5", got)
	}
}

// The format key reaches Pebble's own tables when a directory is created,
// not only the log: a format-1 build, which reads Pebble alone, must find
// it after a crash and refuse the directory (P4), not take it for a new
// one and ignore the log.
func TestFormatKeyIsInPebbleRightAfterCreation_P4(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	putT(t, db, "k", 1, true)
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	db.Close()
	pdb, err := pebble.Open("db", &pebble.Options{FS: crashed, LoggerAndTracer: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	v, closer, err := pdb.Get(metaFormat)
	if err != nil {
		t.Fatalf("after a crash, Pebble alone has no format key (%v): a format-1 build would take the directory for a new one", err)
	}
	defer closer.Close()
	if string(v) != strconv.Itoa(FormatVersion) {
		t.Fatalf("format key in Pebble = %q", v)
	}
}

// lowSpaceFS reports a nearly full disk.
type lowSpaceFS struct{ vfs.FS }

func (lowSpaceFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	return vfs.DiskUsage{AvailBytes: 256 << 10, TotalBytes: 1 << 30}, nil
}

// On a nearly full disk no log file is zero-filled ahead of time: the fill
// would take the space the current file needs, and a failed log write
// fail-stops the store.
func TestNoFilePreparedOnANearlyFullDisk(t *testing.T) {
	fs := lowSpaceFS{vfs.NewMem()}
	db, err := Open("db", Options{FS: fs, WALFileBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range 2000 {
		putT(t, db, "k", i, true)
		db.wal.flushed.Wait()
		if _, err := fs.Stat("db/" + walPrepName); err == nil {
			t.Fatal("a log file is being zero-filled with 256 KiB free")
		}
	}
	if db.wal.num < 2 {
		t.Fatalf("the log did not rotate (file %d)", db.wal.num)
	}
}

// reuseOpenFails is a disk whose ReuseForWrite renames and then fails to
// open (EMFILE), once, when armed.
type reuseOpenFails struct {
	vfs.FS
	armed atomic.Bool
}

func (fs *reuseOpenFails) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(oldname, ".log") && fs.armed.CompareAndSwap(true, false) {
		if err := fs.FS.Rename(oldname, newname); err != nil {
			return nil, err
		}
		return nil, &os.PathError{Op: "open", Path: newname, Err: syscall.EMFILE}
	}
	return fs.FS.ReuseForWrite(oldname, newname, c)
}

// One failed open after ReuseForWrite's rename does not stop the log from
// rotating: the spare's old name is gone, and the next way of getting a
// file is tried.
func TestRotationGoesOnAfterAReusedFileFailedToOpen(t *testing.T) {
	fs := &reuseOpenFails{FS: vfs.NewMem()}
	db, err := Open("db", Options{FS: fs, WALFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	i := 0
	for spares := 0; spares == 0; i++ {
		putT(t, db, fmt.Sprintf("k%d", i%7), i, true)
		db.wal.flushed.Wait()
		db.wal.mu.Lock()
		spares = len(db.wal.spares)
		db.wal.mu.Unlock()
	}
	fs.armed.Store(true)
	for range 500 {
		i++
		putT(t, db, fmt.Sprintf("k%d", i%7), i, true)
		db.wal.flushed.Wait()
	}
	if fs.armed.Load() {
		t.Fatal("no file was reused: the failure was never injected")
	}
	db.wal.mu.Lock()
	off := db.wal.off
	db.wal.mu.Unlock()
	if off > 10*600 {
		t.Fatalf("the log stopped rotating: its current file has %d bytes (WALFileBytes 600)", off)
	}
}

// A directory of an unknown (newer) format is refused before its log is
// replayed, checkpointed or reused: refusing must not change it (P4).
func TestUnknownFormatIsRefusedBeforeTheLogIsTouched_P4(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	b.b.Set(metaFormat, []byte("3"), nil) // a newer build's directory
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if err := db.pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	putT(t, db, "k", 2, true) // only in the log
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	db.Close()
	files := func() string {
		var out []string
		for _, n := range walFiles(t, crashed, "db") {
			st, err := crashed.Stat("db/" + n)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s:%d", n, st.Size()))
		}
		return fmt.Sprint(out)
	}
	before := files()
	if c, err := Open("db", Options{FS: crashed}); err == nil {
		c.Close()
		t.Fatal("a format-3 directory was opened")
	} else if !strings.Contains(err.Error(), "P4") {
		t.Fatalf("Open error %q does not name P4", err)
	}
	if after := files(); after != before {
		t.Fatalf("refusing the directory changed its log: %s -> %s", before, after)
	}
}

// cloneAtEveryOp takes a crash clone of mem at every filesystem operation
// while armed, with the number of writes acknowledged by then; with
// unsynced > 0 a clone keeps that percentage of unsynced blocks (rng
// picks them).
type cloneAtEveryOp struct {
	mem      *vfs.MemFS
	armed    atomic.Bool
	acked    atomic.Int64
	unsynced int
	rng      *rand.Rand
	mu       sync.Mutex
	clones   []crashPoint
	// reuse keeps clones out of MemFS.ReuseForWrite. NB: that takes the
	// MemFS clone lock for reading twice (ReuseForWrite, then Rename), so
	// a CrashClone waiting in between deadlocks it (seen: 1 run in ~50).
	reuse sync.RWMutex
}

// reuseGuard is the MemFS under errorfs, with ReuseForWrite kept apart
// from clones. NB: errorfs does not wrap the file ReuseForWrite returns;
// with wrap, the guard does, so that crashes also fall inside writes and
// syncs of reused and prepared log files.
type reuseGuard struct {
	*vfs.MemFS
	c    *cloneAtEveryOp
	wrap bool
}

func (g reuseGuard) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	g.c.reuse.Lock()
	f, err := g.MemFS.ReuseForWrite(oldname, newname, cat)
	g.c.reuse.Unlock()
	if err != nil || !g.wrap {
		return f, err
	}
	return errorfs.WrapFile(f, g.c), nil
}

type crashPoint struct {
	fs    *vfs.MemFS
	acked int64
	op    string
}

func (c *cloneAtEveryOp) MaybeError(op errorfs.Op) error {
	if !c.armed.Load() {
		return nil
	}
	c.reuse.RLock()
	defer c.reuse.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	acked := c.acked.Load() // before the clone: every write it counts is synced by then
	cfg := vfs.CrashCloneCfg{}
	if c.unsynced > 0 {
		cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: c.unsynced, RNG: c.rng}
	}
	c.clones = append(c.clones, crashPoint{c.mem.CrashClone(cfg), acked, fmt.Sprint(op.Kind, " ", op.Path)})
	return nil
}

func (c *cloneAtEveryOp) String() string { return "cloneAtEveryOp" }

// A crash at any filesystem operation of a log that rotates, seals,
// checkpoints, reuses and prepares files every few commits — hundreds of
// crash points — opens with every acknowledged write (W1–W3).
func TestACrashAtEveryFilesystemOperationKeepsAcknowledgedWrites_W1_W2_W3(t *testing.T) {
	mem := vfs.NewCrashableMem()
	inj := &cloneAtEveryOp{mem: mem}
	db, err := Open("db", Options{FS: errorfs.Wrap(reuseGuard{mem, inj, false}, inj), WALFileBytes: 700})
	if err != nil {
		t.Fatal(err)
	}
	inj.armed.Store(true)
	for i := 1; i <= 150; i++ {
		putT(t, db, fmt.Sprintf("u%d", i), i, true)
		inj.acked.Store(int64(i))
		if i%2 == 0 {
			db.wal.flushed.Wait() // both: rotations during and after a flush
		}
	}
	inj.armed.Store(false)
	db.Close()
	if len(inj.clones) < 100 {
		t.Fatalf("only %d crash points", len(inj.clones))
	}
	for _, cp := range inj.clones {
		c, err := Open("db", Options{FS: cp.fs, WALFileBytes: 700})
		if err != nil {
			t.Fatalf("crash at %s (%d acknowledged): Open: %v", cp.op, cp.acked, err)
		}
		for i := int64(1); i <= cp.acked; i++ {
			if got := getT(t, c, fmt.Sprintf("u%d", i)); got != strconv.FormatInt(i, 10) {
				t.Fatalf("crash at %s (%d acknowledged): u%d = %s", cp.op, cp.acked, i, got)
			}
		}
		c.Close()
	}
}

// sealFails is a disk on which the log's seal (its only 16-byte write)
// fails, as a write can on a failing disk.
type sealFails struct{ vfs.FS }

type sealFailsFile struct{ vfs.File }

func (f sealFailsFile) Write(p []byte) (int, error) {
	if len(p) == walHeader {
		return 0, syscall.EIO
	}
	return f.File.Write(p)
}

func (fs sealFails) Create(n string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(n, c)
	if err != nil {
		return nil, err
	}
	return sealFailsFile{f}, nil
}

// A seal that cannot be written fail-stops the log like any failed log
// write: the file's end on disk is unknown, so no later commit is
// acknowledged (W1, core's D6); what was acknowledged survives a crash.
func TestAFailedSealFailsEveryLaterCommit_W1(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: sealFails{mem}, WALFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	acked := 0
	for i := 1; i <= 100; i++ {
		b := db.NewBatch()
		b.PutRecord(DataKey("a", fmt.Sprintf("u%d", i)), &Record{Type: TypeString, Value: []byte(strconv.Itoa(i))})
		if db.Commit(b, true) != nil {
			break
		}
		acked = i
	}
	if acked == 100 {
		t.Fatal("100 commits of a 600-byte log never rotated, or its failed seal went unnoticed")
	}
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "later"), &Record{Type: TypeString, Value: []byte("x")})
	if db.Commit(b, true) == nil {
		t.Fatal("a commit after a failed seal was acknowledged")
	}
	c, err := Open("db", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{}), WALFileBytes: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 1; i <= acked; i++ {
		if got := getT(t, c, fmt.Sprintf("u%d", i)); got != strconv.Itoa(i) {
			t.Fatalf("u%d = %s after a failed seal and a crash, want %d", i, got, i)
		}
	}
}
