package persist

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func openT(t *testing.T, fs vfs.FS, dir string) *DB {
	t.Helper()
	db, err := Open(dir, Options{FS: fs})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

// TestSyncedCommitSurvivesCrash_P2_P3: a batch committed with sync is in a
// crash clone that keeps only synced data, together with its revision.
func TestSyncedCommitSurvivesCrash_P2_P3(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db := openT(t, mem, "db")
	defer db.Close()
	k := DataKey("a", "k")
	b := db.NewBatch()
	b.PutRecord(k, &Record{Type: TypeString, Create: 7, Mod: 7, ExpireAt: 99, Value: []byte("v")})
	b.SetExpiry(99, k)
	b.SetRevision(7)
	if b.Empty() || b.Count() != 3 {
		t.Fatalf("batch: empty %v count %d, want 3 writes", b.Empty(), b.Count())
	}
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if err := db.SetEpoch(4); err != nil {
		t.Fatal(err)
	}

	c := openT(t, mem.CrashClone(vfs.CrashCloneCfg{}), "db")
	defer c.Close()
	r, ok, err := c.GetRecord(k)
	if err != nil || !ok || string(r.Value) != "v" || r.Mod != 7 || r.ExpireAt != 99 {
		t.Fatalf("record after crash = (%+v, %v, %v)", r, ok, err)
	}
	if c.Revision != 7 || c.Epoch != 4 {
		t.Fatalf("after crash: revision %d epoch %d, want 7 and 4", c.Revision, c.Epoch)
	}
	if rev, err := c.LoadRevision(); err != nil || rev != 7 {
		t.Fatalf("LoadRevision = (%d, %v), want 7", rev, err)
	}
	var found []string
	if err := c.ScanExpired(99, 10, func(at int64, dk []byte) {
		_, id, _ := SplitDataKey(dk)
		found = append(found, id)
	}); err != nil || len(found) != 1 || found[0] != "k" {
		t.Fatalf("ScanExpired after crash = (%v, %v), want [k]", found, err)
	}
}

// TestFailedSyncIsReturnedNotFatal_P2: a commit whose WAL sync fails
// returns the error; it does not exit the process (Pebble's own
// Batch.Commit(Sync) would call Fatalf) and data committed before is still
// readable.
func TestFailedSyncIsReturnedNotFatal_P2(t *testing.T) {
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			return errorfs.ErrInjected
		}
		return nil
	})}
	db := openT(t, errorfs.Wrap(vfs.NewMem(), toggle), "db")
	b := db.NewBatch()
	b.PutRecord(DataKey("a", "old"), &Record{Type: TypeString, Create: 1, Mod: 1, Value: []byte("x")})
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	toggle.On()
	b = db.NewBatch()
	b.PutRecord(DataKey("a", "new"), &Record{Type: TypeString, Create: 2, Mod: 2, Value: []byte("y")})
	if err := db.Commit(b, true); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("Commit with a failing sync = %v, want the injected error", err)
	}
	if r, ok, err := db.GetRecord(DataKey("a", "old")); err != nil || !ok || string(r.Value) != "x" {
		t.Fatalf("durable record after a failed sync = (%+v, %v, %v)", r, ok, err)
	}
	_ = db.Close() // reports the WAL error again
}

// TestUnknownFormatRefusesToOpen_P4.
func TestUnknownFormatRefusesToOpen_P4(t *testing.T) {
	mem := vfs.NewMem()
	db := openT(t, mem, "db")
	b := db.NewBatch()
	b.b.Set(metaFormat, []byte("999"), nil)
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err := Open("db", Options{FS: mem}); err == nil || !strings.Contains(err.Error(), "P4") {
		if err == nil {
			db.Close()
		}
		t.Fatalf("Open of format 999 = %v, want a P4 error", err)
	}
}

// TestSecondOpenIsLocked_P5.
func TestSecondOpenIsLocked_P5(t *testing.T) {
	dir := t.TempDir()
	db := openT(t, nil, dir)
	defer db.Close()
	if db2, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		if err == nil {
			db2.Close()
		}
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestScanAndScanExpired(t *testing.T) {
	db := openT(t, vfs.NewMem(), "db")
	defer db.Close()
	b := db.NewBatch()
	for i, id := range []string{"c", "a", "b"} {
		k := DataKey("acc", id)
		b.PutRecord(k, &Record{Type: TypeString, Create: 1, Mod: 1, Value: []byte(id)})
		b.SetExpiry(int64(30-10*i), k) // c:30 a:20 b:10
	}
	b.PutRecord(DataKey("other", "z"), &Record{Type: TypeString, Create: 1, Mod: 1})
	b.DeleteExpiry(10, DataKey("acc", "b"))
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	var ids []string
	p := AccountPrefix("acc")
	if err := db.Scan(p, PrefixEnd(p), func(k []byte, r Record) bool {
		ids = append(ids, string(r.Value))
		return true
	}); err != nil || strings.Join(ids, ",") != "a,b,c" {
		t.Fatalf("Scan = (%v, %v), want a,b,c", ids, err)
	}
	var exp []string
	if err := db.ScanExpired(25, 10, func(at int64, k []byte) {
		_, id, _ := SplitDataKey(k)
		exp = append(exp, id)
	}); err != nil || strings.Join(exp, ",") != "a" {
		t.Fatalf("ScanExpired(25) = (%v, %v), want a (b's entry was deleted, c is later)", exp, err)
	}
	exp = nil
	if err := db.ScanExpired(1000, 1, func(at int64, k []byte) {
		_, id, _ := SplitDataKey(k)
		exp = append(exp, id)
	}); err != nil || strings.Join(exp, ",") != "a" {
		t.Fatalf("ScanExpired limit 1 = (%v, %v), want a", exp, err)
	}
}

// closedStoreT creates a store in a new directory, writes acc/k = v, closes
// it and returns the directory.
func closedStoreT(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db := openT(t, nil, dir)
	b := db.NewBatch()
	b.PutRecord(DataKey("acc", "k"), &Record{Type: TypeString, Create: 1, Mod: 1, Value: []byte("v")})
	if err := db.Commit(b, true); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpenRefusesADirectoryThatIsNotAStore_P8.
func TestOpenRefusesADirectoryThatIsNotAStore_P8(t *testing.T) {
	write := func(t *testing.T, dir, name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := func(t *testing.T, dir string) []string {
		t.Helper()
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	t.Run("foreign files", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "notes.txt")
		if err := os.Mkdir(filepath.Join(dir, "photos"), 0o755); err != nil {
			t.Fatal(err)
		}
		db, err := Open(dir, Options{})
		if !errors.Is(err, ErrNotStore) {
			if err == nil {
				db.Close()
			}
			t.Fatalf("Open = %v, want ErrNotStore", err)
		}
		if !strings.Contains(err.Error(), "notes.txt, photos") {
			t.Errorf("error %q does not name what is there", err)
		}
		if got := list(t, dir); !slices.Equal(got, []string{"notes.txt", "photos"}) {
			t.Errorf("directory after the refused Open: %v, want it untouched", got)
		}
	})
	// Found by review: another program's Pebble store was opened, and
	// our format, epoch and checkpoint keys and a log were written into it.
	t.Run("another program's Pebble store", func(t *testing.T) {
		dir := t.TempDir()
		other, err := pebble.Open(dir, &pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Set([]byte("user/alice"), []byte("x"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := Open(dir, Options{})
		if !errors.Is(err, ErrNotStore) {
			if err == nil {
				db.Close()
			}
			t.Fatalf("Open of another program's Pebble store = %v, want ErrNotStore", err)
		}
		other, err = pebble.Open(dir, &pebble.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		if _, closer, err := other.Get(metaFormat); err == nil {
			closer.Close()
			t.Fatal("the refused Open wrote its format key into the other store")
		}
		if slices.ContainsFunc(list(t, dir), func(n string) bool { return strings.HasPrefix(n, "wal-") }) {
			t.Fatal("the refused Open created a log file in the other store")
		}
	})
	t.Run("a store without its manifest", func(t *testing.T) {
		dir := closedStoreT(t) // acc/k = v
		for _, e := range list(t, dir) {
			if strings.HasPrefix(e, "MANIFEST-") || strings.HasPrefix(e, "marker.manifest.") {
				if err := os.Remove(filepath.Join(dir, e)); err != nil {
					t.Fatal(err)
				}
			}
		}
		before := list(t, dir)
		db, err := Open(dir, Options{})
		if !errors.Is(err, ErrNotStore) {
			if err == nil {
				db.Close()
			}
			t.Fatalf("Open of a store without its manifest = %v, want ErrNotStore (not a new store over its files)", err)
		}
		if got := list(t, dir); !slices.Equal(got, before) {
			t.Errorf("directory after the refused Open: %v, want %v", got, before)
		}
	})
	t.Run("lost+found and a first start's leftovers", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "lost+found"), 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, dir, "LOCK") // the first file Pebble creates
		openT(t, nil, dir).Close()
	})
	t.Run("a store with other files beside it", func(t *testing.T) {
		dir := closedStoreT(t) // acc/k = v
		write(t, dir, "README")
		db := openT(t, nil, dir)
		defer db.Close()
		if r, ok, err := db.GetRecord(DataKey("acc", "k")); err != nil || !ok || string(r.Value) != "v" {
			t.Fatalf("GetRecord after reopen = %v %v %v", r, ok, err)
		}
	})
}
