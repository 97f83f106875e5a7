package persist

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// Found by review: after a failed log sync (fail-stop), Close reports nothing: the
// store's shutdown looks clean although the log's state is unknown and
// the checkpoint was skipped (TestFailedSyncIsReturnedNotFatal_P2's comment
// says Close "reports the WAL error again").
func TestCloseAfterAFailedSyncReportsIt_P2(t *testing.T) {
	fs := faultfs.New(vfs.NewMem())
	db, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	putT(t, db, "a", 1, true)
	fs.FailSyncs()
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "x"), &Record{Type: TypeString, Value: []byte("x")})
	if err := db.Commit(b, true); err == nil {
		t.Fatal("commit with a failing sync succeeded")
	}
	fs.ReleaseSyncs()
	if err := db.Close(); err == nil {
		t.Fatal("Close after a fail-stopped log returned nil")
	}
}

// Found by review: with a Pebble background error (P6), close skipped the
// checkpoint and returned nil without ever syncing the log, so writes
// committed without sync (storage.fsync: false) were lost by a power loss
// after a "successful" Close. Close now syncs the log and reports the error.
func TestCloseWithAStorageErrorSyncsUnsyncedCommits_P6(t *testing.T) {
	mem := vfs.NewCrashableMem()
	fs := faultfs.New(mem)
	db, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	putT(t, db, "k", 3, false) // storage.fsync: false
	fs.FillNewTables()
	flushed, err := db.pdb.AsyncFlush() // any flush: Pebble's own, here forced
	if err != nil {
		t.Fatal(err)
	}
	_ = flushed
	waitFor(t, "a storage error", func() bool { return db.StorageErr() != nil })
	if err := db.Close(); err == nil {
		t.Fatal("Close with a storage error returned nil")
	}
	c, err := Open("db", Options{FS: mem.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := getT(t, c, "k"); got != "3" {
		t.Fatalf("Close, then a power loss: k = %s, want 3 (the log was not synced)", got)
	}
}
