package resp

import (
	"flag"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/concurrencydb/concurrencydb/core"
)

var update = flag.Bool("update", false, "rewrite resp/COMMANDS.md from the command table")

// Every table row has a handler and a summary, and every handler a row
// (STYLE 5, R2).
func TestCommandTableAndHandlersAgree_R2(t *testing.T) {
	hs := handlers()
	seen := map[string]bool{}
	for _, sp := range core.Commands() {
		if seen[sp.Name] {
			t.Errorf("%s: listed twice", sp.Name)
		}
		seen[sp.Name] = true
		if hs[sp.Name] == nil {
			t.Errorf("%s: in the table without a RESP handler", sp.Name)
		}
		if sp.Summary == "" || sp.Group == "" || sp.Since == "" {
			t.Errorf("%s: no docs (summary, group, since)", sp.Name)
		}
		if sp.Arity == 0 {
			t.Errorf("%s: arity 0", sp.Name)
		}
		if (sp.FirstKey == 0) != (sp.Step == 0) {
			t.Errorf("%s: key positions %d..%d step %d", sp.Name, sp.FirstKey, sp.LastKey, sp.Step)
		}
		if sp.Flags&core.CmdWrite != 0 && sp.Flags&core.CmdReadonly != 0 {
			t.Errorf("%s: both write and readonly", sp.Name)
		}
	}
	for name := range hs {
		if !seen[name] {
			t.Errorf("%s: has a handler but no table row", name)
		}
	}
}

// resp/COMMANDS.md is generated from the table; regenerate with -update.
func TestCommandsMarkdownIsUpToDate(t *testing.T) {
	want := CommandsMarkdown()
	if *update {
		must(t, os.WriteFile("COMMANDS.md", []byte(want), 0o644))
	}
	got, err := os.ReadFile("COMMANDS.md")
	must(t, err)
	if string(got) != want {
		t.Fatal("resp/COMMANDS.md is stale: run go test ./resp -run TestCommandsMarkdownIsUpToDate -update")
	}
	for _, sp := range core.Commands() {
		if !strings.Contains(want, "| `"+sp.Name+"` |") {
			t.Errorf("%s missing from COMMANDS.md", sp.Name)
		}
	}
	// The README carries the same tables between two markers.
	const begin, end = "<!-- commands:begin -->\n", "<!-- commands:end -->"
	readme, err := os.ReadFile("../README.md")
	must(t, err)
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	if i < 0 || j < i {
		t.Fatal("README.md lacks the commands:begin/end markers")
	}
	section := CommandTables()
	if *update {
		readme = []byte(string(readme[:i+len(begin)]) + section + string(readme[j:]))
		must(t, os.WriteFile("../README.md", readme, 0o644))
	} else if string(readme[i+len(begin):j]) != section {
		t.Fatal("README.md's command table is stale: run go test ./resp -run TestCommandsMarkdownIsUpToDate -update")
	}
}

// COMMAND, COMMAND INFO, COMMAND COUNT and COMMAND DOCS answer from the
// table, in the shapes client libraries parse (key positions included).
func TestCommandRepliesComeFromTheTable(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	infos, err := c.Command(bg).Result()
	must(t, err)
	if len(infos) != len(core.Commands()) {
		t.Fatalf("COMMAND lists %d commands, table has %d", len(infos), len(core.Commands()))
	}
	mset := infos["mset"]
	if mset == nil || mset.Arity != -3 || mset.FirstKeyPos != 1 || mset.LastKeyPos != -1 || mset.StepCount != 2 || mset.ReadOnly {
		t.Fatalf("COMMAND mset = %+v", mset)
	}
	kvget := infos["kv.get"]
	if kvget == nil || kvget.FirstKeyPos != 1 || !kvget.ReadOnly {
		t.Fatalf("COMMAND kv.get = %+v", kvget)
	}
	if n, _ := c.Do(bg, "COMMAND", "COUNT").Int(); n != len(core.Commands()) {
		t.Fatalf("COMMAND COUNT = %d", n)
	}
	got, err := c.Do(bg, "COMMAND", "INFO", "get", "nope").Slice()
	must(t, err)
	if len(got) != 2 || got[1] != nil {
		t.Fatalf("COMMAND INFO get nope = %#v", got)
	}
	docs, err := c.Do(bg, "COMMAND", "DOCS", "seq.next").Slice()
	must(t, err)
	if len(docs) != 2 || docs[0] != "seq.next" {
		t.Fatalf("COMMAND DOCS seq.next = %#v", docs)
	}
	wantErr(t, c.Do(bg, "COMMAND", "BOGUS").Err(), "ERR unknown subcommand")
	// COMMAND INFO without names is COMMAND (it answered nothing at all,
	// so every later reply on the connection was the previous one's).
	all, err := c.Do(bg, "COMMAND", "INFO").Slice()
	must(t, err)
	if len(all) != len(core.Commands()) {
		t.Fatalf("COMMAND INFO lists %d commands, want %d", len(all), len(core.Commands()))
	}
	if v := c.Ping(bg).Val(); v != "PONG" {
		t.Fatalf("PING after COMMAND INFO = %q", v)
	}
}

// resp is a thin front-end (STYLE 8): it never imports persist or Pebble;
// everything it needs goes through core.
func TestRespImportsNeitherPersistNorPebble(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	must(t, err)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		must(t, err)
		for _, imp := range af.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasSuffix(p, "/persist") || strings.Contains(p, "cockroachdb/pebble") {
				t.Errorf("%s imports %s", f, p)
			}
		}
	}
}

// COMMAND HELP and CLIENT HELP answer as Redis's (a title, then the
// subcommands), and COMMAND LIST FILTERBY ACLCAT takes the categories
// COMMAND reports, with or without their @.
func TestHelpAndListFilterBy(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for _, name := range []string{"COMMAND", "CLIENT"} {
		lines, err := c.Do(bg, name, "HELP").StringSlice()
		must(t, err)
		if len(lines) < 3 || lines[0] != name+" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" || !slices.Contains(lines, "HELP") {
			t.Errorf("%s HELP = %q", name, lines)
		}
	}
	for _, cat := range []string{"blocking", "BLOCKING"} {
		if names, err := c.Do(bg, "COMMAND", "LIST", "FILTERBY", "ACLCAT", cat).StringSlice(); err != nil || !slices.Equal(names, []string{"mlock"}) {
			t.Errorf("COMMAND LIST FILTERBY ACLCAT %s = %q, %v", cat, names, err)
		}
	}
	if keys, err := c.Do(bg, "COMMAND", "GETKEYS", "MLOCK", "{acme}:m", "10", "5").StringSlice(); err != nil || !slices.Equal(keys, []string{"{acme}:m"}) {
		t.Errorf("COMMAND GETKEYS MLOCK = %q, %v", keys, err)
	}
}
