// Package fuzzcorpus reads the seed corpora that `go test -fuzz` keeps in
// testdata/fuzz/<Target>/, so a normal test can mutate the same seeds. It
// is a test aid shared by the resp and httpapi fuzz tests.
package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Read returns the []byte value of every corpus file in dir. Each file must
// hold exactly one []byte value in Go's corpus format.
func Read(dir string) ([][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			return nil, fmt.Errorf("%s: not a one-[]byte go fuzz corpus file", f)
		}
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		out = append(out, []byte(v))
	}
	return out, nil
}
