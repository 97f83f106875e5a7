// Package fuzzcorpus reads the seed corpora that `go test -fuzz` keeps in
// testdata/fuzz/<Target>/, so a normal test can mutate the same seeds. It
// is a test aid shared by the resp and httpapi fuzz tests.
package fuzzcorpus

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// Mutations prepares a test that mutates the corpus in dir: it returns the
// seeds (at least minSeeds, or the test fails), a random source seeded from
// the clock or from FUZZ_SEED (the seed is logged, so a failure can be
// replayed) and the seed to print with a failing input, and how many
// mutations to run (2000, or 300 with -short).
func Mutations(t testing.TB, dir string, minSeeds int) (seeds [][]byte, rng *rand.Rand, seed int64, n int) {
	t.Helper()
	seeds, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(seeds) < minSeeds {
		t.Fatalf("only %d seeds in %s", len(seeds), dir)
	}
	seed = time.Now().UnixNano()
	if s := os.Getenv("FUZZ_SEED"); s != "" {
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("FUZZ_SEED=%q: %v", s, err)
		}
	}
	t.Logf("FUZZ_SEED=%d", seed)
	n = 2000
	if testing.Short() {
		n = 300
	}
	return seeds, rand.New(rand.NewSource(seed)), seed, n
}
