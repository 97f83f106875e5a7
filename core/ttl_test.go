package core

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// TestReaperDeletesExpiredKeysFromDisk_D4 lets a TTL pass on the fake
// clock and waits for the background reaper to delete the key on disk
// (and its expiry index entry), through the apply loop.
func TestReaperDeletesExpiredKeysFromDisk_D4(t *testing.T) {
	ctx := ctxT(t)
	clock := newFakeClock()
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: clock, ReapInterval: 5 * time.Millisecond})
	if _, err := s.KVSet(ctx, "a", "gone", []byte("x"), KVSetOptions{HasTTL: true, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVSet(ctx, "a", "kept", []byte("y"), KVSetOptions{HasTTL: true, TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	// A TTL that was cleared leaves a stale index entry that must not
	// delete the key.
	if _, err := s.KVSet(ctx, "a", "cleared", []byte("z"), KVSetOptions{HasTTL: true, TTL: time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.KVSet(ctx, "a", "cleared", []byte("z"), KVSetOptions{}); err != nil {
		t.Fatal(err)
	}
	writesBefore := s.Stats().Writes.Load()
	clock.Advance(2 * time.Second)

	deadline := time.Now().Add(20 * time.Second)
	for {
		_, found, err := s.db.Get(persist.DataKey("a", "gone"))
		if err != nil {
			t.Fatal(err)
		}
		// NB: Pebble shows the delete a moment before the committer
		// counts the batch, so wait for both.
		logged := s.Stats().Writes.Load() > writesBefore
		if !found && logged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s of reaping: expired key on disk %v, logged write %v (D4)", found, logged)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var expired int
	if err := s.db.ScanExpired(clock.Now().UnixMilli(), 100, func(int64, []byte) { expired++ }); err != nil {
		t.Fatal(err)
	}
	if expired != 0 {
		t.Fatalf("%d expiry index entries left after reaping", expired)
	}
	s = s.reopen()
	if _, err := s.KVGet(ctx, "a", "gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reaped key after reopen: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"kept", "cleared"} {
		if _, err := s.KVGet(ctx, "a", id); err != nil {
			t.Fatalf("live key %q after reaping: %v", id, err)
		}
	}
}

// TestReaperReclaimsMoreThanOneBatch_D4: more expired keys than one reaper
// pass takes are all reclaimed, and live keys are left alone.
func TestReaperReclaimsMoreThanOneBatch_D4(t *testing.T) {
	ctx := ctxT(t)
	clock := newFakeClock()
	s := openStore(t, vfs.NewMem(), "db", Config{Clock: clock, ReapInterval: 5 * time.Millisecond})
	const n = 2*reapBatch + 17
	for i := range n {
		if _, err := s.KVSet(ctx, "a", "k"+strconv.Itoa(i), []byte("x"), KVSetOptions{HasTTL: true, TTL: time.Duration(1+i%3) * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(t, s, "live", "y")
	clock.Advance(3 * time.Second)
	p := persist.AccountPrefix("a")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []string
		if err := s.db.Scan(p, persist.PrefixEnd(p), func(k []byte, r persist.Record) bool {
			_, id, _ := persist.SplitDataKey(k)
			left = append(left, id)
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(left) == 1 && left[0] == "live" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys on disk after 20s of reaping, want only live", len(left))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReaperDoesNotRewriteItsPendingDeletes_D4: after a full pass the
// reaper waits for its deletes to be durable before scanning again, instead
// of finding the same (still committed) index entries and writing deletes
// for them again and again until the sync lands.
func TestReaperDoesNotRewriteItsPendingDeletes_D4(t *testing.T) {
	ctx := ctxT(t)
	clock := newFakeClock()
	fs := faultfs.New(vfs.NewMem())
	s := openStore(t, fs, "db", Config{Clock: clock, ReapInterval: time.Millisecond})
	const n = 3 * reapBatch
	for i := range n {
		if _, err := s.KVSet(ctx, "a", "k"+strconv.Itoa(i), []byte("x"), KVSetOptions{HasTTL: true, TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Stats().Writes.Load()
	fs.SlowSyncs(20 * time.Millisecond) // a wide window for re-scans
	clock.Advance(2 * time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().Writes.Load()-before < n {
		if time.Now().After(deadline) {
			t.Fatal("reaper did not delete every expired key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for extra passes, if any
	if w := s.Stats().Writes.Load() - before; w != n {
		t.Fatalf("reaping %d expired keys took %d writes, want exactly %d", n, w, n)
	}
}
