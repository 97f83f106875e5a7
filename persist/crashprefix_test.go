package persist

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// Written by review: a crash at every filesystem operation (inside reused
// log files too: reuseGuard wraps them), with keys rewritten (so a
// rollback shows), Pebble flushing on its own (small memtables) and the log
// rotating often: the state after recovery must be exactly the state after
// some prefix of the commits, at least as long as what was acknowledged,
// with the revision counter naming that prefix (P2, P3, W1-W3).
func TestACrashAtEveryOpAlsoInReusedFilesRecoversAPrefixState_P2_P3(t *testing.T) {
	cfgs := []struct {
		mem, wal int64
		wait     bool
		unsynced int
	}{{64 << 10, 700, true, 50}, {64 << 10, 700, false, 0}, {64 << 10, 700, true, 0}, {64 << 10, 3000, false, 0}, {64 << 10, 700, false, 50}, {64 << 10, 700, true, 90}}
	n := 160 // commits
	if raceEnabled {
		cfgs, n = cfgs[:2], 60 // ~20 s instead of ~7 min
	}
	for _, cfg := range cfgs {
		t.Run(fmt.Sprintf("mem%d-wal%d-wait%v-unsynced%d", cfg.mem, cfg.wal, cfg.wait, cfg.unsynced), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			inj := &cloneAtEveryOp{mem: mem, unsynced: cfg.unsynced, rng: rand.New(rand.NewPCG(1, uint64(cfg.unsynced)))}
			opts := Options{FS: errorfs.Wrap(reuseGuard{mem, inj, true}, inj), WALFileBytes: cfg.wal, MemTableBytes: uint64(cfg.mem)}
			db, err := Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			const nkeys = 5
			val := func(i int) string { return strconv.Itoa(i) + string(bytes.Repeat([]byte("x"), 400)) }
			inj.armed.Store(true)
			for i := 1; i <= n; i++ {
				b := db.NewBatch()
				b.PutRecord(DataKey("a", fmt.Sprintf("k%d", i%nkeys)), &Record{Type: TypeString, Create: 1, Mod: uint64(i), Value: []byte(val(i))})
				b.PutRecord(DataKey("a", fmt.Sprintf("u%d", i)), &Record{Type: TypeString, Create: 1, Mod: uint64(i), Value: []byte("u")})
				b.SetRevision(uint64(i))
				if err := db.Commit(b, true); err != nil {
					t.Fatal(err)
				}
				inj.acked.Store(int64(i))
				if cfg.wait && i%3 == 0 {
					db.wal.flushed.Wait()
				}
			}
			inj.armed.Store(false)
			db.Close()
			perFile := map[string]int{}
			for _, cp := range inj.clones {
				perFile[cp.op]++
			}
			t.Logf("%d crash points: %v", len(inj.clones), perFile)
			for _, cp := range inj.clones {
				c, err := Open("db", Options{FS: cp.fs, WALFileBytes: cfg.wal, MemTableBytes: uint64(cfg.mem)})
				if err != nil {
					t.Fatalf("crash at %s (%d acked): Open: %v", cp.op, cp.acked, err)
				}
				r := int64(c.Revision)
				if r < cp.acked {
					t.Fatalf("crash at %s: revision %d < acked %d", cp.op, r, cp.acked)
				}
				for j := 0; j < nkeys; j++ {
					last := 0
					for i := 1; i <= int(r); i++ {
						if i%nkeys == j {
							last = i
						}
					}
					got := getT(t, c, fmt.Sprintf("k%d", j))
					want := "<absent>"
					if last > 0 {
						want = val(last)
					}
					if got != want {
						t.Fatalf("crash at %s (%d acked, revision %d): k%d = %.10s…, want %.10s…", cp.op, cp.acked, r, j, got, want)
					}
				}
				for i := 1; i <= n; i++ {
					got := getT(t, c, fmt.Sprintf("u%d", i))
					if (int64(i) <= r) != (got == "u") {
						t.Fatalf("crash at %s (%d acked, revision %d): u%d = %s", cp.op, cp.acked, r, i, got)
					}
				}
				c.Close()
			}
		})
	}
}
