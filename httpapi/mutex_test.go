package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
)

// mlock acquires the mutex at path with query and returns the handle.
func (s *testServer) mlock(t *testing.T, path, query string) string {
	t.Helper()
	r := s.post(t, path+"?"+query).want(t, http.StatusOK)
	return strconv.FormatUint(r.number(t), 10)
}

// wantMutexFree checks that the mutex at path is free by taking it with
// wait=0, then force-unlocks it again.
func (s *testServer) wantMutexFree(t *testing.T, path string) {
	t.Helper()
	s.post(t, path+"?dur=10&wait=0").want(t, http.StatusOK)
	s.post(t, unlockPath(path)).want(t, http.StatusNoContent)
}

func (s *testServer) wantMutexHeld(t *testing.T, path string) {
	t.Helper()
	s.post(t, path+"?dur=10&wait=0").wantError(t, http.StatusConflict, "timeout")
}

// unlockPath turns /db/a/mlock/x into /db/a/munlock/x.
func unlockPath(p string) string { return strings.Replace(p, "/mlock/", "/munlock/", 1) }

// grant is what a blocked HTTP waiter got.
type grant struct {
	who    int
	handle string
	status int
	err    error
}

// recv returns the next grant, failing the test if none comes before a
// generous deadline (a hang is a failure, not a timing assertion).
func recv(t *testing.T, ch <-chan grant) grant {
	t.Helper()
	select {
	case g := <-ch:
		return g
	case <-time.After(10 * time.Second):
		t.Fatal("no reply from a blocked waiter")
		return grant{}
	}
}

// waitFor starts a blocking mlock request in its own goroutine and
// returns once the store counts it as queued (waiters reaches n), so
// waiters started one after the other are queued in that order.
func (s *testServer) waitFor(t *testing.T, ctx context.Context, who int, path string, n int, out chan<- grant) {
	t.Helper()
	go func() {
		r, err := s.send(ctx, "POST", path+"?dur=60&wait=30", nil, nil)
		g := grant{who: who, status: r.status, err: err}
		if err == nil && r.status == http.StatusOK {
			g.handle = string(r.body[:len(r.body)-1])
		}
		out <- g
	}()
	eventually(t, "waiter "+strconv.Itoa(who)+" is queued", func() bool { return s.store.MutexWaiters() == n })
}

func TestMutexAcquireReturnsAHandleAndWaitZeroOnAHeldMutexIs409(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	h1 := s.mlock(t, p, "dur=30")
	s.wantMutexHeld(t, p)
	s.post(t, p+"?dur=30").wantError(t, http.StatusConflict, "timeout") // wait defaults to 0
	s.post(t, "/db/acme/munlock/m?handle="+h1).want(t, http.StatusNoContent)

	// JSON carries the handle as a string (64-bit handles overflow JS numbers).
	m := s.do(t, "POST", p+"?dur=30", nil, acceptJSON).want(t, http.StatusOK).json(t)
	h2, _ := m["handle"].(string)
	if len(m) != 1 || h2 == "" || h2 == h1 {
		t.Fatalf("JSON %v, want a new handle string other than %s", m, h1)
	}
	if _, err := strconv.ParseUint(h2, 10, 64); err != nil {
		t.Fatalf("handle %q is not a decimal number", h2)
	}
	// Another account's mutex of the same name is another mutex.
	s.mlock(t, "/db/other/mlock/m", "dur=30")
}

func TestMutexWaitPassingIs409(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	h := s.mlock(t, p, "dur=60")
	s.post(t, p+"?dur=10&wait=0.05").wantError(t, http.StatusConflict, "timeout")
	if n := s.store.MutexWaiters(); n != 0 {
		t.Fatalf("%d waiters after the wait passed, want 0", n)
	}
	s.post(t, "/db/acme/munlock/m?handle="+h).want(t, http.StatusNoContent)
}

// Blocked HTTP waiters are served first come, first served, each as the
// previous holder unlocks (the holders' dur is long, so no grant comes
// from an expiry).
func TestMutexWaitersAreGrantedInFIFOOrderOnUnlock(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/fifo"
	holder := s.mlock(t, p, "dur=60")
	const n = 4
	got := make(chan grant, n)
	for i := range n {
		s.waitFor(t, context.Background(), i, p, i+1, got)
	}
	for i := range n {
		select {
		case g := <-got:
			t.Fatalf("waiter %d answered before the holder unlocked: %+v", g.who, g)
		default:
		}
		s.post(t, "/db/acme/munlock/fifo?handle="+holder).want(t, http.StatusNoContent)
		g := recv(t, got)
		if g.err != nil || g.status != http.StatusOK {
			t.Fatalf("waiter %d: status %d, err %v", g.who, g.status, g.err)
		}
		if g.who != i {
			t.Fatalf("waiter %d was granted the mutex before waiter %d", g.who, i)
		}
		if g.handle == holder {
			t.Fatalf("waiter %d got the previous holder's handle %s", g.who, holder)
		}
		holder = g.handle
		// The old handle no longer holds it; the new one does.
		s.wantMutexHeld(t, p)
	}
	s.post(t, "/db/acme/munlock/fifo?handle="+holder).want(t, http.StatusNoContent)
	s.wantMutexFree(t, p)
}

func TestMutexUnlockHandsOverToTheBlockedWaiter(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	old := s.mlock(t, p, "dur=60")
	got := make(chan grant, 1)
	s.waitFor(t, context.Background(), 1, p, 1, got)
	s.post(t, "/db/acme/munlock/m?handle="+old).want(t, http.StatusNoContent)
	g := recv(t, got)
	if g.err != nil || g.status != http.StatusOK {
		t.Fatalf("waiter: status %d, err %v", g.status, g.err)
	}
	s.post(t, "/db/acme/munlock/m?handle="+old).wantError(t, http.StatusConflict, "not_held")
	s.post(t, p+"?handle="+g.handle+"&dur=60").wantText(t, g.handle+"\n")
	s.post(t, "/db/acme/munlock/m?handle="+g.handle).want(t, http.StatusNoContent)
}

// M1: a waiter whose client goes away leaves the queue and is never granted
// the mutex; the next waiter gets it.
func TestMutexWaiterThatDisconnectsLeavesTheQueue(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	holder := s.mlock(t, p, "dur=60")
	gone := make(chan grant, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.waitFor(t, ctx, 1, p, 1, gone)
	next := make(chan grant, 1)
	s.waitFor(t, context.Background(), 2, p, 2, next)

	cancel()
	if g := recv(t, gone); !errors.Is(g.err, context.Canceled) {
		t.Fatalf("cancelled waiter: status %d, err %v; want the request cancelled", g.status, g.err)
	}
	eventually(t, "the disconnected waiter left the queue", func() bool { return s.store.MutexWaiters() == 1 })

	s.post(t, "/db/acme/munlock/m?handle="+holder).want(t, http.StatusNoContent)
	g := recv(t, next)
	if g.err != nil || g.status != http.StatusOK {
		t.Fatalf("next waiter: status %d, err %v", g.status, g.err)
	}
	// The next waiter's handle is the holder: nothing was handed to the
	// waiter that left.
	s.post(t, "/db/acme/munlock/m?handle="+g.handle).want(t, http.StatusNoContent)
	s.wantMutexFree(t, p)
}

// When the holder's dur runs out, the next waiter is granted.
func TestMutexExpiryGrantsTheNextWaiter(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	old := s.mlock(t, p, "dur=0.05")
	got := make(chan grant, 1)
	go func() {
		r, err := s.send(context.Background(), "POST", p+"?dur=60&wait=30", nil, nil)
		got <- grant{status: r.status, err: err}
	}()
	g := recv(t, got)
	if g.err != nil || g.status != http.StatusOK {
		t.Fatalf("waiter: status %d, err %v", g.status, g.err)
	}
	s.post(t, "/db/acme/munlock/m?handle="+old).wantError(t, http.StatusConflict, "not_held")
	s.post(t, p+"?handle="+old+"&dur=10").wantError(t, http.StatusConflict, "not_held")
}

func TestMutexExtendByTheHolderOnly(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	h := s.mlock(t, p, "dur=30")
	s.post(t, p+"?handle="+h+"&dur=60").wantText(t, h+"\n")
	s.do(t, "POST", p+"?handle="+h+"&dur=60", nil, acceptJSON).wantJSON(t, map[string]any{"handle": h})
	other, _ := strconv.ParseUint(h, 10, 64)
	s.post(t, p+"?handle="+strconv.FormatUint(other+1, 10)+"&dur=60").wantError(t, http.StatusConflict, "not_held")
	s.post(t, p+"?handle=0&dur=60").wantError(t, http.StatusConflict, "not_held")
	s.post(t, "/db/acme/mlock/free?handle="+h+"&dur=60").wantError(t, http.StatusConflict, "not_held")
	// wait is unused with handle, but a malformed one is 400 all the same
	// (H2): a parameter is never read as absent.
	for _, q := range []string{"handle=" + h, "handle=" + h + "&dur=0", "handle=abc&dur=1", "handle=&dur=1", "handle=-1&dur=1", "handle=" + h + "&dur=1&wait=abc"} {
		t.Run(q, func(t *testing.T) {
			s.post(t, p+"?"+q).wantError(t, http.StatusBadRequest, "invalid")
		})
	}
	s.post(t, "/db/acme/munlock/m?handle="+h).want(t, http.StatusNoContent)
}

func TestMutexUnlockWithAHandleThatDoesNotHoldItIs409(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	h := s.mlock(t, p, "dur=30")
	n, _ := strconv.ParseUint(h, 10, 64)
	s.post(t, "/db/acme/munlock/m?handle="+strconv.FormatUint(n+1, 10)).wantError(t, http.StatusConflict, "not_held")
	// 0 is never a handle: it does not mean force.
	s.post(t, "/db/acme/munlock/m?handle=0").wantError(t, http.StatusConflict, "not_held")
	s.post(t, "/db/acme/munlock/free?handle="+h).wantError(t, http.StatusConflict, "not_held")
	for _, q := range []string{"handle=abc", "handle=", "handle=-1", "handle=1.5"} {
		t.Run(q, func(t *testing.T) {
			s.post(t, "/db/acme/munlock/m?"+q).wantError(t, http.StatusBadRequest, "invalid")
		})
	}
	s.wantMutexHeld(t, p)
	s.post(t, "/db/acme/munlock/m?handle="+h).want(t, http.StatusNoContent)
	s.post(t, "/db/acme/munlock/m?handle="+h).wantError(t, http.StatusConflict, "not_held")
}

func TestMutexForceUnlockIs204HeldOrFree(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/mlock/m"
	s.post(t, "/db/acme/munlock/m").want(t, http.StatusNoContent)
	h := s.mlock(t, p, "dur=60")
	s.post(t, "/db/acme/munlock/m").want(t, http.StatusNoContent)
	s.post(t, "/db/acme/munlock/m?handle="+h).wantError(t, http.StatusConflict, "not_held")
	s.wantMutexFree(t, p)
}

// Mutex names are their own namespace: a key and a mutex of the same
// name do not see each other.
func TestMutexNamesAreNotKeys(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/shared", []byte("v"), nil).want(t, http.StatusOK)
	s.post(t, "/db/acme/lock/held?owner=a&dur=60").want(t, http.StatusOK)
	h := s.mlock(t, "/db/acme/mlock/shared", "dur=60")
	s.mlock(t, "/db/acme/mlock/held", "dur=60")
	s.get(t, "/db/acme/kv/shared").wantValue(t, "v")
	s.lockInfo(t, "/db/acme/lock/held", "a")
	s.post(t, "/db/acme/munlock/shared?handle="+h).want(t, http.StatusNoContent)
	s.get(t, "/db/acme/kv/shared").wantValue(t, "v")
	s.get(t, "/db/acme/mlock/shared").wantError(t, http.StatusMethodNotAllowed, "method_not_allowed")
}

// A mutex granted to a request whose response cannot be written — its
// client half-closed after sending, and the event loop closed the socket
// before the grant came back — is passed on, not left held by a handle
// nobody has (M1; found by review: it stayed held for its whole dur).
func TestAGrantWhoseResponseCannotBeWrittenIsPassedOn_M1(t *testing.T) {
	t.Run("plain", func(t *testing.T) { grantLostIsPassedOn(t, newServer(t)) })
	// As in the binary: metrics and the slow log wrap the response writer
	// (found by review: the undo was not found under the wrapper).
	t.Run("observed", func(t *testing.T) {
		grantLostIsPassedOn(t, newServerWith(t, core.Config{}, httpapi.Config{
			Observe: func(string, string, time.Duration) {}, SlowLog: time.Hour}))
	})
}

func grantLostIsPassedOn(t *testing.T, s *testServer) {
	unanswered := 0
	for i := range 20 {
		m := fmt.Sprintf("/db/a/mlock/m%d", i)
		c := s.raw(t)
		c.send(t, "POST "+m+"?dur=60 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := http.ReadResponse(c.br, nil)
		if err == nil { // answered: it holds the mutex, and gives it back
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			h := strings.TrimSpace(string(b))
			if r := s.post(t, fmt.Sprintf("/db/a/munlock/m%d?handle=%s", i, h)); r.status != http.StatusNoContent {
				t.Fatalf("round %d: unlock with the handle it was given: %d %s", i, r.status, r.body)
			}
			continue
		}
		unanswered++
		if r := s.post(t, m+"?dur=1&wait=3"); r.status != http.StatusOK {
			t.Fatalf("round %d: the client got no handle (%v), and the mutex is still held: %d %s", i, err, r.status, r.body)
		}
	}
	if unanswered == 0 {
		t.Fatal("every half-closing client got its MLOCK response: the test did not exercise a lost grant")
	}
	t.Logf("%d of 20 half-closing clients got no MLOCK response", unanswered)
}
