package persist

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/internal/logtest"
)

// A write stall of Pebble's (memtables full while a flush cannot finish)
// is logged once it ends, with its reason and length: every commit waits
// behind it, so the log must explain the latency spike.
func TestAWriteStallIsLogged(t *testing.T) {
	logged := logtest.Capture(t) // NB: Pebble's event listener logs from its own goroutine

	db, release := holdTablesOpts(t, Options{FS: vfs.NewMem(), MemTableBytes: 256 << 10})
	// Release the flushes once a commit has waited in Pebble for 200 ms:
	// a stall, however slowly the writes before it ran. NB: not after a
	// fixed 200 ms: under -race on a busy machine the memtables had not
	// filled by then, nothing stalled, and the test failed.
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if since := db.wal.inPebble.Load(); since != 0 && time.Duration(monoNow()-since) > 200*time.Millisecond {
				release()
				return
			}
		}
	}()
	v := bytes.Repeat([]byte("v"), 32<<10)
	for i := range 200 { // 6.4 MiB: far past 4 memtables of 256 KiB
		b := db.NewBatch()
		b.PutRecord(DataKey("a", strconv.Itoa(i)), &Record{Type: TypeString, Create: 1, Mod: uint64(i + 1), Value: v})
		if err := db.Commit(b, false); err != nil {
			t.Fatal(err)
		}
	}
	if out := logged.String(); !strings.Contains(out, `msg="storage stalled writes"`) || !strings.Contains(out, "reason=") {
		t.Fatalf("log after a stall of ~200 ms: %q", out)
	}
}

// A stall's end with no begin seen (Pebble reports an end for a stall
// that began before the listener was installed, or twice) logs nothing:
// its length is unknown, and the zero time would make it decades long.
func TestAStallEndWithoutItsBeginIsNotLogged(t *testing.T) {
	logged := logtest.Capture(t)
	var l stallLog
	l.end()
	l.begin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	l.end()
	l.end()
	if out := logged.String(); out != "" {
		t.Fatalf("log after ends without a begin of 50 ms or more: %q", out)
	}
}
