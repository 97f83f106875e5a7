package resp

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/persist"
)

// TestMain fails the package when a test leaves server goroutines behind
// (STYLE 13).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			os.Stderr.WriteString("leaked goroutines:\n" + leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var bad []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "concurrencydb/resp.") || strings.Contains(g, "concurrencydb/core.") || strings.Contains(g, "tidwall/redcon.") {
				if !strings.Contains(g, "TestMain") && !strings.Contains(g, "leakedGoroutines") {
					bad = append(bad, g)
				}
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return strings.Join(bad, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// env is one store and RESP server on a loopback port.
type env struct {
	t     *testing.T
	store *core.Store
	srv   *Server
	addr  string
}

// envConfig is what an envOpt may change before the env starts.
type envConfig struct {
	core    core.Config
	resp    Config
	persist persist.Options
	wrap    func(net.Listener) net.Listener // what Serve gets, when set
}

type envOpt func(*envConfig)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	// Two event loops (the binary's default is one), so that the tests run
	// connections on different loops at once, as a multi-core setup does.
	ec := envConfig{core: core.Config{ReapInterval: 50 * time.Millisecond}, resp: Config{EventLoops: 2}}
	for _, o := range opts {
		o(&ec)
	}
	ccfg, rcfg := ec.core, ec.resp
	db, err := persist.Open(t.TempDir(), ec.persist)
	if err != nil {
		t.Fatal(err)
	}
	st, err := core.Open(db, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(st, rcfg)
	served := make(chan error, 1)
	serveLn := ln
	if ec.wrap != nil {
		serveLn = ec.wrap(ln)
	}
	go func() { served <- srv.Serve(serveLn) }()
	e := &env{t: t, store: st, srv: srv, addr: ln.Addr().String()}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := st.Close(); err != nil && !errors.Is(err, core.ErrUnavailable) {
			t.Errorf("store close: %v", err)
		}
		db.Close()
	})
	return e
}

// client returns a go-redis client (RESP3 requested: it must fall back).
func (e *env) client(opts ...func(*redis.Options)) *redis.Client {
	o := &redis.Options{Addr: e.addr, Protocol: 3, ReadTimeout: 10 * time.Second, PoolSize: 4, MaxRetries: -1}
	for _, f := range opts {
		f(o)
	}
	c := redis.NewClient(o)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// raw opens a plain TCP connection for protocol-level tests.
func (e *env) raw() *rawConn {
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	return &rawConn{t: e.t, nc: nc}
}

type rawConn struct {
	t   *testing.T
	nc  net.Conn
	buf []byte
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := r.nc.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// readN reads until n complete top-level replies are buffered and returns
// their raw text.
func (r *rawConn) readN(n int) string {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if end, ok := replyEnd(r.buf, n); ok {
			out := string(r.buf[:end])
			r.buf = r.buf[end:]
			return out
		}
		b := make([]byte, 64<<10)
		m, err := r.nc.Read(b)
		r.buf = append(r.buf, b[:m]...)
		if err != nil {
			r.t.Fatalf("read: %v (have %q)", err, r.buf)
		}
	}
}

// replyEnd finds the end of n RESP2 replies in b.
func replyEnd(b []byte, n int) (int, bool) {
	pos := 0
	for i := 0; i < n; i++ {
		end, ok := oneReply(b, pos)
		if !ok {
			return 0, false
		}
		pos = end
	}
	return pos, true
}

func oneReply(b []byte, pos int) (int, bool) {
	nl := strings.Index(string(b[pos:]), "\r\n")
	if nl < 0 {
		return 0, false
	}
	line := string(b[pos : pos+nl])
	next := pos + nl + 2
	if line == "" {
		return 0, false
	}
	switch line[0] {
	case '+', '-', ':':
		return next, true
	case '$':
		var n int
		for _, c := range line[1:] {
			if c == '-' {
				return next, true
			}
			n = n*10 + int(c-'0')
		}
		if len(b) < next+n+2 {
			return 0, false
		}
		return next + n + 2, true
	case '*':
		var n int
		for _, c := range line[1:] {
			if c == '-' {
				return next, true
			}
			n = n*10 + int(c-'0')
		}
		for i := 0; i < n; i++ {
			end, ok := oneReply(b, next)
			if !ok {
				return 0, false
			}
			next = end
		}
		return next, true
	}
	return 0, false
}

var bg = context.Background()

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err is a Redis error starting with prefix.
func wantErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("error = %v, want prefix %q", err, prefix)
	}
}

// eventually polls cond (for states no channel reports, such as a waiter
// entering a mutex queue) until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func withCore(f func(*core.Config)) envOpt { return func(ec *envConfig) { f(&ec.core) } }
func withRESP(f func(*Config)) envOpt      { return func(ec *envConfig) { f(&ec.resp) } }

// shutdownAsync starts a graceful Shutdown (bounded at 10 s) and returns
// where its result arrives.
func (e *env) shutdownAsync() <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	return done
}
