package persist

import (
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Log makes a batch durable without making it visible; Apply makes it
// visible; the next Log waits for that Apply (W4); and a Close between the
// two does not checkpoint over the batch, which the next open replays.
func TestALoggedBatchIsAppliedBeforeTheNextIsLogged_W4(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db := openT(t, mem, "db")
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "k"), &Record{Type: TypeString, Create: 1, Mod: 1, Value: []byte("1")})
	b.SetRevision(1)
	if err := db.Log(b, true); err != nil {
		t.Fatal(err)
	}
	if got := getT(t, db, "k"); got != "<absent>" {
		t.Fatalf("a logged batch is visible before Apply: k = %s", got)
	}
	// Durable already (P2): a crash now keeps it.
	crashed := openT(t, mem.CrashClone(vfs.CrashCloneCfg{}), "db")
	if got := getT(t, crashed, "k"); got != "1" {
		t.Fatalf("after a crash between Log and Apply: k = %s, want 1", got)
	}
	crashed.Close()

	next := make(chan error, 1)
	go func() {
		b2 := db.NewBatch()
		b2.PutRecord(DataKey("a", "k"), &Record{Type: TypeString, Create: 1, Mod: 2, Value: []byte("2")})
		b2.SetRevision(2)
		next <- db.Commit(b2, true)
	}()
	select {
	case err := <-next:
		t.Fatalf("the next batch was logged before the last one was applied (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := db.Apply(b); err != nil {
		t.Fatal(err)
	}
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if got := getT(t, db, "k"); got != "2" {
		t.Fatalf("k = %s after both batches, want 2: applied out of order", got)
	}

	// A batch logged but never applied: Close must not checkpoint over it.
	b3 := db.NewBatch()
	b3.PutRecord(DataKey("a", "k"), &Record{Type: TypeString, Create: 1, Mod: 3, Value: []byte("3")})
	b3.SetRevision(3)
	if err := db.Log(b3, true); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err == nil || !strings.Contains(err.Error(), "not applied") {
		t.Fatalf("Close with a batch logged and not applied = %v, want it reported", err)
	}
	reopened := openT(t, mem, "db")
	defer reopened.Close()
	if got := getT(t, reopened, "k"); got != "3" {
		t.Fatalf("k = %s after reopening, want 3 (the logged batch, replayed)", got)
	}
}
