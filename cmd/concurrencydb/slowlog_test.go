package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSlowLogThresholdIsValidated: log.slow_ms takes 0 (off) up to an
// hour in milliseconds; anything else is a config error naming the field.
func TestSlowLogThresholdIsValidated(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		val string
		ok  bool
	}{
		{"0", true}, {"0.5", true}, {"250", true}, {"3600000", true},
		{"-1", false}, {"3600001", false}, {".nan", false}, {"fast", false},
	} {
		p := filepath.Join(dir, "c.yml")
		if err := os.WriteFile(p, []byte("log:\n  slow_ms: "+tc.val+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		_, err := parse([]string{"-config", p}, &stderr)
		if tc.ok && err != nil {
			t.Errorf("slow_ms %s: %v, want accepted", tc.val, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "log.slow_ms")) {
			t.Errorf("slow_ms %s: %v, want an error naming log.slow_ms", tc.val, err)
		}
	}
}
