package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering enforces DESIGN.md's layout table (STYLE 8): front-ends
// never touch storage, core never touches a protocol library, and only the
// metrics package imports Prometheus. It reads the real import graph.
func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", "github.com/concurrencydb/concurrencydb/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/concurrencydb/concurrencydb/"
	forbidden := map[string][]string{
		// package: import path prefixes it must not import (directly or not)
		"core":    {"github.com/tidwall/redcon", "github.com/go-chi/", mod + "resp", mod + "httpapi", mod + "metrics"},
		"persist": {mod + "core", mod + "resp", mod + "httpapi", mod + "metrics"},
	}
	// Direct imports only: resp and httpapi reach Pebble through core.
	forbiddenDirect := map[string][]string{
		"resp":    {mod + "persist", "github.com/cockroachdb/pebble", "github.com/prometheus/client_golang", "github.com/go-chi/"},
		"httpapi": {mod + "persist", "github.com/cockroachdb/pebble", "github.com/prometheus/client_golang", "github.com/tidwall/redcon"},
		// (Pebble itself depends on Prometheus, hence direct only.)
		"core": {"github.com/cockroachdb/pebble", "github.com/prometheus/client_golang"},
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		parts := strings.SplitN(line, "|", 3)
		pkg := strings.TrimPrefix(parts[0], mod)
		imports, deps := strings.Fields(parts[1]), strings.Fields(parts[2])
		check := func(list []string, bad []string, how string) {
			for _, p := range list {
				for _, b := range bad {
					if strings.HasPrefix(p, b) {
						t.Errorf("%s %s %s (DESIGN.md layout)", pkg, how, p)
					}
				}
			}
		}
		if bad, ok := forbidden[pkg]; ok {
			seen++
			check(deps, bad, "depends on")
		}
		if bad, ok := forbiddenDirect[pkg]; ok {
			check(imports, bad, "imports")
		}
	}
	if seen != len(forbidden) {
		t.Fatalf("checked %d of %d packages: go list output changed?", seen, len(forbidden))
	}
}
