package persist

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// P6: when Pebble cannot write its files (here: the disk is full for new
// files, while the pre-allocated log still takes writes), commits fail
// with an error instead of stalling for good in Pebble's write throttle;
// reads keep working, Close returns, and after a restart with space every
// committed batch is there.
func TestAStorageThatCannotFlushRefusesCommitsInsteadOfStalling_P6(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	db, err := Open(dir, Options{FS: fs, MemTableBytes: 256 << 10, WALFileBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) []byte { return DataKey("a", fmt.Sprintf("k%06d", i)) }
	val := bytes.Repeat([]byte("v"), 1024)
	commit := func(i int) error {
		b := db.NewBatch()
		b.PutRecord(key(i), &Record{Type: TypeString, Create: uint64(i + 1), Mod: uint64(i + 1), Value: val})
		done := make(chan error, 1)
		go func() { done <- db.Commit(b, true) }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("commit %d stalled for 10 s", i)
			return nil
		}
	}
	n := 0
	for ; n < 100; n++ {
		if err := commit(n); err != nil {
			t.Fatalf("commit %d before the disk filled: %v", n, err)
		}
	}
	fs.FillNewFiles()
	var failed error
	for ; n < 20000; n++ { // ~20 MB: many memtables' worth
		if failed = commit(n); failed != nil {
			break
		}
	}
	if failed == nil {
		t.Fatal("every commit succeeded although Pebble could not flush")
	}
	if !errors.Is(failed, syscall.ENOSPC) || !strings.Contains(failed.Error(), "cannot write its files") {
		t.Fatalf("commit error %v does not say the storage cannot write", failed)
	}
	if err := commit(n + 1); err == nil {
		t.Fatal("a commit after the failure succeeded")
	}
	for _, i := range []int{0, n / 2, n - 1} { // reads still work
		if _, ok, err := db.GetRecord(key(i)); err != nil || !ok {
			t.Fatalf("read of committed key %d: %v %v", i, ok, err)
		}
	}
	db = closeAndReopen(t, db, dir, fs)
	defer db.Close()
	for i := 0; i < n; i++ {
		if _, ok, err := db.GetRecord(key(i)); err != nil || !ok {
			t.Fatalf("after a restart, committed key %d of %d: %v %v", i, n, ok, err)
		}
	}
	if _, ok, _ := db.GetRecord(key(n)); ok {
		t.Fatal("the refused commit is there after a restart")
	}
	t.Logf("%d commits, then: %v", n, failed)
}

// P6 at Close: an idle store whose final flush cannot write its table
// closes (a shutdown on a full disk must not hang), and its log keeps
// every committed batch for the restart.
func TestCloseReturnsWhenTheFinalFlushCannotWrite_P6(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	db, err := Open(dir, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		b := db.NewBatch()
		b.PutRecord(DataKey("a", fmt.Sprint(i)), &Record{Type: TypeString, Create: 1, Mod: 1, Value: []byte("v")})
		if err := db.Commit(b, true); err != nil {
			t.Fatal(err)
		}
	}
	fs.FillNewFiles()
	db = closeAndReopen(t, db, dir, fs)
	defer db.Close()
	for i := 0; i < 100; i++ {
		if _, ok, err := db.GetRecord(DataKey("a", fmt.Sprint(i))); err != nil || !ok {
			t.Fatalf("after a restart, committed key %d: %v %v", i, ok, err)
		}
	}
}

// closeAndReopen closes db, failing the test when that takes 10 s (a
// flush that cannot write must not hang it), frees fs's space and opens
// dir again on the real disk.
func closeAndReopen(t *testing.T, db *DB, dir string, fs *faultfs.FS) *DB {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a flush that cannot write")
	}
	fs.Free()
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// P6 without a commit after the failure: a flush fails while the store
// is otherwise idle. The store says so at once (StorageErr, which core's
// health check reads), Pebble's endless retries of the flush are slowed
// to a few a second (they took more than a core), and Close returns.
func TestAFailedFlushWithNoCommitSinceIsReportedThrottledAndClosable_P6(t *testing.T) {
	dir := t.TempDir()
	fs := faultfs.New(vfs.Default)
	db, err := Open(dir, Options{FS: fs, MemTableBytes: 256 << 10, WALFileBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	fs.FillNewFiles()
	n := 0
	for ; db.StorageErr() == nil; n++ { // until a memtable fills and its flush fails
		if n == 20000 {
			t.Fatal("no flush failed after 20 MB of commits")
		}
		b := db.NewBatch()
		b.PutRecord(DataKey("a", fmt.Sprintf("k%06d", n)), &Record{Type: TypeString, Create: 1, Mod: 1, Value: bytes.Repeat([]byte("v"), 1024)})
		if err := db.Commit(b, true); err != nil {
			if db.StorageErr() != nil {
				// The flush failed between the loop's check and this
				// commit, which P6 then refused: not committed.
				break
			}
			t.Fatalf("commit %d: %v", n, err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	before := fs.Creates()
	time.Sleep(time.Second)
	t.Logf("%d file creations in the second after the failure", fs.Creates()-before)
	if tries := fs.Creates() - before; tries > 25 {
		t.Fatalf("%d file creations in a second after the failure: the retries are not slowed to one per 100 ms (P6)", tries)
	}
	db = closeAndReopen(t, db, dir, fs)
	defer db.Close()
	for i := 0; i < n; i++ {
		if _, ok, err := db.GetRecord(DataKey("a", fmt.Sprintf("k%06d", i))); err != nil || !ok {
			t.Fatalf("after a restart, committed key %d of %d: %v %v", i, n, ok, err)
		}
	}
}

// P7: a commit already inside Pebble's write throttle when the storage
// fails (a burst that outran the flushes of a slow disk) cannot be
// refused by P6 any more: it waits for a flush that fails as long as the
// failure lasts, in Apply or in the rotation's AsyncFlush right after it
// (the small log file makes it the latter). Stalled reports it, so the
// binary can exit and be restarted instead of hanging; a throttle that
// merely waits for a slow flush is not a stall, the wait is counted from
// the failure, and once the storage recovers, the commit ends.
func TestACommitStuckInPebblesThrottleAfterAFailureIsReportedStalled_P7(t *testing.T) {
	for _, walBytes := range []int64{64 << 20, 800 << 10} {
		t.Run(fmt.Sprintf("log file %d KiB", walBytes>>10), func(t *testing.T) {
			db, fs := openFaulty(t, walBytes)
			stuck := stallACommit(t, db, fs)
			time.Sleep(500 * time.Millisecond) // it has waited 1.5 s now
			if err := db.Stalled(0); err != nil {
				t.Fatalf("a commit waiting for a slow flush is reported stalled: %v", err)
			}
			fs.FailSyncs() // the flush fails, and so does every retry
			waitFor(t, "a storage error", func() bool { return db.StorageErr() != nil })
			if err := db.Stalled(time.Second); err != nil {
				t.Fatalf("reported stalled at the failure (the wait must count from it): %v", err)
			}
			waitFor(t, "a stall", func() bool { return db.Stalled(100*time.Millisecond) != nil })
			if err := db.Stalled(100 * time.Millisecond); !errors.Is(err, faultfs.ErrInjectedSync) {
				t.Fatalf("Stalled = %v, want the storage's error", err)
			}
			fs.ReleaseSyncs() // the storage recovers: a retried flush succeeds
			commitEnds(t, db, stuck)
			if err := db.Close(); err != nil {
				t.Logf("close after the failure: %v", err)
			}
		})
	}
}

// A failure that clears at Pebble's next retry, under a commit that had
// waited longer than the limit for a slow flush: not a stall.
func TestATransientFailureUnderALongWaitIsNotAStall_P7(t *testing.T) {
	db, fs := openFaulty(t, 64<<20)
	stuck := stallACommit(t, db, fs)
	fs.FailSyncs()
	waitFor(t, "a storage error", func() bool { return db.StorageErr() != nil })
	if err := db.Stalled(time.Second); err != nil {
		t.Fatalf("a commit that waited 1 s for a slow flush is reported stalled at a transient failure: %v", err)
	}
	fs.ReleaseSyncs() // the next retry of the flush succeeds
	commitEnds(t, db, stuck)
	db.Close()
}

// A restart on a disk with room for Pebble's MANIFEST but not for a table
// (Pebble deletes a failed partial table, which frees a little): the
// replay of the log, or the flush after it, waits for a flush that cannot
// succeed. Open returns an error after openStallWait instead of hanging,
// and a later open with space has every committed write.
func TestOpenOnADiskFullForTablesFailsInsteadOfHanging_P7(t *testing.T) {
	defer func(d time.Duration) { openStallWait = d }(openStallWait)
	openStallWait = 300 * time.Millisecond
	for _, n := range []int{10, 3000} { // the flush after the replay; the replay
		t.Run(fmt.Sprintf("%d commits", n), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			db, err := Open("db", Options{FS: mem, MemTableBytes: 256 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			val := bytes.Repeat([]byte("v"), 1024)
			for i := 0; i < n; i++ {
				b := db.NewBatch()
				b.PutRecord(DataKey("a", fmt.Sprintf("k%06d", i)), &Record{Type: TypeString, Create: 1, Mod: 1, Value: val})
				if err := db.Commit(b, true); err != nil {
					t.Fatal(err)
				}
			}
			full := faultfs.New(mem.CrashClone(vfs.CrashCloneCfg{}))
			full.FillNewTables()
			opened := make(chan error, 1)
			go func() {
				c, err := Open("db", Options{FS: full, MemTableBytes: 256 << 10})
				if err == nil {
					c.Close()
				}
				opened <- err
			}()
			select {
			case err := <-opened:
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Open on a disk full for tables = %v, want the ENOSPC", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Open on a disk full for tables hung")
			}
			c, err := Open("db", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, i := range []int{0, n - 1} {
				if _, ok, err := c.GetRecord(DataKey("a", fmt.Sprintf("k%06d", i))); err != nil || !ok {
					t.Fatalf("with space, committed key %d: %v %v", i, ok, err)
				}
			}
		})
	}
}

// openFaulty opens a store on a faultfs over a temporary directory.
func openFaulty(t *testing.T, walBytes int64) (*DB, *faultfs.FS) {
	t.Helper()
	fs := faultfs.New(vfs.Default)
	db, err := Open(t.TempDir(), Options{FS: fs, MemTableBytes: 256 << 10, WALFileBytes: walBytes})
	if err != nil {
		t.Fatal(err)
	}
	return db, fs
}

// stallACommit holds the syncs of Pebble's tables (its flushes cannot
// finish) and commits until one commit waits in Pebble's throttle for a
// second; it returns that commit's result. From then on, FailSyncs and
// ReleaseSyncs act on the tables' syncs only.
func stallACommit(t *testing.T, db *DB, fs *faultfs.FS) chan error {
	t.Helper()
	val := bytes.Repeat([]byte("v"), 1024)
	fs.OnlyTableSyncs()
	fs.HoldSyncs()
	for n := 0; n < 20000; n++ {
		b := db.NewBatch()
		b.PutRecord(DataKey("a", fmt.Sprintf("k%06d", n)), &Record{Type: TypeString, Create: 1, Mod: 1, Value: val})
		done := make(chan error, 1)
		go func() { done <- db.Commit(b, false) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("commit %d: %v", n, err)
			}
		case <-time.After(time.Second):
			return done
		}
	}
	t.Fatal("no commit waited for Pebble although its flushes could not finish")
	return nil
}

// commitEnds checks that the commit that waited in Pebble's throttle
// succeeds once the storage works again, and that no stall is reported
// after it.
func commitEnds(t *testing.T, db *DB, stuck chan error) {
	t.Helper()
	select {
	case err := <-stuck:
		if err != nil {
			t.Fatalf("the commit that waited: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the commit still waits 10 s after the storage recovered")
	}
	if err := db.Stalled(0); err != nil {
		t.Fatalf("Stalled with no commit in Pebble: %v", err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

// Between Pebble's error being recorded and its time being stored, a
// commit already in Pebble is not reported as stalled: held would be
// counted from the commit alone, and a slow commit that merely met a
// fresh failure would read as a stall (P7).
func TestStalledIgnoresAFailureWhoseTimeIsNotYetStored_P7(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.wal.enterPebble()
	defer db.wal.leavePebble()
	time.Sleep(20 * time.Millisecond) // the commit is 20 ms in Pebble
	failure := errors.New("injected")
	db.wal.bg.err.Store(&failure) // as set does, before it stores at
	defer db.wal.bg.err.Store(nil)
	if err := db.Stalled(time.Millisecond); err != nil {
		t.Fatalf("Stalled with the failure's time not yet stored: %v", err)
	}
	db.wal.bg.at.Store(monoNow() - int64(50*time.Millisecond))
	if err := db.Stalled(time.Millisecond); !errors.Is(err, failure) {
		t.Fatalf("Stalled once the time is stored: %v, want the failure", err)
	}
}
