package resp

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/internal/fuzzcorpus"
	"github.com/concurrencydb/concurrencydb/persist"
)

// FuzzCommandArgs runs arbitrary argument lists through dispatch and every
// handler of the command table: no input panics the server, and every
// input gets exactly one well-formed reply. The first byte picks the
// command (so the fuzzer reaches every handler), the rest are
// space-separated arguments.
//
// go test ./resp -run '^$' -fuzz FuzzCommandArgs -fuzztime 100000x
//
// (a count, not a duration: Go 1.26's fuzz coordinator can report a
// spurious "context deadline exceeded" at a -fuzztime deadline,
// golang/go#75804)
func FuzzCommandArgs(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzCommandArgs (go test runs them).
	check := newArgsFuzz(f)
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}

// TestCommandArgsMutatedSeeds runs a fixed number of random mutations of
// FuzzCommandArgs's seed corpus through its property, so every test run
// fuzzes a little (the seed is printed; FUZZ_SEED replays one).
func TestCommandArgsMutatedSeeds(t *testing.T) {
	seeds, rng, seed, n := fuzzcorpus.Mutations(t, "testdata/fuzz/FuzzCommandArgs", 100)
	check := newArgsFuzz(t)
	toks := []string{" ", "-1", "0", "1e309", "nan", "99999999999999999999", "9223372036854775807",
		"-9223372036854775808", "{acme}:", "{", "}", "*", "EX", "PX", "NX", "XX", "GET", "COUNT",
		"VER", "TTL", "MATCH", "TYPE", "IFEQ", "KEEPTTL", "\x00", "0.001", strings.Repeat("a", 600)}
	for i := 0; i < n; i++ {
		b := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
		for m := 1 + rng.Intn(3); m > 0; m-- {
			pos := rng.Intn(len(b) + 1)
			switch rng.Intn(4) {
			case 0:
				if pos < len(b) {
					b[pos] = byte(rng.Intn(256))
				}
			case 1:
				b = append(b[:pos], b[min(len(b), pos+1+rng.Intn(4)):]...)
			default:
				tok := " " + toks[rng.Intn(len(toks))]
				b = append(b[:pos], append([]byte(tok), b[pos:]...)...)
			}
		}
		check(t, b)
		if t.Failed() {
			t.Fatalf("FUZZ_SEED=%d iteration %d input %q", seed, i, b)
		}
	}
}

// newArgsFuzz opens a store and server and returns FuzzCommandArgs's
// property: one input, one well-formed reply, no panic.
func newArgsFuzz(tb testing.TB) func(t testing.TB, data []byte) {
	names := make([]string, 0, len(core.Commands()))
	for _, sp := range core.Commands() {
		names = append(names, sp.Name)
	}
	db, err := persist.Open(tb.TempDir(), persist.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := core.Open(db, core.Config{MaxDuration: time.Second, MaxWait: 10 * time.Millisecond, MaxValueBytes: 4096})
	if err != nil {
		tb.Fatal(err)
	}
	srv := NewServer(st, Config{})
	tb.Cleanup(func() {
		srv.Close()
		st.Close()
		db.Close()
	})
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	cl := &client{id: 1, cancel: cancel, authed: true}
	cl.ctx, cl.pl = core.WithPipeline(ctx)
	cl.mu.account = "0"

	return func(t testing.TB, data []byte) {
		if len(data) == 0 {
			return
		}
		args := [][]byte{[]byte(names[int(data[0])%len(names)])}
		for _, a := range bytes.Split(data[1:], []byte(" ")) {
			if len(a) > 0 {
				args = append(args, a)
			}
		}
		cl.quit, cl.limitedTo, cl.tx = false, "", nil // each input on a fresh connection's state
		cl.unwatch(srv)
		out := srv.exec(cl, args, nil, time.Now())
		if err := cl.pl.Take().Wait(ctx); err != nil {
			t.Fatalf("%q: durability wait: %v", args, err)
		}
		end, ok := replyEnd(out, 1)
		if !ok || end != len(out) {
			t.Fatalf("%q: reply %q is not exactly one RESP reply", args, out)
		}
		if msg, isErr := strings.CutPrefix(string(out), "-"); isErr {
			prefix, _, _ := strings.Cut(msg, " ")
			if prefix == "" || strings.Trim(prefix, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
				t.Fatalf("%q: error without an upper-case prefix: %q", args, out)
			}
		}
	}
}

// splitKey applies R3 exactly.
func TestSplitKeyAddressesAccountsByHashTag_R3(t *testing.T) {
	for _, tc := range []struct {
		key, acc, id string
		tagged       bool
	}{
		{"{acme}:user:1", "acme", "user:1", true},
		{"{a}:", "a", "", true},
		{"{acme}user", "", "{acme}user", false},
		{"{}:x", "", "{}:x", false},
		{"{a:x", "", "{a:x", false},
		{"plain", "", "plain", false},
		{"{a}b}:x", "", "{a}b}:x", false},
		{"x{a}:y", "", "x{a}:y", false},
	} {
		acc, id, tagged := splitKey([]byte(tc.key))
		if acc != tc.acc || id != tc.id || tagged != tc.tagged {
			t.Errorf("splitKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, acc, id, tagged, tc.acc, tc.id, tc.tagged)
		}
	}
}
