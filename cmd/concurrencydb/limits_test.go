package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/persist"
)

// Issue 5, "Bad input and limits": many connections and slow clients.

const manyConns = 10000 // resp.max_conns and http.max_conns in config.yml

// manyConnsFiles is the open-file limit under which the server serves
// manyConns and one more: the limit less its tables' and its own share
// (fdbudget.Split).
const manyConnsFiles = manyConns + 1500

// raiseFileLimit lifts the soft open-file limit to the hard one (the server
// process inherits it) and skips the test when even that is below need.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("getrlimit: %v", err)
	}
	if rl.Cur < need {
		if rl.Max < need {
			rl.Max = need // works only with CAP_SYS_RESOURCE
		}
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Skipf("cannot raise RLIMIT_NOFILE to %d: %v", need, err)
		}
	}
}

// dialAll opens n connections to addr with a few dialers; the test owns
// them all at once.
func dialAll(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				c, err := net.DialTimeout("tcp", addr, 30*time.Second)
				if err != nil {
					errs <- fmt.Errorf("dial %d: %w", i, err)
					return
				}
				c.SetDeadline(time.Now().Add(60 * time.Second))
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

// eachConn runs fn on every connection from 16 goroutines and fails on the
// first error.
func eachConn(t *testing.T, conns []net.Conn, fn func(i int, c net.Conn) error) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(conns); i += 16 {
				if err := fn(i, conns[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// 10,000 RESP connections (resp.max_conns) are open at once against the
// real binary and each is served; the next one is refused with a clear
// error, and once connections close new ones are served again.
func TestTenThousandRESPConnectionsAreServedAndMaxConnsRefusesMore(t *testing.T) {
	raiseFileLimit(t, manyConnsFiles)
	bin := buildBinary(t)
	p := startWithRESP(t, bin, filepath.Join(t.TempDir(), "data"))
	if code, _ := p.post(t, "/db/0/kv/k"); code != 200 {
		t.Fatalf("POST kv: %d", code)
	}
	conns := dialAll(t, p.resp, manyConns)
	// All open at once: every one pipelines a PING and a GET and reads both.
	eachConn(t, conns, func(i int, c net.Conn) error {
		_, err := c.Write([]byte("PING\r\nGET k\r\n"))
		return err
	})
	eachConn(t, conns, func(i int, c net.Conn) error {
		r := bufio.NewReader(c)
		var got string
		for len(got) < len("+PONG\r\n$0\r\n\r\n") {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("after %q: %w", got, err)
			}
			got += line
		}
		if got != "+PONG\r\n$0\r\n\r\n" {
			return fmt.Errorf("replies %q", got)
		}
		return nil
	})
	extra, err := net.DialTimeout("tcp", p.resp, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(extra).ReadString('\n')
	if err != nil || line != "-ERR max number of clients reached\r\n" {
		t.Fatalf("connection %d: %q, %v; want the max clients error", manyConns+1, line, err)
	}
	for _, c := range conns[:100] {
		c.Close()
	}
	deadline := time.Now().Add(30 * time.Second)
	for !respUp(p.resp) {
		if time.Now().After(deadline) {
			t.Fatal("no connection served after 100 closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// 10,000 HTTP keep-alive connections are open at once against the real
// binary; each is served twice on the same connection.
func TestTenThousandHTTPKeepAliveConnectionsAreServed(t *testing.T) {
	raiseFileLimit(t, manyConnsFiles)
	bin := buildBinary(t)
	p := start(t, bin, filepath.Join(t.TempDir(), "data"))
	if code, _ := p.post(t, "/db/acme/counter/c"); code != 200 {
		t.Fatalf("POST counter: %d", code)
	}
	addr := strings.TrimPrefix(p.base, "http://")
	// The keep-alive connections of the checks above would count.
	http.DefaultClient.CloseIdleConnections()
	conns := dialAll(t, addr, manyConns)
	readers := make([]*bufio.Reader, len(conns))
	for round := 0; round < 2; round++ {
		eachConn(t, conns, func(i int, c net.Conn) error {
			_, err := c.Write([]byte("GET /db/acme/counter/c HTTP/1.1\r\nHost: x\r\n\r\n"))
			return err
		})
		eachConn(t, conns, func(i int, c net.Conn) error {
			if readers[i] == nil {
				readers[i] = bufio.NewReader(c)
			}
			resp, err := http.ReadResponse(readers[i], nil)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(b) != "1\n" || resp.Close {
				return fmt.Errorf("round %d: %d %q close=%v %v", round, resp.StatusCode, b, resp.Close, err)
			}
			return nil
		})
	}
	// http.max_conns: one more is answered 503 and closed.
	extra, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := extra.Write([]byte("GET /db/acme/counter/c HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("connection %d: %v; want a 503", manyConns+1, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !resp.Close || !strings.Contains(string(b), "too_many_connections") {
		t.Fatalf("connection %d: %d close=%v %s; want 503 too_many_connections", manyConns+1, resp.StatusCode, resp.Close, b)
	}
	// Operators see the refusal: once a connection is free, /metrics
	// counts it.
	conns[0].Close()
	want := `concurrencydb_rejected_connections_total{protocol="http"} 1`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body := p.get(t, "/metrics")
		if code == 200 && strings.Contains(body, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics: %d, without %q", code, want)
		}
	}
}

// newLimitedHTTP serves the API with l on a loopback port.
func newLimitedHTTP(t *testing.T, l httpapi.Limits) (addr string, store *core.Store) {
	t.Helper()
	db, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := core.Open(db, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(st, httpapi.Config{}, l)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
		st.Close()
		db.Close()
	})
	return ln.Addr().String(), st
}

// cutOff reports whether the server closes c while the client trickles
// bytes from send, one every tick; it gives up (false) after 20 s.
func cutOff(c net.Conn, send string) bool {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		io.Copy(io.Discard, c)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-closed:
			return true
		case <-time.After(20 * time.Millisecond):
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte{send[i%len(send)]}); err != nil {
			<-closed
			return true
		}
	}
	return false
}

// The production limits are set, and the server built with them enforces
// them: a client that sends its headers slowly, one that sends its body
// slowly, and an idle keep-alive connection are all cut off, while other
// clients are served and the slow body stores nothing.
func TestSlowHTTPClientsAreCutOff(t *testing.T) {
	d := httpapi.DefaultLimits
	if d.ReadHeader <= 0 || d.Read <= 0 || d.Idle <= 0 || d.HeaderMax <= 0 {
		t.Fatalf("default HTTP limits not all set: %+v", d)
	}
	if got := httpapi.NewServer(nil, httpapi.Config{}, httpapi.Limits{}).Limits(); got != d {
		t.Fatalf("a server built without limits does not take the defaults: %+v", got)
	}

	addr, st := newLimitedHTTP(t, httpapi.Limits{ReadHeader: 200 * time.Millisecond, Read: 400 * time.Millisecond, Idle: 200 * time.Millisecond, HeaderMax: 4 << 10})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	healthy := func() {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("other client: %v %v", resp, err)
		}
		resp.Body.Close()
	}

	slowHeaders := dial()
	slowHeaders.Write([]byte("GET /healthz HTTP/1.1\r\n"))
	healthy()
	if !cutOff(slowHeaders, "X-Slow: abcdefgh\r\n") {
		t.Fatal("a client trickling its headers was not cut off")
	}

	slowBody := dial()
	slowBody.Write([]byte("POST /db/acme/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"))
	healthy()
	if !cutOff(slowBody, "v") {
		t.Fatal("a client trickling its body was not cut off")
	}
	if _, err := st.KVGet(t.Context(), "acme", "slow"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("a cut-off body stored something: %v", err)
	}

	idle := dial()
	idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle client's first request: %v %v", resp, err)
	}
	resp.Body.Close()
	idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err == nil || errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		t.Fatalf("an idle keep-alive connection was not closed: %v", err)
	}

	big := dial()
	big.SetDeadline(time.Now().Add(20 * time.Second))
	big.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 64<<10) + "\r\n\r\n"))
	resp, err = http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %v %v, want 431", resp, err)
	}
	healthy()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Under a small open-file limit, a flood of connections cannot take the
// descriptors the storage needs: connections beyond the limit's share for
// them (fdbudget) are refused, and writes that make Pebble create table
// files keep succeeding. Before, the connections took every descriptor,
// Pebble failed to create a table, and the store refused writes until a
// restart (a review's reproduction: ulimit -n 200, 400 idle connections,
// then 300 values of 60 KB: MISCONF from the 133rd write on).
func TestAFloodOfConnectionsCannotTakeTheStoragesFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const limit = 300
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	p := startWrapped(t, []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, limit)}, bin, data, freeAddr(t))
	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	refused := 0
	for range 2 * limit {
		c, err := net.DialTimeout("tcp", p.resp, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	// Every connection is either served or refused: none is left hanging
	// without a descriptor.
	for _, c := range flood {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			refused++
			continue
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		switch {
		case line == "+PONG\r\n":
		case err != nil || line == "-ERR max number of clients reached\r\n":
			refused++
		default:
			t.Fatalf("PING on a flood connection: %q, %v", line, err)
		}
	}
	if refused == 0 {
		t.Fatalf("all %d connections were admitted under an open-file limit of %d", len(flood), limit)
	}
	// Keep the admitted ones open; write enough to make Pebble flush and
	// create tables, on one of them.
	var w net.Conn
	for _, c := range flood {
		if c.SetDeadline(time.Now().Add(60*time.Second)) == nil {
			if _, err := c.Write([]byte("PING\r\n")); err == nil {
				if line, err := bufio.NewReader(c).ReadString('\n'); err == nil && line == "+PONG\r\n" {
					w = c
					break
				}
			}
		}
	}
	if w == nil {
		t.Fatal("no flood connection is served")
	}
	r := bufio.NewReader(w)
	value := strings.Repeat("v", 60<<10)
	for i := range 300 {
		fmt.Fprintf(w, "*3\r\n$3\r\nSET\r\n$%d\r\nkey-%d\r\n$%d\r\n%s\r\n", len(fmt.Sprint("key-", i)), i, len(value), value)
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			t.Fatalf("write %d under the flood: %q, %v\nserver log:\n%s", i, line, err, p.stderr)
		}
	}
	for _, c := range flood {
		c.Close() // the budget is shared: HTTP gets descriptors again
	}
	flood = nil
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
			t.Fatalf("/healthz after the writes: %d\nserver log:\n%s", resp.StatusCode, p.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz after the flood closed: %v", err)
		}
	}
}
