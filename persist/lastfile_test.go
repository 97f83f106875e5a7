package persist

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A damaged record in the last log file ends the replay there, as a torn
// tail does (W2): after a power loss during an unsynced write the kernel
// may have written a later page and not an earlier one, so refusing to
// open would turn that power loss into an outage. But when valid records
// of the file follow it, which is also what a damaged disk looks like, the
// open says so in the log (found by review: it dropped them silently). A
// damaged last record, with nothing valid after it, is a torn tail and is
// not reported.
func TestADamagedRecordFollowedByValidOnesIsReported_W2(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage int // the record to damage: 3 = a middle one, 20 = the last
		warn   bool
	}{{"middle", 3, true}, {"last", 21, false}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			db, err := Open("db", Options{FS: mem})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 20; i++ {
				putT(t, db, fmt.Sprintf("u%d", i), i, true)
			}
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			num := db.wal.num
			db.Close()
			f, err := crashed.OpenReadWrite("db/"+walName(num), vfs.WriteCategoryUnspecified)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(f)
			off := 0
			for range tc.damage - 1 { // the format record, then the writes
				_, rest, ok, _ := nextRecord(data[off:], num)
				if !ok {
					t.Fatalf("short file")
				}
				off = len(data) - len(rest)
			}
			if _, err := f.WriteAt([]byte{data[off+walHeader+5] ^ 0xff}, int64(off+walHeader+5)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			var logged bytes.Buffer
			defer func(l *slog.Logger) { slog.SetDefault(l) }(slog.Default())
			slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
			c, err := Open("db", Options{FS: crashed})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			c.Close()
			if warned := strings.Contains(logged.String(), "a damaged record is followed by valid ones"); warned != tc.warn {
				t.Fatalf("warned %v, want %v; log: %s", warned, tc.warn, logged.String())
			}
		})
	}
}
