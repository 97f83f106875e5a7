package persist

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Found by review: W2 refuses to replay later files over a corrupt record, but a
// log file missing from the middle of the live range (lost by the
// filesystem, moved to lost+found by fsck, deleted by hand) is skipped
// silently: Open succeeds, the writes it held are gone, and keys they
// rewrote roll back to older values.
func TestAMissingLiveLogFileIsAGap_W2(t *testing.T) {
	mem := vfs.NewCrashableMem()
	db, _ := holdTablesT(t, mem) // the files stay above the checkpoint
	for i := 1; i <= 60; i++ {
		putT(t, db, fmt.Sprintf("u%d", i), i, true)
	}
	files := walFiles(t, mem.CrashClone(vfs.CrashCloneCfg{}), "db")
	slices.Sort(files)
	if len(files) < 2 {
		t.Fatalf("only %v", files)
	}
	// The oldest live file, which the checkpoint names (the tables hold
	// nothing, so every file is live). NB: a file missing in the middle
	// fails the same comparison (each live file's number against the
	// checkpoint's plus its rank); with the tables held the log keeps to
	// two files, so that case is not built here.
	for _, victim := range []string{files[0]} {
		crashed := mem.CrashClone(vfs.CrashCloneCfg{})
		if err := crashed.Remove("db/" + victim); err != nil {
			t.Fatal(err)
		}
		c, err := Open("db", Options{FS: crashed, WALFileBytes: 600})
		if err != nil {
			if !strings.Contains(err.Error(), "missing") {
				t.Fatalf("Open without %s refused for another reason: %v", victim, err)
			}
			continue
		}
		var lost []string
		for i := 1; i <= 60; i++ {
			if getT(t, c, fmt.Sprintf("u%d", i)) != strconv.Itoa(i) {
				lost = append(lost, fmt.Sprintf("u%d", i))
			}
		}
		c.Close()
		t.Fatalf("Open with %s of %v missing succeeded; acknowledged writes lost silently: %v", victim, files, lost)
	}
}
