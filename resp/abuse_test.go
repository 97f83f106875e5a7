package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

// These tests abuse the RESP listener the way a broken or hostile client
// would (issue 5, "Bad input and limits"): each input gets a clear error,
// the server keeps serving (the same connection too, where Redis keeps it),
// and nothing is partly applied.

// dbsize counts the keys of account "0" through core, not through the
// connection under test.
func (e *env) dbsize() int {
	e.t.Helper()
	n, err := e.store.DBSize(bg, "0")
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// expectClosed reads until the server closes the connection and returns
// everything it sent.
func (r *rawConn) expectClosed() string {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(r.nc)
	out := string(r.buf) + string(b)
	r.buf = nil
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("server did not close the connection; got %q", out)
	}
	return out
}

// serverWorks checks a new connection is served.
func (e *env) serverWorks() {
	e.t.Helper()
	r := e.raw()
	r.send("PING\r\n")
	if got := r.readN(1); got != "+PONG\r\n" {
		e.t.Fatalf("new connection: PING = %q", got)
	}
	r.nc.Close()
}

// Frames whose framing is malformed or beyond the limits answer "ERR
// Protocol error" and close the connection, like Redis; the commands before
// them were answered and applied, the refused one was not, and the server
// keeps serving (R6). Before the frame guard, a declared bulk length near
// MaxInt64 panicked redcon's parser (killing the process) and a declared
// count of 2^63-1 spun a core forever.
func TestMalformedAndOversizedFramesAnswerProtocolError_R6(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"bulk length overflowing int", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9223372036854775807\r\n", "-ERR Protocol error: invalid bulk length"},
		{"huge bulk length never sent", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000000\r\nabc", "-ERR Protocol error: invalid bulk length"},
		{"huge argument count", "*9223372036854775807\r\n$3\r\nSET\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"argument count above max", "*2000000\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"endless count line", "*" + strings.Repeat("9", 100), "-ERR Protocol error: invalid multibulk length"},
		{"endless length line", "*1\r\n$" + strings.Repeat("1", 100), "-ERR Protocol error: invalid bulk length"},
		{"non-numeric count", "*x\r\n$3\r\nSET\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"negative bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-5\r\nvalue\r\n", "-ERR Protocol error: invalid bulk length"},
		{"non-numeric bulk length", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$abc\r\nv\r\n", "-ERR Protocol error: invalid bulk length"},
		{"bulk shorter than declared", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvalue\r\n", "-ERR Protocol error: invalid bulk length"},
		{"integer instead of bulk", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n:5\r\n", "-ERR Protocol error: expected '$'"},
		{"missing CR", "*3\n$3\nSET\n", "-ERR Protocol error: invalid multibulk length"},
		{"inline line above 64 KiB", "SET k " + strings.Repeat("v", 70<<10), "-ERR Protocol error: too big inline request"},
		{"CRLF missing after a bulk", "*2\r\n$3\r\nGET\r\n$1\r\nkXY", "-ERR Protocol error: invalid bulk length"},
		// Redis's integer syntax (string2ll) for counts and lengths.
		{"zero-padded zero count", "*00\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"minus zero count", "*-0\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"plus count", "*+1\r\n$4\r\nPING\r\n", "-ERR Protocol error: invalid multibulk length"},
		{"zero-padded length", "*1\r\n$04\r\nPING\r\n", "-ERR Protocol error: invalid bulk length"},
		{"NUL in an inline command", "SET k a\x00b\r\n", "-ERR Protocol error: a NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw()
			// A valid command first: it is answered and applied; the bad
			// frame after it is refused as a whole.
			r.send("SET before 1\r\n" + tc.in)
			if got := r.expectClosed(); !strings.HasPrefix(got, "+OK\r\n"+tc.want) {
				t.Fatalf("replies = %q, want +OK then %q", got, tc.want)
			}
			if n := e.dbsize(); n != 1 {
				t.Fatalf("%d keys after the refused frame, want only 'before'", n)
			}
			e.serverWorks()
			if _, err := e.store.Del(bg, "0", []string{"before"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Inline (telnet-style) commands split as Redis's sdssplitargs does, and
// "*0"/"*-1" frames are ignored as Redis ignores them; a line starting
// with '$' is an inline command (redcon read it as a Tile38 frame and
// answered nothing).
func TestInlineCommandsAndEmptyFramesAsRedis(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("SET a \"\\x41\\n\\t\\\"q\\z\"\r\nSET b b\"c d\"\r\nSET  c   'it\\'s'\r\n*0\r\n*-1\r\n\r\n$4\r\nPING\r\n")
	want := "+OK\r\n+OK\r\n+OK\r\n-ERR unknown command '$4', with args beginning with: \r\n+PONG\r\n"
	if got := r.readN(5); got != want {
		t.Fatalf("replies = %q, want %q", got, want)
	}
	for k, v := range map[string]string{"a": "A\n\t\"qz", "b": "bc d", "c": "it's"} {
		if got, _, _ := e.store.Get(bg, "0", k); string(got) != v {
			t.Errorf("inline SET %s stored %q, want %q", k, got, v)
		}
	}
	r.send("*1\r\n$4\r\nPING\r\n")
	if got := r.readN(1); got != "+PONG\r\n" {
		t.Fatalf("a frame after the inline commands: %q", got)
	}
	// A closing quote that does not end its argument is unbalanced.
	for _, line := range []string{"SET k \"v\"x\r\n", "SET k 'v'x\r\n", "SET k 'v\r\n"} {
		r := e.raw()
		r.send(line)
		if got := r.expectClosed(); !strings.HasPrefix(got, "-ERR Protocol error: unbalanced quotes") {
			t.Errorf("%q: reply = %q", line, got)
		}
	}
	if _, found, _ := e.store.Get(bg, "0", "k"); found {
		t.Fatal("a refused inline command stored its key")
	}
}

// An inline command with unbalanced quotes answers a protocol error and
// closes the connection, dropping what was read with it, as Redis does.
func TestUnbalancedQuotesAnswerProtocolError(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("SET k \"v\r\n")
	if got := r.expectClosed(); !strings.HasPrefix(got, "-ERR Protocol error: unbalanced quotes") {
		t.Fatalf("reply = %q", got)
	}
	if n := e.dbsize(); n != 0 {
		t.Fatalf("%d keys", n)
	}
	e.serverWorks()
}

// The guard refuses a frame the same way whether its bytes arrive at once
// or one by one, and a frame above the whole-command limit (R6).
func TestFrameGuardLimitsAndSplitReads_R6(t *testing.T) {
	g := func() *frameGuard {
		return &frameGuard{maxBulk: 10, maxCount: 3, maxFrame: 30, maxInline: 8}
	}
	for _, tc := range []struct {
		in   string
		ok   int // bytes handed to redcon
		want string
	}{
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n", 26, ""},
		{"PING\r\n*1\r\n$11\r\n", 6, "invalid bulk length (11 bytes; the limit is 10)"},
		{"PING\r\n*4\r\n", 6, "invalid multibulk length (4 arguments; the limit is 3)"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n", 0, "command larger than 30 bytes"},
		{"PING\r\nSET k 123456", 6, "too big inline request"},
		{"*1\r\n$1\r\nab\r\n", 0, "invalid bulk length"},
		{"*1\r\n$-1\r\n", 0, "invalid bulk length"},
		{"*1\r\n:1\r\n", 0, "expected '$'"},
		{"\r\n\n*1\r\n$0\r\n\r\n", 13, ""},
	} {
		whole := g()
		ok, perr := whole.scan([]byte(tc.in))
		split := g()
		sok, sperr := 0, (*protocolError)(nil)
		for i := 0; i < len(tc.in) && sperr == nil; i++ {
			n, err := split.scan([]byte{tc.in[i]})
			sok, sperr = sok+n, err
		}
		// Read at once, the refused frame is withheld whole; read byte by
		// byte, its bytes before the refusal were already handed over.
		for _, r := range []struct {
			ok   bool
			perr *protocolError
		}{{ok == tc.ok, perr}, {sok >= tc.ok && (perr != nil || sok == ok), sperr}} {
			msg := ""
			if r.perr != nil {
				msg = r.perr.msg
			}
			if !r.ok || !strings.Contains(msg, tc.want) || (tc.want == "") != (r.perr == nil) {
				t.Errorf("%q: handed %d (byte by byte %d) bytes, error %q; want %d, %q", tc.in, ok, sok, msg, tc.ok, tc.want)
			}
		}
	}
}

// A frame cut off mid-value by a disconnect applies nothing.
func TestTruncatedFrameAppliesNothing_R6(t *testing.T) {
	e := newEnv(t)
	for _, in := range []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk",
		"*3\r\n$3\r\nSET",
		"*3\r\n",
		"*3",
		"SET k v", // inline without its newline
		"*4\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n", // one argument short
	} {
		r := e.raw()
		r.send(in)
		r.nc.Close()
		eventually(t, "connection gone", func() bool {
			e.srv.mu.Lock()
			defer e.srv.mu.Unlock()
			return len(e.srv.mu.clients) == 0
		})
		if n := e.dbsize(); n != 0 {
			t.Fatalf("%q: %d keys after a truncated frame", in, n)
		}
	}
	e.serverWorks()
}

// Oversized keys and values within the framing limits, too many arguments,
// bad numbers (lock and mutex durations and waits that are zero, negative,
// not numbers, or above limits.max_duration / max_wait included) and
// unknown commands answer a clear error on a connection
// that keeps working, and change nothing (R2).
func TestBadArgumentsAnswerErrorsAndConnectionKeepsWorking_R2(t *testing.T) {
	e := newEnv(t, withRESP(func(rc *Config) { rc.MaxArgs = 64 }))
	c := e.client()
	bigKey := strings.Repeat("k", 600)       // above max_key_bytes (512)
	bigVal := strings.Repeat("v", (1<<20)+1) // above max_value_bytes (1 MiB)
	hugeVal := strings.Repeat("v", 3<<20)    // above it, within the framing limit
	many := []any{"MSET"}
	for i := 0; i < 40; i++ {
		many = append(many, "k", "v")
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SET", bigKey, "v"}, "ERR"},
		{[]any{"SET", "k", bigVal}, "ERR argument of 1048577 bytes is larger than max_value_bytes"},
		{[]any{"SET", "k", hugeVal}, "ERR argument of"},
		{[]any{"MSET", "a", "1", "b", bigVal}, "ERR argument of"},
		{[]any{"INCR", bigKey}, "ERR"},
		{[]any{"SEQ.NEXT", bigKey}, "ERR"},
		{[]any{"LOCK.ACQUIRE", bigKey, "o", "10"}, "ERR"},
		{[]any{"MLOCK", bigKey, "1", "0"}, "ERR"},
		{many, "ERR too many arguments: 81, max_args is 64"},
		{[]any{"INCRBY", "k", "abc"}, "ERR value is not an integer or out of range"},
		{[]any{"INCRBY", "k", "9223372036854775808"}, "ERR value is not an integer or out of range"},
		{[]any{"INCRBY", "k", "1.5"}, "ERR value is not an integer or out of range"},
		{[]any{"DECRBY", "k", "-9223372036854775808"}, "ERR"},
		{[]any{"INCRBYFLOAT", "k", "nan"}, "ERR"},
		{[]any{"INCRBYFLOAT", "k", "inf"}, "ERR"},
		{[]any{"CTR.ADD", "k", "x"}, "ERR"},
		{[]any{"SET", "k", "v", "EX", "abc"}, "ERR value is not an integer or out of range"},
		{[]any{"SET", "k", "v", "EX", "0"}, "ERR invalid expire time in 'set' command"},
		{[]any{"SET", "k", "v", "EX", "-1"}, "ERR invalid expire time in 'set' command"},
		{[]any{"SET", "k", "v", "PX", "99999999999999999999"}, "ERR value is not an integer or out of range"},
		{[]any{"SET", "k", "v", "EX", "9223372036854775807"}, "ERR"},
		{[]any{"SET", "k", "v", "EXAT", "-5"}, "ERR"},
		{[]any{"SET", "k", "v", "NX", "XX"}, "ERR syntax error"},
		{[]any{"SETEX", "k", "-1", "v"}, "ERR"},
		{[]any{"PSETEX", "k", "abc", "v"}, "ERR"},
		{[]any{"SEQ.NEXT", "k", "COUNT", "0"}, "ERR"},
		{[]any{"SEQ.NEXT", "k", "COUNT", "-1"}, "ERR"},
		{[]any{"SEQ.NEXT", "k", "COUNT", "abc"}, "ERR"},
		{[]any{"SEQ.NEXT", "k", "COUNT", "99999999999999999999"}, "ERR"},
		{[]any{"KV.SET", "k", "v", "VER", "abc"}, "ERR"},
		{[]any{"KV.SET", "k", "v", "VER", "-1"}, "ERR"},
		{[]any{"KV.SET", "k", "v", "TTL", "nan"}, "ERR"},
		{[]any{"KV.SET", "k", "v", "TTL", "-1"}, "ERR"},
		{[]any{"LOCK.ACQUIRE", "k", "o", "0"}, "ERR"},
		{[]any{"LOCK.ACQUIRE", "k", "o", "-1"}, "ERR"},
		{[]any{"LOCK.ACQUIRE", "k", "o", "nan"}, "ERR"},
		{[]any{"LOCK.ACQUIRE", "k", "o", "inf"}, "ERR"},
		{[]any{"LOCK.ACQUIRE", "k", "o", "86401"}, "ERR"},
		{[]any{"LOCK.ACQUIRE", "k", "o", "1e300"}, "ERR"},
		{[]any{"MLOCK", "m", "0", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "-1", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "nan", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "inf", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "1e300", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "86400.5", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "abc", "0"}, "ERR"},
		{[]any{"MLOCK", "m", "1", "-1"}, "ERR"},
		{[]any{"MLOCK", "m", "1", "nan"}, "ERR"},
		{[]any{"MLOCK", "m", "1", "3601"}, "ERR"},
		{[]any{"MLOCK", "m", "1", "1e300"}, "ERR"},
		{[]any{"MLOCK.EXTEND", "m", "1", "0"}, "ERR"},
		{[]any{"MUNLOCK", "m", "abc"}, "ERR"},
		{[]any{"MUNLOCK", "m", "-1"}, "ERR"},
		{[]any{"GETRANGE", "k", "a", "b"}, "ERR value is not an integer or out of range"},
		{[]any{"SETRANGE", "k", "-1", "v"}, "ERR"},
		{[]any{"SETRANGE", "k", "99999999999", "v"}, "ERR"},
		{[]any{"EXPIRE", "k", "abc"}, "ERR value is not an integer or out of range"},
		{[]any{"SCAN", "abc"}, "ERR"},
		{[]any{"SCAN", "0", "COUNT", "-1"}, "ERR"},
		{[]any{"FOO", "bar"}, "ERR unknown command 'FOO', with args beginning with: 'bar'"},
		{[]any{"EVAL", "return 1", "0"}, "ERR unknown command"},
		{[]any{strings.Repeat("X", 1000)}, "ERR unknown command"},
		{[]any{"GET"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"SET", "k"}, "ERR wrong number of arguments for 'set' command"},
	} {
		err := c.Do(bg, tc.args...).Err()
		name := tc.args[0].(string)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%.40s …: error = %.200v, want prefix %q", name, err, tc.want)
		}
		if v, err := c.Ping(bg).Result(); err != nil || v != "PONG" {
			t.Fatalf("%.40s: connection broken afterwards: %v %v", name, v, err)
		}
		if n := e.dbsize(); n != 0 {
			t.Fatalf("%.40s: %d keys after a refused command", name, n)
		}
	}
	// No refused MLOCK took the mutex.
	if _, err := c.Do(bg, "MLOCK", "m", "1", "0").Int64(); err != nil {
		t.Fatalf("MLOCK after the refused ones: %v", err)
	}
	e.serverWorks()
}

// A client that pipelines GETs of a large value and never reads its replies
// blocks its own connection on the socket: the server's heap stays bounded
// while it sends, and other clients are still served (R7). Before R7 a
// connection built the replies of a whole pipeline (everything redcon had
// buffered) in memory before writing any.
func TestClientThatNeverReadsDoesNotGrowServerMemory_R7(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	const valSize = 100 << 10
	must(t, c.Set(bg, "big", strings.Repeat("x", valSize), 0).Err())

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A large first frame grows redcon's read buffer (to 256 KiB), so that
	// every later read holds ~37,000 inline GETs: without R7 the replies of
	// one read would be 3.7 GB.
	chunk := []byte(strings.Repeat("GET big\r\n", 4096))
	const total = 50 << 20
	var sent int64
	var sentMu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := "*3\r\n$3\r\nSET\r\n$3\r\npad\r\n$200000\r\n" + strings.Repeat("p", 200000) + "\r\n"
		if _, err := nc.Write([]byte(first)); err != nil {
			return
		}
		for sent < total {
			nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
			n, err := nc.Write(chunk)
			sentMu.Lock()
			sent += int64(n)
			sentMu.Unlock()
			if err != nil {
				return // the server stopped reading: back-pressure
			}
		}
	}()
	var peak uint64
	for {
		select {
		case <-done:
		case <-time.After(50 * time.Millisecond):
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			continue
		}
		break
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	peak = max(peak, ms.HeapInuse)
	sentMu.Lock()
	t.Logf("client sent %d MB of GETs without reading; server heap in use %d MB before, peak %d MB", sent>>20, before.HeapInuse>>20, peak>>20)
	sentMu.Unlock()
	if growth := int64(peak) - int64(before.HeapInuse); growth > 256<<20 {
		t.Fatalf("server heap grew by %d MB while a client did not read its replies", growth>>20)
	}
	// The stuck client blocks only itself.
	if v, err := c.Get(bg, "pad").Result(); err != nil || len(v) != 200000 {
		t.Fatalf("other client: GET = %d bytes, %v", len(v), err)
	}
	e.serverWorks()
}

// FuzzFrameGuard: whatever bytes a client sends, in whatever pieces, what
// the guard lets through never panics redcon's parser, and no command
// redcon parses from it exceeds the guard's limits (R6). (redcon alone
// panics on "*1\r\n$9223372036854775807\r\n".)
//
// go test ./resp -run '^$' -fuzz FuzzFrameGuard -fuzztime 200000x
func FuzzFrameGuard(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		g := &frameGuard{maxBulk: 64, maxCount: 8, maxFrame: 256, maxInline: 64}
		cut := 0
		if len(data) > 0 {
			cut = int(split) % (len(data) + 1)
		}
		var allowed []byte
		for _, piece := range [][]byte{data[:cut], data[cut:]} {
			n, perr := g.scan(piece)
			allowed = append(allowed, piece[:n]...)
			if perr != nil {
				break
			}
		}
		rd := redcon.NewReader(bytes.NewReader(allowed))
		for {
			cmds, err := rd.ReadCommands()
			if err != nil {
				return
			}
			for _, c := range cmds {
				// An inline line of maxInline bytes holds up to half as many
				// arguments; redcon re-encodes it as RESP in Raw.
				if int64(len(c.Args)) > max(g.maxCount, g.maxInline/2+1) || int64(len(c.Raw)) > g.maxFrame {
					t.Fatalf("%q: command of %d args, %d bytes passed the guard", data, len(c.Args), len(c.Raw))
				}
				for _, a := range c.Args {
					if int64(len(a)) > g.maxBulk {
						t.Fatalf("%q: argument of %d bytes passed the guard", data, len(a))
					}
				}
			}
		}
	})
}

// splitArgs never panics and never reads past its line, whatever the
// quotes and escapes (the seeds run with go test; -fuzz explores more).
func FuzzSplitArgs(f *testing.F) {
	for _, s := range []string{`SET a "\x41\n"`, `a "b`, `'it\'s'`, `"\x4"`, `"\`, `'\`, "a\x00b", `b"c"`, `"a"b`, ``, `   `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args, err := splitArgs([]byte(s))
		if err == nil && len(s) > 0 && len(args) == 0 && strings.TrimLeft(s, " \t\n\v\f\r") != "" && s[len(s)-len(strings.TrimLeft(s, " \t\n\v\f\r"))] != 0 {
			t.Fatalf("%q split into no arguments", s)
		}
	})
}
