package persist

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// Found by review: a first start on a disk with room for Pebble's MANIFEST but not
// for a table (the P7 scenario) must fail Open, not hang in checkFormat's
// pdb.Flush (which waits for a failing flush for ever).
func TestOpenOfANewDirectoryOnADiskFullForTablesFails_P7(t *testing.T) {
	defer func(d time.Duration) { openStallWait = d }(openStallWait)
	openStallWait = 300 * time.Millisecond
	fs := faultfs.New(vfs.NewMem())
	fs.FillNewTables()
	opened := make(chan error, 1)
	go func() {
		db, err := Open("db", Options{FS: fs})
		if err == nil {
			db.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err == nil {
			t.Fatal("Open on a disk full for tables succeeded")
		}
		t.Logf("Open returned %v", err)
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "persist.Open") {
				t.Log(g)
			}
		}
		t.Fatal("Open of a new directory on a disk full for tables hung for 10 s (checkFormat's pdb.Flush)")
	}
}
