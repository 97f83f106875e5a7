package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMAnswersMutexWaitersAndExits0: the real binary with a mutex
// held and one waiter blocked on it over each protocol. SIGTERM answers
// both waiters with an error (RESP error reply, HTTP 503), the process
// exits 0, every write acknowledged before the signal is there after a
// restart, which serves at once, and the mutex is free again (mutexes live
// in memory only: core M1/M2, D1).
func TestSIGTERMAnswersMutexWaitersAndExits0(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	p := startWithRESP(t, bin, data)

	if code, body := p.post(t, "/db/acme/counter/hits?add=7"); code != 200 || body != "7" {
		t.Fatalf("POST counter: %d %q", code, body)
	}
	if code, body := p.post(t, "/db/acme/mlock/m?dur=3600"); code != 200 {
		t.Fatalf("holder's mlock: %d %q", code, body)
	}

	// The RESP waiter: a raw connection blocked in MLOCK, with a PING
	// pipelined behind it, which must be refused, not run (R8).
	rc, err := net.Dial("tcp", p.resp)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := fmt.Fprint(rc, "*4\r\n$5\r\nMLOCK\r\n$8\r\n{acme}:m\r\n$2\r\n60\r\n$4\r\n3600\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	respReply := make(chan string, 1)
	go func() {
		rc.SetReadDeadline(time.Now().Add(60 * time.Second))
		br := bufio.NewReader(rc)
		line, err := br.ReadString('\n')
		if err == nil {
			var next string
			next, err = br.ReadString('\n')
			line += next
		}
		if err != nil {
			line = "read error: " + err.Error()
		}
		respReply <- strings.TrimSpace(line)
	}()

	// The HTTP waiter.
	type httpResult struct {
		code int
		body string
		err  error
	}
	httpReply := make(chan httpResult, 1)
	go func() {
		resp, err := http.Post(p.base+"/db/acme/mlock/m?dur=60&wait=3600", "text/plain", nil)
		if err != nil {
			httpReply <- httpResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		httpReply <- httpResult{code: resp.StatusCode, body: string(b)}
	}()

	// Both are queued once the server counts two mutex waiters.
	deadline := time.Now().Add(20 * time.Second)
	for waiters(t, p) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the two waiters never queued (waiters=%d)", waiters(t, p))
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The bounds below are far under the waiters' 3600 s wait: an answer
	// within them came from the shutdown, not from a timeout.
	select {
	case lines := <-respReply:
		if l := strings.Split(lines, "\r\n"); len(l) != 2 || !strings.HasPrefix(l[0], "-") || !strings.Contains(l[0], "shutting down") || l[1] != "-ERR server is shutting down" {
			t.Errorf("RESP waiter got %q, want error replies saying the server is shutting down for its MLOCK and the PING behind it", lines)
		}
	case <-time.After(20 * time.Second):
		t.Error("RESP waiter not answered within 20 s of SIGTERM")
	}
	select {
	case r := <-httpReply:
		if r.err != nil || r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "shutting_down") {
			t.Errorf("HTTP waiter got (%d, %q, %v), want 503 shutting_down", r.code, r.body, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Error("HTTP waiter not answered within 20 s of SIGTERM")
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v (want exit code 0)\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
	if log := p.stderr.String(); !strings.Contains(log, "msg=stopped") {
		t.Errorf("no orderly stop in the log:\n%s", log)
	}

	// Restart on the same directory: it serves at once, with the data.
	p = startWithRESP(t, bin, data)
	if code, body := p.get(t, "/db/acme/counter/hits"); code != 200 || body != "7" {
		t.Fatalf("counter after restart: %d %q, want 7", code, body)
	}
	// The mutex was in memory only: it is free after the restart.
	if code, body := p.post(t, "/db/acme/mlock/m?dur=10&wait=0"); code != 200 {
		t.Fatalf("mlock after restart: %d %q, want 200 (mutexes do not survive a restart)", code, body)
	}
}

// waiters reads concurrencydb_mutex_waiters from GET /metrics.
func waiters(t *testing.T, p *proc) int {
	t.Helper()
	code, body := p.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "concurrencydb_mutex_waiters "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatalf("no concurrencydb_mutex_waiters in /metrics:\n%s", body)
	return 0
}
