package resp

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
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
	names := make([]string, 0, len(core.Commands()))
	for _, sp := range core.Commands() {
		names = append(names, sp.Name)
	}
	for i, seed := range []string{
		"", "k", "k v", "k v EX 10", "k v PX 0", "k v NX XX", "k v IFEQ v GET KEEPTTL",
		"k v EXAT 99999999999999999999", "k -1", "k 9223372036854775807", "k 1.5e3",
		"{acme}:k v", "{}:k", "{a}b", "k 0 -1", "k COUNT 5", "k VER 0 TTL 1",
		"k owner 0.001", "m 0.01 0", "m 1 0.001", "0 MATCH * COUNT 1 TYPE string",
		"k 10 NX XX GT LT", "GET *", "SETINFO lib-name x", "INFO *", "2 AUTH a b SETNAME x",
		"k nan", "k inf", "k -inf", "k 1e309", "k \x00\xff", "a b c d e f g",
	} {
		for j := range names {
			if (i+j)%7 == 0 {
				f.Add(append([]byte{byte(j)}, seed...))
			}
		}
	}
	db, err := persist.Open(f.TempDir(), persist.Options{})
	if err != nil {
		f.Fatal(err)
	}
	st, err := core.Open(db, core.Config{MaxDuration: time.Second, MaxWait: 10 * time.Millisecond, MaxValueBytes: 4096})
	if err != nil {
		f.Fatal(err)
	}
	srv := NewServer(st, Config{})
	f.Cleanup(func() {
		srv.Close()
		st.Close()
		db.Close()
	})
	a, b := net.Pipe()
	f.Cleanup(func() { a.Close(); b.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	cl := &client{id: 1, nc: &conn{Conn: a}, cancel: cancel, authed: true}
	cl.ctx, cl.pl = core.WithPipeline(ctx)
	cl.mu.account = "0"

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		args := [][]byte{[]byte(names[int(data[0])%len(names)])}
		for _, a := range bytes.Split(data[1:], []byte(" ")) {
			if len(a) > 0 {
				args = append(args, a)
			}
		}
		cl.quit, cl.limitedTo = false, ""
		out := srv.exec(cl, args, nil)
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
	})
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
