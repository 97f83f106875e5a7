package persist

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A write stall of Pebble's (memtables full while a flush cannot finish)
// is logged once it ends, with its reason and length: every commit waits
// behind it, so the log must explain the latency spike.
func TestAWriteStallIsLogged(t *testing.T) {
	var (
		mu     sync.Mutex
		logged bytes.Buffer
	)
	defer func(l *slog.Logger) { slog.SetDefault(l) }(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil)))

	db, release := holdTablesOpts(t, Options{FS: vfs.NewMem(), MemTableBytes: 256 << 10})
	go func() { time.Sleep(200 * time.Millisecond); release() }()
	v := bytes.Repeat([]byte("v"), 32<<10)
	for i := range 200 { // 6.4 MiB: far past 4 memtables of 256 KiB
		b := db.NewBatch()
		b.PutRecord(DataKey("a", strconv.Itoa(i)), &Record{Type: TypeString, Create: 1, Mod: uint64(i + 1), Value: v})
		if err := db.Commit(b, false); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if out := logged.String(); !strings.Contains(out, `msg="storage stalled writes"`) || !strings.Contains(out, "reason=") {
		t.Fatalf("log after a stall of ~200 ms: %q", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
