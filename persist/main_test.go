package persist

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

// TestMain keeps the log's informational lines ("replayed the write-ahead
// log", one per crash clone opened) out of the test output.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}
