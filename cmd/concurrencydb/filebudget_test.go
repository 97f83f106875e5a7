package main

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"testing"
)

// Connections asked for beyond what the open-file limit leaves are warned
// about, also when max_conns is so large that the two listeners' sum
// would overflow (found by review: it wrapped negative, and the warning
// was not given).
func TestFileBudgetWarnsWhenMaxConnsExceedsTheOpenFileLimit(t *testing.T) {
	for _, max := range []int{1 << 40, math.MaxInt} {
		var cfg fileConfig
		cfg.RESP.Addr, cfg.RESP.MaxConns = "127.0.0.1:0", max
		cfg.HTTP.Addr, cfg.HTTP.MaxConns = "127.0.0.1:0", max
		var buf bytes.Buffer
		fileBudget(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
		if !strings.Contains(buf.String(), "fewer descriptors than max_conns") {
			t.Errorf("max_conns %d on both listeners: no warning; log %q", max, buf.String())
		}
	}
}
