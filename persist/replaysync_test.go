package persist

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Found by review: replay reads the log through the page cache, which after a kill -9
// can hold a record whose fdatasync never completed (the commit in flight,
// never acknowledged). Replay applies it, Pebble may flush its effects
// before the checkpoint (here: a batch of more than half a memtable, which
// Pebble flushes on its own at once), and a power loss then leaves Pebble
// with that batch while the log on disk ends before it. The next replay
// re-applies the older batches over it: the batch is half undone (P3) and
// the revision counter goes back below revisions that keys hold (D2).
func TestReplayedRecordsAreSyncedFirst_P3_D2(t *testing.T) {
	const memt = 256 << 10
	mem := vfs.NewCrashableMem()
	db, err := Open("db", Options{FS: mem, MemTableBytes: memt, WALFileBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		putT(t, db, "k", i, true) // acknowledged: k = 10, revision 10
	}
	// The commit in flight at the kill: written to the log, its fdatasync
	// not yet returned, so not applied to Pebble and not acknowledged.
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "k"), &Record{Type: TypeString, Create: 1, Mod: 11, Value: []byte("11")})
	for j := 0; j < 1300; j++ { // > 4 memtables: flushed by itself, and the checkpoint's AsyncFlush waits for that (write stall)
		b.PutRecord(DataKey("a", fmt.Sprintf("f%04d", j)), &Record{Type: TypeString, Create: 11, Mod: 11, Value: bytes.Repeat([]byte("v"), 1024)})
	}
	b.SetRevision(11)
	db.wal.mu.Lock()
	if _, err := db.wal.f.Write(appendRecord(nil, db.wal.num, b.b.Repr())); err != nil {
		t.Fatal(err)
	}
	db.wal.mu.Unlock()
	b.b.Close()
	// kill -9: no close, no checkpoint; the page cache (mem) keeps the
	// record, the disk (what a crash clone keeps) does not.
	db.wal.abandon()
	db.pdb.Close()

	// The restart replays, while the power fails at some point.
	inj := &cloneAtEveryOp{mem: mem}
	inj.armed.Store(true)
	c, err := Open("db", Options{FS: errorfs.Wrap(reuseGuard{mem, inj, true}, inj), MemTableBytes: memt, WALFileBytes: 64 << 20})
	inj.armed.Store(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first restart: revision %d, k = %s", c.Revision, getT(t, c, "k"))
	c.Close()
	for _, cp := range inj.clones {
		c2, err := Open("db", Options{FS: cp.fs, MemTableBytes: memt})
		if err != nil {
			t.Fatalf("power loss at %s: %v", cp.op, err)
		}
		k, f0 := getT(t, c2, "k"), getT(t, c2, "f0000")
		rev := c2.Revision
		c2.Close()
		whole := (rev == 10 && k == "10" && f0 == "<absent>") || (rev == 11 && k == "11" && f0 != "<absent>")
		if !whole {
			t.Fatalf("power loss during the replay, at %s: revision %d, k = %s, f0000 present %v: the in-flight batch is half applied (P3) and revision 11 will be issued again (D2)",
				cp.op, rev, k, f0 != "<absent>")
		}
	}
	t.Logf("%d power-loss points: all whole", len(inj.clones))
}
