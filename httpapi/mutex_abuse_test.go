package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
)

// 1,000 HTTP clients block on one mutex, each on its own connection,
// queued one after another; every tenth disconnects while waiting. Every
// other client is granted, in the order it queued, without an error; the
// ones that disconnected leave the queue and are never granted (M1).
func TestThousandHTTPMutexWaitersServedInFIFOOrder_M1(t *testing.T) {
	const n = 1000
	s := newServer(t)
	first := s.do(t, "POST", "/db/acme/mlock/hot?dur=600", nil, nil)
	if first.status != 200 {
		t.Fatalf("first lock: %d %s", first.status, first.body)
	}
	firstHandle := strings.TrimSpace(string(first.body))

	var mu sync.Mutex
	var order []int
	errs := make(chan error, n)
	cancels := make([]context.CancelFunc, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		gone := i%10 == 7
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.send(ctx, "POST", "/db/acme/mlock/hot?dur=600&wait=600", nil, nil)
			if gone {
				if err == nil {
					errs <- errors.New("waiter " + strconv.Itoa(i) + " disconnected but got a reply: " + string(r.body))
				}
				return
			}
			if err != nil || r.status != 200 {
				errs <- errors.New("waiter " + strconv.Itoa(i) + ": " + strconv.Itoa(r.status) + " " + string(r.body) + " " + errString(err))
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			u, err := s.send(context.Background(), "POST", "/db/acme/munlock/hot?handle="+strings.TrimSpace(string(r.body)), nil, nil)
			if err != nil || u.status != 204 {
				errs <- errors.New("unlock: " + errString(err) + " " + string(u.body))
			}
		}()
		waitFor(t, func() bool { return s.store.MutexWaiters() == i+1 })
	}
	// Disconnect every tenth waiter; each leaves the queue.
	left := n
	for i := 7; i < n; i += 10 {
		cancels[i]()
		left--
		waitFor(t, func() bool { return s.store.MutexWaiters() == left })
	}
	if r := s.do(t, "POST", "/db/acme/munlock/hot?handle="+firstHandle, nil, nil); r.status != 204 {
		t.Fatalf("first unlock: %d %s", r.status, r.body)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(order) != left {
		t.Fatalf("%d waiters granted, want %d", len(order), left)
	}
	for k := 1; k < len(order); k++ {
		if order[k] <= order[k-1] {
			t.Fatalf("grant %d went to waiter %d after waiter %d: not FIFO", k, order[k], order[k-1])
		}
	}
	if w := s.store.MutexWaiters(); w != 0 {
		t.Fatalf("%d waiters left", w)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitFor polls cond (for states no reply reports, such as a waiter being
// queued) until it holds, failing after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// Lock and mutex durations and waits that are zero, negative, not numbers,
// or above limits.max_duration / limits.max_wait answer 400 invalid with a
// JSON error, and take nothing.
func TestLockAndMutexDurationsOutOfRangeAre400(t *testing.T) {
	s := newServerWith(t, core.Config{MaxDuration: 24 * time.Hour, MaxWait: time.Hour}, httpapi.Config{})
	for _, q := range []string{
		"/mlock/m?dur=0", "/mlock/m?dur=-1", "/mlock/m?dur=NaN", "/mlock/m?dur=inf", "/mlock/m?dur=-inf",
		"/mlock/m?dur=1e300", "/mlock/m?dur=86400.001", "/mlock/m?dur=abc", "/mlock/m?dur=",
		"/mlock/m", "/mlock/m?dur=1&wait=-1", "/mlock/m?dur=1&wait=NaN", "/mlock/m?dur=1&wait=3600.5",
		"/mlock/m?dur=1&wait=1e300", "/mlock/m?dur=1&wait=",
		"/lock/l?owner=o&dur=0", "/lock/l?owner=o&dur=-1", "/lock/l?owner=o&dur=NaN",
		"/lock/l?owner=o&dur=inf", "/lock/l?owner=o&dur=1e300", "/lock/l?owner=o&dur=86401",
		"/lock/l?owner=o&dur=0x10", "/lock/l?owner=o", "/lock/l?owner=o&dur=1_0", "/lock/l?owner=o&dur=0x1p3",
	} {
		r := s.do(t, "POST", "/db/acme"+q, nil, nil)
		var body map[string]string
		if r.status != 400 || json.Unmarshal(r.body, &body) != nil || body["error"] != "invalid" || body["message"] == "" {
			t.Errorf("POST %s: %d %s, want 400 invalid", q, r.status, r.body)
		}
	}
	if r := s.do(t, "POST", "/db/acme/mlock/m?dur=1&wait=0", nil, nil); r.status != 200 {
		t.Fatalf("mutex taken by a refused request: %d %s", r.status, r.body)
	}
	if r := s.get(t, "/db/acme/lock/l"); r.status != 404 {
		t.Fatalf("lock taken by a refused request: %d %s", r.status, r.body)
	}
}
