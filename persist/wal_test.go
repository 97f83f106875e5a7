package persist

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

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
		"torn":    appendRecord(nil, 5, []byte("three"))[:walHeader+2],
		"corrupt": func() []byte { r := appendRecord(nil, 5, []byte("three")); r[len(r)-1] ^= 1; return r }(),
		"stale":   appendRecord(nil, 4, []byte("three")),
		"zeros":   make([]byte, 64),
	}
	for name, tail := range cases {
		data := append(bytes.Clone(good), tail...)
		data = appendRecord(data, 5, []byte("after")) // never reached
		var got []string
		for {
			p, rest, ok := nextRecord(data, 5)
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
