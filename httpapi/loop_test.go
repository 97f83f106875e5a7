package httpapi_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/internal/evloop/evlooptest"
	"github.com/concurrencydb/concurrencydb/persist"
)

// Tests of the event-loop transport (loop.go, conn.go): H7, framing,
// pipelining, off-loop requests.

// syncGate holds the write-ahead log's syncs while a test looks at what
// the server answers meanwhile.
type syncGate struct {
	entered chan struct{}
	hold    atomic.Pointer[chan struct{}]
}

func (g *syncGate) MaybeError(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
	default:
		return nil
	}
	if h := g.hold.Load(); h != nil && strings.HasSuffix(op.Path, ".log") {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-*h
	}
	return nil
}

func (g *syncGate) String() string { return "syncGate" }

// holdSyncs makes log syncs block until the returned release is called
// (also at the end of the test, should an assertion fail first).
func (g *syncGate) holdSyncs(t *testing.T) (release func()) {
	h := make(chan struct{})
	g.hold.Store(&h)
	release = sync.OnceFunc(func() {
		g.hold.Store(nil)
		close(h)
	})
	t.Cleanup(release)
	return release
}

// gatedServer is the API over a store whose log syncs g can hold.
func gatedServer(t *testing.T, hcfg httpapi.Config) (*testServer, *syncGate) {
	t.Helper()
	g := &syncGate{entered: make(chan struct{}, 1)}
	store := openStore(t, persist.Options{FS: errorfs.Wrap(vfs.Default, g)})
	return &testServer{url: serveLoop(t, store, hcfg), store: store}, g
}

// syncing waits for a held sync to begin.
func (g *syncGate) syncing(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no log sync began within 10 s")
	}
}

// openStore opens a store in a temp dir, closed when the test ends.
func openStore(t *testing.T, o persist.Options) *core.Store {
	t.Helper()
	return httpapi.OpenTestStore(t, o)
}

// rawHTTP is a client connection that writes bytes as given and reads
// responses one by one.
type rawHTTP struct {
	nc net.Conn
	br *bufio.Reader
}

func (s *testServer) raw(t *testing.T) *rawHTTP {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawHTTP{nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawHTTP) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		t.Fatal(err)
	}
}

// rawReply is a response read in full; close is its Connection: close
// (which net/http's reader takes out of the header).
type rawReply struct {
	reply
	close bool
}

// read reads one response in full.
func (c *rawHTTP) read(t *testing.T, method string) rawReply {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return rawReply{reply{status: resp.StatusCode, header: resp.Header, body: b}, resp.Close}
}

// wantStored reads the response to the method request just sent on c,
// which must be 200, then checks that a GET of path answers want.
func (c *rawHTTP) wantStored(t *testing.T, s *testServer, method, path, want string) {
	t.Helper()
	if got := c.read(t, method); got.status != 200 {
		t.Fatalf("%s %s = %d %s", method, path, got.status, got.body)
	}
	if got := s.get(t, path); string(got.body) != want {
		t.Fatalf("%s %s stored %q, want %q", method, path, got.body, want)
	}
}

// closed reports whether the server closed c (EOF) within a few seconds.
func (c *rawHTTP) closed(t *testing.T) bool {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// assertNothing checks that no byte arrives on c for a short while.
func (c *rawHTTP) assertNothing(t *testing.T, what string) {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
	if b, err := c.br.Peek(1); err == nil {
		t.Fatalf("%s: got %q before the write was synced (H7)", what, b)
	}
	c.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
}

// No response leaves before what it reflects is fsynced (H7, D1): neither
// the acknowledgement of a write nor, on another connection, a read of
// the value that write is still syncing; the request is reported to
// metrics only then, so its latency includes the fsync.
func TestResponseWaitsForFsync_H7(t *testing.T) {
	var reported atomic.Int64
	s, g := gatedServer(t, httpapi.Config{Observe: func(cmd, status string, d time.Duration) {
		if cmd == "POST /db/{acc}/kv/{id}" {
			reported.Add(1)
		}
	}})
	w, r := s.raw(t), s.raw(t)
	release := g.holdSyncs(t)
	w.send(t, "POST /db/a/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv")
	g.syncing(t) // the batch holding the write is being synced
	r.send(t, "GET /db/a/kv/k HTTP/1.1\r\nHost: x\r\n\r\n")
	w.assertNothing(t, "the write's acknowledgement")
	r.assertNothing(t, "a read of the unsynced value")
	if n := reported.Load(); n != 0 {
		t.Fatalf("the write was reported to metrics %d times before its fsync", n)
	}
	release()
	if got := w.read(t, "POST"); got.status != 200 || string(got.body) != "1\n" {
		t.Fatalf("write = %d %q", got.status, got.body)
	}
	if got := r.read(t, "GET"); got.status != 200 || string(got.body) != "v" {
		t.Fatalf("read = %d %q", got.status, got.body)
	}
	if n := reported.Load(); n != 1 {
		t.Fatalf("the write was reported %d times, want 1", n)
	}
}

// Requests pipelined on one connection are answered in order, and their
// writes share one fsync.
func TestPipelinedRequestsAnswerInOrderAndShareOneFsync_H7(t *testing.T) {
	s, g := gatedServer(t, httpapi.Config{})
	c := s.raw(t)
	c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") // warm up
	c.read(t, "GET")
	before := s.store.Stats().Commits.Load()
	release := g.holdSyncs(t)
	var b strings.Builder
	for range 16 {
		b.WriteString("POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	b.WriteString("GET /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
	c.send(t, b.String())
	g.syncing(t)
	release()
	for i := 1; i <= 16; i++ {
		if got := c.read(t, "POST"); got.status != 200 || string(got.body) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("response %d = %d %q", i, got.status, got.body)
		}
	}
	if got := c.read(t, "GET"); string(got.body) != "16\n" {
		t.Fatalf("GET after the pipeline = %q", got.body)
	}
	if n := s.store.Stats().Commits.Load() - before; n != 1 {
		t.Fatalf("16 pipelined writes took %d fsyncs, want 1", n)
	}
}

// A client that sends its requests and half-closes its socket (shutdown
// SHUT_WR, as `printf … | nc -N` does) gets every response, durable
// writes' included, as from net/http: gnet closes the connection at the
// EOF, before the pass's commit would release them.
func TestHalfClosedClientGetsItsResponses(t *testing.T) {
	s, _ := gatedServer(t, httpapi.Config{})
	for i := 1; i <= 20; i++ {
		c := s.raw(t)
		c.send(t, "POST /db/a/sequence/hc HTTP/1.1\r\nHost: x\r\n\r\nGET /db/a/sequence/hc HTTP/1.1\r\nHost: x\r\n\r\n")
		if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if got := c.read(t, "POST"); got.status != 200 || string(got.body) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("round %d: POST = %d %q", i, got.status, got.body)
		}
		if got := c.read(t, "GET"); got.status != 200 || string(got.body) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("round %d: GET = %d %q", i, got.status, got.body)
		}
	}
}

// A body sent in chunks, or after the server's 100 Continue, is stored
// byte for byte; a Content-Length over limits.max_value_bytes is refused
// 413 before the body is sent, and changes nothing.
func TestChunkedExpectContinueAndOversizedBodies(t *testing.T) {
	s := newServer(t)
	c := s.raw(t)
	c.send(t, "POST /db/a/kv/ch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
	c.assertNothing(t, "a response to half a chunked body")
	c.send(t, "4\r\ndefg\r\n0\r\nX-Trailer: y\r\n\r\n")
	c.wantStored(t, s, "POST", "/db/a/kv/ch", "abcdefg")

	c.send(t, "PUT /db/a/kv/ex HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if got := c.read(t, "PUT"); got.status != http.StatusContinue {
		t.Fatalf("Expect: 100-continue got %d first", got.status)
	}
	c.send(t, "hello")
	c.wantStored(t, s, "PUT", "/db/a/kv/ex", "hello")

	max := s.store.Config().MaxValueBytes
	c.send(t, fmt.Sprintf("PUT /db/a/kv/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", max+1))
	got := c.read(t, "PUT")
	if got.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(got.body), `"too_large"`) {
		t.Fatalf("oversized body = %d %s", got.status, got.body)
	}
	if !got.close || !c.closed(t) {
		t.Fatal("the connection stayed open after a refused body")
	}
	if got := s.get(t, "/db/a/kv/big"); got.status != 404 {
		t.Fatalf("a refused body stored something: %d", got.status)
	}
}

// A client that waits for 100 Continue before sending a body is answered
// from the head when no route reads that body, as net/http does (it sends
// 100 Continue only when the handler reads): an unknown path (404), a
// method the path does not serve (405), a route that takes no body (400,
// which must still run nothing: H2), chunked or not; the connection then
// closes, since what the client sends next may be the body. A kv write is
// still told to send it (found by review: every one was told to).
func TestExpectContinueIsAnsweredFromTheHeadWhenNoRouteReadsTheBody(t *testing.T) {
	s := newServer(t)
	for _, c := range []struct {
		head   string
		status int
	}{
		{"POST /db/a/nope/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 500000\r\n\r\n", 404},
		{"PATCH /db/a/kv/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 500000\r\n\r\n", 405},
		{"POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 500000\r\n\r\n", 400},
		{"POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST /db/a/mlock/m?dur=10 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400},
		{"PUT /db/a/kv/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400},
	} {
		r := s.raw(t)
		r.send(t, c.head)
		got := r.read(t, "POST")
		if got.status != c.status {
			t.Fatalf("%q: %d %s first, want %d from the head", c.head, got.status, got.body, c.status)
		}
		if !got.close || !r.closed(t) {
			t.Fatalf("%q: the connection stayed open after a request answered without its body", c.head)
		}
	}
	if got := s.get(t, "/db/a/sequence/s"); got.status != 404 {
		t.Fatalf("a POST answered from its head ran: GET sequence = %d %s", got.status, got.body)
	}
	if got := s.post(t, "/db/a/mlock/m?dur=10"); got.status != 200 {
		t.Fatalf("an MLOCK answered from its head ran: the mutex is held (%d %s)", got.status, got.body)
	}
	r := s.raw(t)
	r.send(t, "PUT /db/a/kv/k HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if got := r.read(t, "PUT"); got.status != http.StatusContinue {
		t.Fatalf("a kv write with Expect got %d first, want 100", got.status)
	}
	r.send(t, "hello")
	r.wantStored(t, s, "PUT", "/db/a/kv/k", "hello")
}

// A body of the largest size sent in 1-byte chunks is stored (the chunk
// framing is 6 bytes a byte); framing padded beyond that with chunk
// extensions is refused 413 before it is buffered, and stores nothing.
func TestTinyChunksUpToTheLimitAreStoredAndPaddedFramingRefused(t *testing.T) {
	const max = 64 << 10
	s := newServerWith(t, core.Config{MaxValueBytes: max}, httpapi.Config{})
	val := bytes.Repeat([]byte("z"), max)
	var b strings.Builder
	b.WriteString("PUT /db/a/kv/tiny HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, c := range val {
		b.WriteString("1\r\n")
		b.WriteByte(c)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\n\r\n")
	c := s.raw(t)
	c.send(t, b.String())
	c.wantStored(t, s, "PUT", "/db/a/kv/tiny", string(val))

	b.Reset()
	b.WriteString("PUT /db/a/kv/padded HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	ext := ";" + strings.Repeat("e", 1000)
	for range 500 { // 500 KiB of framing for 500 bytes
		b.WriteString("1" + ext + "\r\nz\r\n")
	}
	c = s.raw(t)
	c.send(t, b.String())
	got := c.read(t, "PUT")
	if got.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(got.body), "chunk framing") {
		t.Fatalf("padded chunk framing = %d %s", got.status, got.body)
	}
	if got := s.get(t, "/db/a/kv/padded"); got.status != 404 {
		t.Fatalf("a refused body stored something: %d", got.status)
	}
}

// Connection management as net/http does it: HTTP/1.1 keeps the
// connection; Connection: close and HTTP/1.0 without keep-alive close it
// after the response; HTTP/1.0 with keep-alive keeps it and says so;
// a malformed request is answered 400 (JSON, H3) and closes it; a HEAD
// gets the headers without the body.
func TestConnectionsOpenAndCloseAsRequested(t *testing.T) {
	s := newServer(t)
	s.post(t, "/db/a/kv/k?x=1") // a value for the GETs below (empty body)

	c := s.raw(t)
	c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if got := c.read(t, "GET"); got.status != 200 || got.close || got.header.Get("Date") == "" {
		t.Fatalf("first response = %d %v", got.status, got.header)
	}
	if got := c.read(t, "GET"); got.status != 200 || !got.close {
		t.Fatalf("Connection: close response = %d %v", got.status, got.header)
	}
	if !c.closed(t) {
		t.Fatal("Connection: close did not close the connection")
	}

	c = s.raw(t)
	c.send(t, "GET /healthz HTTP/1.0\r\n\r\n")
	if got := c.read(t, "GET"); got.status != 200 || !c.closed(t) {
		t.Fatalf("HTTP/1.0 = %d, or the connection stayed open", got.status)
	}

	c = s.raw(t)
	c.send(t, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if got := c.read(t, "GET"); got.close {
		t.Fatal("HTTP/1.0 keep-alive was not kept alive")
	}
	c.send(t, "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if got := c.read(t, "GET"); got.status != 200 {
		t.Fatalf("second HTTP/1.0 keep-alive request = %d", got.status)
	}

	c = s.raw(t)
	c.send(t, "HEAD /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := c.read(t, "HEAD"); len(got.body) != 0 {
		t.Fatalf("HEAD answered a body %q", got.body)
	}

	c = s.raw(t)
	c.send(t, "BROKEN\r\n\r\n")
	got := c.read(t, "GET")
	if got.status != 400 || !strings.Contains(string(got.body), `"invalid"`) || !c.closed(t) {
		t.Fatalf("malformed request = %d %s, or the connection stayed open", got.status, got.body)
	}
}

// A POST /mlock/ that waits runs off the loop: other clients are served
// meanwhile, a request pipelined behind it on its own connection is
// answered after it, and it is granted once the holder unlocks.
func TestAWaitingMutexLockDoesNotStallOthers(t *testing.T) {
	s := newServer(t)
	h := s.post(t, "/db/a/mlock/m?dur=30")
	if h.status != 200 {
		t.Fatalf("first MLOCK = %d %s", h.status, h.body)
	}
	waiter := s.raw(t)
	waiter.send(t, "POST /db/a/mlock/m?dur=30&wait=20 HTTP/1.1\r\nHost: x\r\n\r\nPOST /db/a/sequence/after HTTP/1.1\r\nHost: x\r\n\r\n")
	waiter.assertNothing(t, "a blocked MLOCK")
	start := time.Now()
	for i := range 20 {
		if got := s.post(t, "/db/a/sequence/other"); got.status != 200 || string(got.body) != fmt.Sprintf("%d\n", i+1) {
			t.Fatalf("another client's request = %d %s", got.status, got.body)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("other clients waited %v behind a blocked MLOCK", d)
	}
	if got := s.post(t, "/db/a/munlock/m?handle="+strings.TrimSpace(string(h.body))); got.status != 204 {
		t.Fatalf("MUNLOCK = %d %s", got.status, got.body)
	}
	if got := waiter.read(t, "POST"); got.status != 200 {
		t.Fatalf("the waiter = %d %s", got.status, got.body)
	}
	if got := waiter.read(t, "POST"); got.status != 200 || string(got.body) != "1\n" {
		t.Fatalf("the request behind the waiter = %d %s", got.status, got.body)
	}
}

// Shutdown closes idle connections at once and answers a request that
// was being read when it began, then closes that connection too.
func TestShutdownClosesIdleAndFinishesRequestsInProgress(t *testing.T) {
	store := openStore(t, persist.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(store, httpapi.Config{}, httpapi.Limits{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s := &testServer{url: "http://" + ln.Addr().String(), store: store}

	idle, busy := s.raw(t), s.raw(t)
	idle.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.read(t, "GET")
	busy.send(t, "POST /db/a/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nv")
	time.Sleep(50 * time.Millisecond) // the loop has read the first byte of the body
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(t.Context()) }()
	if !idle.closed(t) {
		t.Fatal("Shutdown left an idle connection open")
	}
	busy.send(t, "w")
	got := busy.read(t, "POST")
	if got.status != 200 || !got.close || !busy.closed(t) {
		t.Fatalf("request in progress at Shutdown = %d %v, or its connection stayed open", got.status, got.header)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
	if v, err := store.KVGet(t.Context(), "a", "k"); err != nil || string(v.Value) != "vw" {
		t.Fatalf("the request finished at Shutdown stored %q, %v", v.Value, err)
	}
}

// A request that arrives in a later read, while the connection's earlier
// responses wait for their fsync, is served once they are written, not
// when some timer next looks at the connection: with syncs held (the
// request surely arrives meanwhile), and then many times without (it
// arrives at every point of the loop's pass).
func TestARequestArrivingWhileResponsesWaitIsServed(t *testing.T) {
	s, g := gatedServer(t, httpapi.Config{})
	c := s.raw(t)
	release := g.holdSyncs(t)
	c.send(t, "POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
	g.syncing(t)
	c.send(t, "GET /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the loop has read it
	release()
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if got := c.read(t, "POST"); string(got.body) != "1\n" {
		t.Fatalf("POST = %d %q", got.status, got.body)
	}
	if got := c.read(t, "GET"); string(got.body) != "1\n" {
		t.Fatalf("GET = %d %q", got.status, got.body)
	}
	for i := 2; i < 500; i++ {
		c.send(t, "POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
		spin(time.Duration(i%50) * 5 * time.Microsecond) // the GET arrives at every point of the pass
		c.send(t, "GET /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
		c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		c.read(t, "POST")
		if got := c.read(t, "GET"); string(got.body) != fmt.Sprintf("%d\n", i) {
			t.Fatalf("GET %d = %d %q", i, got.status, got.body)
		}
	}
}

// spin waits d without sleeping (a sleep lasts far longer than d).
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// Framing is read as net/http reads it: the header section ends at its
// first empty line also with bare LF line ends (a CRLF CRLF in the body is
// body), up to 4 stray CR/LF bytes before a request are ignored, chunks
// that add up to more than limits.max_value_bytes are 413, and an Expect
// other than 100-continue is 417; trailer lines are checked as header
// lines are.
func TestFramingEdgesAsNetHTTP(t *testing.T) {
	s := newServer(t)
	c := s.raw(t)
	c.send(t, "\r\n\r\nPOST /db/a/kv/lf HTTP/1.1\nHost: x\nContent-Length: 6\n\nab\r\n\r\n")
	c.wantStored(t, s, "POST", "/db/a/kv/lf", "ab\r\n\r\n")

	max := s.store.Config().MaxValueBytes
	c.send(t, fmt.Sprintf("POST /db/a/kv/chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", max/2+1, strings.Repeat("a", max/2+1)))
	c.send(t, fmt.Sprintf("%x\r\n", max/2+1))
	if got := c.read(t, "POST"); got.status != http.StatusRequestEntityTooLarge || !got.close {
		t.Fatalf("chunks over the limit = %d %s", got.status, got.body)
	}
	if got := s.get(t, "/db/a/kv/chunks"); got.status != 404 {
		t.Fatalf("refused chunks stored something: %d", got.status)
	}

	// A trailer line is checked as a header line is.
	c = s.raw(t)
	c.send(t, "POST /db/a/kv/tr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nBad Name: v\r\n\r\n")
	if got := c.read(t, "POST"); got.status != 400 || !got.close {
		t.Fatalf("a malformed trailer = %d %s", got.status, got.body)
	}
	c = s.raw(t)
	c.send(t, "POST /db/a/kv/tr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-Sum: 1\r\n\r\nGET /db/a/kv/tr HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := c.read(t, "POST"); got.status != 200 {
		t.Fatalf("a chunked body with a trailer = %d %s", got.status, got.body)
	}
	if got := c.read(t, "GET"); string(got.body) != "a" {
		t.Fatalf("the request after a trailer = %d %q", got.status, got.body)
	}

	c = s.raw(t)
	c.send(t, "PUT /db/a/kv/e HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx")
	if got := c.read(t, "PUT"); got.status != http.StatusExpectationFailed || !got.close {
		t.Fatalf("unknown Expect = %d %s", got.status, got.body)
	}
}

// A new connection that sends nothing has ReadHeader, not the (longer)
// Idle limit, as with net/http; one that was served has Idle.
func TestANewSilentConnectionHasTheReadHeaderLimit(t *testing.T) {
	store := openStore(t, persist.Options{})
	s := &testServer{url: serveLoopWith(t, store, httpapi.Config{}, httpapi.Limits{ReadHeader: 200 * time.Millisecond, Idle: time.Hour}), store: store}
	silent, served := s.raw(t), s.raw(t)
	served.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	served.read(t, "GET")
	if !silent.closed(t) {
		t.Fatal("a silent new connection was not closed after ReadHeader")
	}
	served.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := served.br.ReadByte(); !isTimeout(err) {
		t.Fatalf("a served connection did not get the Idle limit: %v", err)
	}
	// A CRLF after a body (some clients send one) begins no request.
	crlf := s.raw(t)
	crlf.send(t, "POST /db/a/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv\r\n")
	crlf.read(t, "POST")
	crlf.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := crlf.br.ReadByte(); !isTimeout(err) {
		t.Fatalf("a stray CRLF after a request got the ReadHeader limit: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Running out of file descriptors for a moment does not stop the server:
// Serve backs off and accepts again.
func TestAnAcceptErrorDoesNotStopTheServer(t *testing.T) {
	store := openStore(t, persist.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(store, httpapi.Config{}, httpapi.Limits{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(&evlooptest.FlakyListener{Listener: ln}) }()
	t.Cleanup(func() { srv.Close() })
	s := &testServer{url: "http://" + ln.Addr().String(), store: store}
	if got := s.get(t, "/healthz"); got.status != 200 {
		t.Fatalf("after an accept error: %d", got.status)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned after an accept error: %v", err)
	default:
	}
}

// A request whose client leaves before its response is written is still
// reported, exactly once (H6): as 200 when the response was written, as
// 499 when the connection was seen closed while its response waited for
// the fsync. Many clients each send a write and close at once, so the
// close lands at every point of the loop's pass.
func TestEveryRequestIsReportedOnceAlsoWhenItsClientLeaves(t *testing.T) {
	var mu sync.Mutex
	byStatus := map[string]int{}
	s, _ := gatedServer(t, httpapi.Config{Observe: func(cmd, status string, d time.Duration) {
		if cmd == "POST /db/{acc}/sequence/{id}" {
			mu.Lock()
			byStatus[status]++
			mu.Unlock()
		}
	}})
	const n = 300
	for range n {
		c := s.raw(t)
		c.send(t, "POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
		c.nc.Close()
	}
	total := func() (int, map[string]int) {
		mu.Lock()
		defer mu.Unlock()
		sum := 0
		for _, v := range byStatus {
			sum += v
		}
		return sum, maps.Clone(byStatus)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, _ := total(); got >= n {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // no request is reported twice
	got, by := total()
	if got != n {
		t.Fatalf("%d requests reported (%v), want %d", got, by, n)
	}
	if v := s.get(t, "/db/a/sequence/s"); string(v.body) != fmt.Sprintf("%d\n", n) {
		t.Fatalf("after %d writes whose clients left: %q", n, v.body)
	}
	t.Logf("reported: %v", by)
}

// Connections beyond Limits.MaxConns are answered 503 once they send a
// request, then closed (a net/http client reads the 503, not a broken
// connection); the ones within it are served as before; a refused
// connection does not count while it stays open, so a slot freed by a
// close is taken by the next connection.
func TestConnectionsBeyondMaxConnsAreRefused(t *testing.T) {
	store := openStore(t, persist.Options{})
	s := &testServer{url: serveLoopWith(t, store, httpapi.Config{}, httpapi.Limits{MaxConns: 3}), store: store}
	get := "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	var in []*rawHTTP
	for range 3 {
		c := s.raw(t)
		c.send(t, get)
		if r := c.read(t, "GET"); r.status != 200 {
			t.Fatalf("a connection within the limit: %d %s", r.status, r.body)
		}
		in = append(in, c)
	}
	silent := s.raw(t) // refused, and says nothing: no answer, closed soon
	silent.assertNothing(t, "a refused connection before its request")
	start := time.Now()
	if !silent.closed(t) {
		t.Fatal("a silent connection beyond the limit stayed open")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a silent connection beyond the limit was closed after %v", d)
	}
	for i := range 20 { // a new connection each: Go's Transport reads the 503
		cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		res, err := cl.Post(s.url+"/db/a/counter/c", "text/plain", nil)
		if err != nil {
			t.Fatalf("client %d beyond the limit: %v, want a 503", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 503 || !res.Close || !strings.Contains(string(b), `"too_many_connections"`) {
			t.Fatalf("client %d beyond the limit: %d close=%v %s", i, res.StatusCode, res.Close, b)
		}
	}
	for _, c := range in { // still served, and the refused POSTs changed nothing
		c.send(t, "GET /db/a/counter/c HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read(t, "GET"); r.status != 404 {
			t.Fatalf("after the refusals: %d %s", r.status, r.body)
		}
	}
	waiting := s.raw(t) // refused; open while a slot frees
	waiting.assertNothing(t, "a refused connection before its request")
	in[0].nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for { // waiting is still open: it must not hold the freed slot
		c := s.raw(t)
		c.send(t, get)
		r := c.read(t, "GET")
		c.nc.Close()
		if r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one closed: %d", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waiting.send(t, get)
	if r := waiting.read(t, "GET"); r.status != 503 || !r.close {
		t.Fatalf("the waiting refused connection: %d close=%v", r.status, r.close)
	}
	if !waiting.closed(t) {
		t.Fatal("the refused connection stayed open")
	}
}

// A request is reported once also when the write of its response fails
// (the client reset the connection while the response waited for its
// fsync): the failed write closes the connection at once, and OnClose
// must not report again what the flush had just reported.
func TestARequestWhoseResponseWriteFailsIsReportedOnce(t *testing.T) {
	var mu sync.Mutex
	var statuses []string
	s, g := gatedServer(t, httpapi.Config{Observe: func(cmd, status string, d time.Duration) {
		if cmd == "POST /db/{acc}/sequence/{id}" {
			mu.Lock()
			statuses = append(statuses, status)
			mu.Unlock()
		}
	}})
	release := g.holdSyncs(t)
	c := s.raw(t)
	c.send(t, "POST /db/a/sequence/s HTTP/1.1\r\nHost: x\r\n\r\n")
	g.syncing(t) // the response is held for this sync
	c.nc.(*net.TCPConn).SetLinger(0)
	c.nc.Close() // a reset: the server's write of the response fails
	time.Sleep(50 * time.Millisecond)
	release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(statuses)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a second report would come now
	mu.Lock()
	defer mu.Unlock()
	if len(statuses) != 1 {
		t.Fatalf("reported %d times (%v), want once", len(statuses), statuses)
	}
}

// A request refused because the server is stopping (503 shutting_down) says
// Connection: close and the connection closes: a keep-alive pool (a proxy's
// upstream connections) must not send its next request into it. A mutex
// waiter, answered off the loop when the waiters are stopped before the
// listeners, used to get the 503 without the header (found by a review
// behind nginx and haproxy).
func TestAShutdownRefusalSaysConnectionClose(t *testing.T) {
	s := newServer(t)
	s.mlock(t, "/db/acme/mlock/m", "dur=60")
	c := s.raw(t)
	c.send(t, "POST /db/acme/mlock/m?dur=10&wait=10 HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, func() bool { return s.store.MutexWaiters() == 1 })
	s.store.StopWaiters()
	got := c.read(t, "POST")
	if got.status != http.StatusServiceUnavailable || !got.close {
		t.Fatalf("waiter stopped by shutdown = %d, close %v (Connection %q); want 503 with Connection: close", got.status, got.close, got.header.Get("Connection"))
	}
	if !c.closed(t) {
		t.Fatal("the connection stayed open after Connection: close")
	}

	if err := s.store.Close(); err != nil { // on the loop: any request now
		t.Fatal(err)
	}
	c = s.raw(t)
	c.send(t, "GET /db/acme/kv/k HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := c.read(t, "GET"); got.status != http.StatusServiceUnavailable || !got.close {
		t.Fatalf("GET after the store closed = %d, close %v; want 503 with Connection: close", got.status, got.close)
	}
}

// The Idle limit counts from a connection's last request, not from the
// first moment it was idle: a client sending a request every 100 ms is
// never cut off by a 500 ms Idle limit (found by review: requests
// answered in the pass that read them left the first idle moment in place,
// so every such connection was closed Idle after it, busy or not).
func TestTheIdleLimitCountsFromTheLastRequest(t *testing.T) {
	store := openStore(t, persist.Options{})
	s := &testServer{url: serveLoopWith(t, store, httpapi.Config{}, httpapi.Limits{Idle: 500 * time.Millisecond}), store: store}
	c := s.raw(t)
	start := time.Now()
	for i := 0; time.Since(start) < 1500*time.Millisecond; i++ {
		c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if got := c.read(t, "GET"); got.status != http.StatusOK || got.close {
			t.Fatalf("request %d at %v: %d close=%v", i, time.Since(start).Round(time.Millisecond), got.status, got.close)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !c.closed(t) { // and idle, it is closed after Idle
		t.Fatal("an idle connection was not closed after Idle")
	}
}

// A head that arrives a byte at a time is read once it is complete, its
// end found by scans that resume where the last read's stopped (each read
// rescanning the whole head was quadratic: ~0.4 s of the loop for a
// 64 KiB head sent 10 bytes at a time).
func TestAHeadSentAByteAtATimeIsRead(t *testing.T) {
	s := newServer(t)
	c := s.raw(t)
	req := "PUT /db/a/kv/k HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 40) + "\r\nContent-Length: 1\r\n\r\nv" +
		"GET /db/a/kv/k HTTP/1.1\r\nHost: x\r\n\n"
	for i := range len(req) {
		c.send(t, req[i:i+1])
		time.Sleep(500 * time.Microsecond)
	}
	if got := c.read(t, "PUT"); got.status != http.StatusOK {
		t.Fatalf("PUT = %d %s", got.status, got.body)
	}
	if got := c.read(t, "GET"); got.status != http.StatusOK || string(got.body) != "v" {
		t.Fatalf("GET = %d %q", got.status, got.body)
	}
}

// A client that writes a long pipeline while it reads the responses,
// more slowly (a writer and a reader goroutine), is served in full, as
// net/http serves it (found by review: cut off once its unread input
// passed two requests' worth, ~2 MB, with the responses of the requests
// already run dropped).
func TestAPipelineWrittenAheadOfTheReaderIsServedInFull(t *testing.T) {
	s := newServer(t)
	val := bytes.Repeat([]byte("v"), 1<<10)
	if r := s.do(t, "PUT", "/db/a/kv/v", val, nil); r.status != http.StatusOK {
		t.Fatalf("PUT = %d", r.status)
	}
	c := s.raw(t)
	const n = 80000 // ~3 MB of requests, ~90 MB of responses
	werr := make(chan error, 1)
	go func() {
		b := strings.Repeat("GET /db/a/kv/v HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
		for range n / 1000 {
			if _, err := io.WriteString(c.nc, b); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	c.nc.SetReadDeadline(time.Now().Add(120 * time.Second))
	for i := range n {
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatalf("response %d of %d: %v", i+1, n, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(b) != len(val) {
			t.Fatalf("response %d of %d: %d bytes, %v", i+1, n, len(b), err)
		}
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
}
