package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMECitesOnlyExistingTests: the Guarantees section names the test
// that proves each promise; a renamed or deleted test must not leave the
// README pointing at nothing.
func TestREADMECitesOnlyExistingTests(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	def := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w+)\(`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`((?:Test|Fuzz)[A-Z]\\w*)`").FindAllStringSubmatch(string(readme), -1)
	if len(cited) < 10 {
		t.Fatalf("README cites only %d tests; the Guarantees table is missing?", len(cited))
	}
	for _, m := range cited {
		if !defined[m[1]] {
			t.Errorf("README cites %s, which no _test.go file defines", m[1])
		}
	}
}

// TestREADMETestCommandIsCIs: the README's test command is exactly what
// .ci/run runs, so a green CI means the documented command passes.
func TestREADMETestCommandIsCIs(t *testing.T) {
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmd string
	for _, line := range strings.Split(string(ci), "\n") {
		if strings.HasPrefix(line, "go test") {
			cmd = line
		}
	}
	if cmd == "" {
		t.Fatal(".ci/run has no go test line")
	}
	if !strings.Contains(string(readme), "\n"+cmd+" ") {
		t.Fatalf("README.md does not show .ci/run's command %q", cmd)
	}
}
