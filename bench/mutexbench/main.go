// Command mutexbench measures concurrencydb's blocking mutex (MLOCK).
//
// Two tests, each printing one line of key=value pairs for bench/run.sh:
//
//   - contend: -clients clients (go-redis, one connection each) loop
//     MLOCK name dur wait → MUNLOCK name handle on ONE mutex for -duration.
//     It reports lock→unlock cycles per second and two latencies:
//     handover = from the moment the previous holder sent MUNLOCK (or this
//     client sent MLOCK, if later) to the moment this client has its grant;
//     wait = from sending MLOCK to having the grant (includes queueing
//     behind the other clients).
//   - queue: a holder takes the mutex, then -waiters clients (one TCP
//     connection each) send MLOCK one after the other, -gap apart; the
//     holder unlocks and every waiter, once granted, unlocks at once. It
//     reports how many were served, errors, how many were granted out
//     of the order in which they were sent, and the p50 / p99 of each
//     handover (from the moment the previous holder sent MUNLOCK to the
//     moment the next waiter has its grant).
//
// -mode resp uses the Redis protocol (MLOCK key seconds wait / MUNLOCK key
// handle); -mode http uses POST /db/{acc}/mlock/{id}?dur=&wait= and
// /munlock/{id}?handle=; -mode auto (default) uses RESP when the server
// answers MLOCK there, else HTTP.
//
// -mode redis runs contend against a real Redis at -resp, as the baseline
// of the same client and machine: the classic Redis FIFO mutex, one token
// in a list, taken with BLPOP (Redis serves the longest-blocked client
// first) and given back with RPUSH, which hands it straight to the next
// blocked client. It measures what any server's handover costs here
// (two wake-ups and two round trips of go-redis on loopback).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	respAddr = flag.String("resp", "", "RESP address host:port")
	httpAddr = flag.String("http", "", "HTTP address host:port")
	mode     = flag.String("mode", "auto", "auto, resp or http")
	test     = flag.String("test", "both", "contend, queue or both")
	acc      = flag.String("acc", "0", "account for HTTP (RESP uses the connection's default account, which is 0)")
	clients  = flag.Int("clients", 10, "contend: number of contending clients")
	duration = flag.Duration("duration", 4*time.Second, "contend: how long to run")
	waiters  = flag.Int("waiters", 10000, "queue: number of waiting clients")
	gap      = flag.Duration("gap", 200*time.Microsecond, "queue: pause between two waiters' MLOCK")
	confirm  = flag.Bool("confirm", true, "queue: before sending the next MLOCK, wait until the server counts the previous one as blocked (RESP INFO clients blocked_clients), so the expected order is exact; falls back to -gap when unavailable")
	ahead    = flag.Int("ahead", 200, "queue: connections dialled ahead of the one sending MLOCK")
	name     = flag.String("name", "", "mutex name prefix (default: unique per run)")
)

func main() {
	flag.Parse()
	if *name == "" {
		*name = fmt.Sprintf("benchmtx%d", time.Now().UnixNano())
	}
	m := *mode
	if m == "auto" {
		m = "http"
		if *respAddr != "" {
			if err := probeRESP(*respAddr); err == nil {
				m = "resp"
			} else {
				fmt.Fprintf(os.Stderr, "mutexbench: RESP MLOCK not usable (%v); using HTTP\n", err)
			}
		}
	}
	if m == "http" && *httpAddr == "" || m != "http" && *respAddr == "" {
		fatalf("mode %s needs its address", m)
	}
	if m == "redis" && *test != "contend" {
		fatalf("mode redis runs -test contend only")
	}
	ok := true
	if *test == "contend" || *test == "both" {
		ok = contend(m) && ok
	}
	if *test == "queue" || *test == "both" {
		ok = queue(m) && ok
	}
	if !ok {
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mutexbench: "+format+"\n", args...)
	os.Exit(2)
}

// ---- contend: go-redis (RESP) or net/http (HTTP) ----

type locker interface {
	lock(ctx context.Context, name string, dur, wait int) (string, error)
	unlock(ctx context.Context, name, handle string) error
	close()
}

func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		PoolSize:        1,
		Protocol:        2,
		DisableIdentity: true,
		ReadTimeout:     -1, // MLOCK blocks for up to its wait
		WriteTimeout:    10 * time.Second,
		MaxRetries:      -1,
	})
}

type respLocker struct{ c *redis.Client }

func (l respLocker) lock(ctx context.Context, name string, dur, wait int) (string, error) {
	v, err := l.c.Do(ctx, "MLOCK", name, dur, wait).Result()
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10), nil
	case string:
		return v, nil
	}
	return "", fmt.Errorf("MLOCK: unexpected reply %T %v", v, v)
}

func (l respLocker) unlock(ctx context.Context, name, handle string) error {
	return l.c.Do(ctx, "MUNLOCK", name, handle).Err()
}

func (l respLocker) close() { l.c.Close() }

type httpLocker struct {
	c    *http.Client
	base string
}

func newHTTPLocker() httpLocker {
	return httpLocker{
		c:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, MaxConnsPerHost: 0}},
		base: "http://" + *httpAddr + "/db/" + *acc,
	}
}

func (l httpLocker) post(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := l.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func (l httpLocker) lock(ctx context.Context, name string, dur, wait int) (string, error) {
	code, body, err := l.post(ctx, fmt.Sprintf("%s/mlock/%s?dur=%d&wait=%d", l.base, name, dur, wait))
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("mlock: HTTP %d %s", code, body)
	}
	return body, nil
}

func (l httpLocker) unlock(ctx context.Context, name, handle string) error {
	code, body, err := l.post(ctx, fmt.Sprintf("%s/munlock/%s?handle=%s", l.base, name, handle))
	if err != nil {
		return err
	}
	if code != 204 && code != 200 {
		return fmt.Errorf("munlock: HTTP %d %s", code, body)
	}
	return nil
}

func (l httpLocker) close() { l.c.CloseIdleConnections() }

// redisLocker is the Redis baseline: a token list, BLPOP to take it,
// RPUSH to give it back (see -mode redis).
type redisLocker struct{ c *redis.Client }

func (l redisLocker) lock(ctx context.Context, name string, dur, wait int) (string, error) {
	v, err := l.c.BLPop(ctx, time.Duration(wait)*time.Second, name).Result()
	if err != nil {
		return "", fmt.Errorf("BLPOP: %w", err) // redis.Nil: the wait timed out
	}
	return v[1], nil
}

func (l redisLocker) unlock(ctx context.Context, name, token string) error {
	return l.c.RPush(ctx, name, token).Err()
}

func (l redisLocker) close() { l.c.Close() }

func newLocker(m string) locker {
	switch m {
	case "resp":
		return respLocker{newRedisClient(*respAddr)}
	case "redis":
		return redisLocker{newRedisClient(*respAddr)}
	}
	return newHTTPLocker()
}

func probeRESP(addr string) error {
	l := respLocker{newRedisClient(addr)}
	defer l.close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	n := fmt.Sprintf("benchprobe%d", time.Now().UnixNano())
	h, err := l.lock(ctx, n, 5, 0)
	if err != nil {
		return err
	}
	return l.unlock(ctx, n, h)
}

func contend(m string) bool {
	name := *name + "c"
	var lastUnlock atomic.Int64 // unix ns at which the last holder sent MUNLOCK
	var cycles, errs atomic.Int64
	var firstErr atomic.Value
	ctx := context.Background()
	stop := time.Now().Add(*duration)
	handovers := make([][]time.Duration, *clients)
	waits := make([][]time.Duration, *clients)
	if m == "redis" { // the mutex starts free: one token in its list
		c := newRedisClient(*respAddr)
		err := c.Del(ctx, name).Err()
		if err == nil {
			err = c.RPush(ctx, name, "token").Err()
		}
		c.Close()
		if err != nil {
			fatalf("contend: redis token: %v", err)
		}
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < *clients; i++ {
		l := newLocker(m)
		defer l.close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				t0 := time.Now()
				h, err := l.lock(ctx, name, 10, 5)
				t1 := time.Now()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					time.Sleep(time.Millisecond)
					continue
				}
				from := max(lastUnlock.Load(), t0.UnixNano())
				handovers[i] = append(handovers[i], time.Duration(t1.UnixNano()-from))
				waits[i] = append(waits[i], t1.Sub(t0))
				lastUnlock.Store(time.Now().UnixNano())
				if err := l.unlock(ctx, name, h); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				cycles.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	ho := slices.Concat(handovers...)
	wt := slices.Concat(waits...)
	fmt.Printf("contend mode=%s clients=%d cycles=%d secs=%.2f rate=%.1f handover_p50_ms=%.3f handover_p99_ms=%.3f wait_p50_ms=%.3f wait_p99_ms=%.3f errors=%d",
		m, *clients, cycles.Load(), secs, float64(cycles.Load())/secs,
		pct(ho, 50), pct(ho, 99), pct(wt, 50), pct(wt, 99), errs.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf(" first_error=%q", e)
	}
	fmt.Println()
	return errs.Load() == 0
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	i = min(max(i, 0), len(d)-1)
	return float64(d[i]) / 1e6
}

// ---- queue: raw connections, so the order of sending is exact ----

// rawConn speaks just enough RESP or HTTP/1.1 for MLOCK / MUNLOCK.
type rawConn struct {
	c    net.Conn
	r    *bufio.Reader
	http bool
}

func dialRaw(m string) (*rawConn, error) {
	addr := *respAddr
	if m == "http" {
		addr = *httpAddr
	}
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, r: bufio.NewReaderSize(c, 512), http: m == "http"}, nil
}

func respCmd(args ...string) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b
}

func httpPost(path string) []byte {
	return fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n", path)
}

func (rc *rawConn) sendLock(name string, dur, wait int) error {
	var b []byte
	if rc.http {
		b = httpPost(fmt.Sprintf("/db/%s/mlock/%s?dur=%d&wait=%d", *acc, name, dur, wait))
	} else {
		b = respCmd("MLOCK", name, strconv.Itoa(dur), strconv.Itoa(wait))
	}
	_, err := rc.c.Write(b)
	return err
}

func (rc *rawConn) sendUnlock(name, handle string) error {
	var b []byte
	if rc.http {
		b = httpPost(fmt.Sprintf("/db/%s/munlock/%s?handle=%s", *acc, name, handle))
	} else {
		b = respCmd("MUNLOCK", name, handle)
	}
	_, err := rc.c.Write(b)
	return err
}

// reply reads one reply and returns it as text (a handle, "OK", "" for 204).
func (rc *rawConn) reply() (string, error) {
	if rc.http {
		resp, err := http.ReadResponse(rc.r, nil)
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return "", err
		}
		if resp.StatusCode/100 != 2 {
			return "", fmt.Errorf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case ':', '+':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad reply %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// blocked asks a RESP server for INFO clients and returns blocked_clients.
func (rc *rawConn) blocked() (int, error) {
	if _, err := rc.c.Write(respCmd("INFO", "clients")); err != nil {
		return 0, err
	}
	s, err := rc.reply()
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "blocked_clients:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("no blocked_clients in INFO clients")
}

func queue(m string) bool {
	name := *name + "q"
	n := *waiters
	// The holder: over HTTP when we have it (the mutex namespace is shared by
	// both protocols), so that all n RESP connections are waiters and the
	// server's connection limit is not exceeded by the holder.
	holderMode := m
	if *httpAddr != "" {
		holderMode = "http"
	}
	holder, err := dialRaw(holderMode)
	if err != nil {
		fatalf("queue: dial holder: %v", err)
	}
	defer holder.c.Close()
	if err := holder.sendLock(name, 600, 0); err != nil {
		fatalf("queue: holder: %v", err)
	}
	hh, err := holder.reply()
	if err != nil {
		fatalf("queue: holder lock: %v", err)
	}

	rank := make([]int64, n) // grant order of waiter i, 1-based; 0 = not served
	// handover[i]: from the previous holder's MUNLOCK (lastUnlock, stored
	// just before it is sent; grants are sequential, so it is the previous
	// holder's) to waiter i having its grant.
	handover := make([]time.Duration, n)
	var lastUnlock atomic.Int64
	var next, errs, early atomic.Int64
	var unlocked atomic.Bool
	var firstErr atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	// Connections are dialled -ahead of their MLOCK, so that sending it only
	// wakes a server goroutine already blocked reading its connection (the
	// server then reads the requests in the order we send them), but not so
	// far ahead that the server's read-header timeout closes an idle one.
	rcs := make([]*rawConn, n)
	conns := 0
	ctlOpen := *confirm && *respAddr != ""
	// The last waiter is dialled only after the control connection (below)
	// is closed, so that a server allowing exactly n connections takes all n.
	dial := func(i int) {
		if i >= n || i == n-1 && ctlOpen {
			return
		}
		rc, err := dialRaw(m)
		if err != nil {
			fail(fmt.Errorf("dial waiter %d: %w", i, err))
			return
		}
		rcs[i] = rc
		conns++
	}
	for i := 0; i < *ahead; i++ {
		dial(i)
	}
	time.Sleep(100 * time.Millisecond)
	// With -confirm, a control connection reads INFO's blocked_clients after
	// each MLOCK until the server has queued it: then "in order" is exact.
	var ctl *rawConn
	confirmed := false
	if *confirm && *respAddr != "" {
		if c, err := dialRaw("resp"); err == nil {
			if nb, err := c.blocked(); err == nil && nb == 0 {
				ctl, confirmed = c, true
			} else {
				c.c.Close()
				fmt.Fprintf(os.Stderr, "mutexbench: no usable blocked_clients in INFO (%d, %v): using -gap\n", nb, err)
			}
		}
	}
	unconfirmed := 0
	confirmedAtStart := confirmed
	var wg sync.WaitGroup
	sendStart := time.Now()
	queued := 0
	for i := range rcs {
		if i == n-1 && ctlOpen {
			if ctl != nil {
				ctl.c.Close()
				ctl, confirmed = nil, false
				time.Sleep(100 * time.Millisecond) // let the server see it closed
			}
			ctlOpen = false
			dial(i)
		}
		dial(i + *ahead)
		rc := rcs[i]
		if rc == nil {
			continue
		}
		if err := rc.sendLock(name, 60, 300); err != nil {
			fail(fmt.Errorf("waiter %d: %w", i, err))
			rc.c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rc.c.Close()
			h, err := rc.reply()
			if err != nil {
				fail(fmt.Errorf("waiter %d lock: %w", i, err))
				return
			}
			granted := time.Now().UnixNano()
			if !unlocked.Load() {
				early.Add(1)
			}
			rank[i] = next.Add(1)
			handover[i] = time.Duration(granted - lastUnlock.Load())
			lastUnlock.Store(time.Now().UnixNano())
			if err := rc.sendUnlock(name, h); err != nil {
				fail(fmt.Errorf("waiter %d: %w", i, err))
				return
			}
			if _, err := rc.reply(); err != nil {
				fail(fmt.Errorf("waiter %d unlock: %w", i, err))
			}
		}()
		queued++
		if confirmed && ctl != nil {
			deadline := time.Now().Add(2 * time.Second)
			for {
				nb, err := ctl.blocked()
				if err == nil && nb >= queued {
					break
				}
				if err != nil || time.Now().After(deadline) {
					unconfirmed++
					break
				}
			}
		} else if *gap > 0 {
			time.Sleep(*gap)
		}
	}
	sendSecs := time.Since(sendStart).Seconds()
	time.Sleep(time.Second) // let the last MLOCKs reach the queue
	unlocked.Store(true)
	t0 := time.Now()
	lastUnlock.Store(t0.UnixNano())
	if err := holder.sendUnlock(name, hh); err != nil {
		fatalf("queue: holder unlock: %v", err)
	}
	if _, err := holder.reply(); err != nil {
		fatalf("queue: holder unlock: %v", err)
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	served := next.Load()
	// Out of order: a waiter granted before one that was sent earlier.
	outOfOrder := 0
	var last int64
	var ho []time.Duration
	for i, r := range rank {
		if r == 0 {
			continue
		}
		ho = append(ho, handover[i])
		if r < last {
			outOfOrder++
		}
		last = max(last, r)
	}
	order := "sent"
	if confirmedAtStart {
		order = "queued"
	}
	fmt.Printf("queue mode=%s holder=%s order=%s waiters=%d connected=%d served=%d errors=%d out_of_order=%d early_grants=%d unconfirmed=%d send_secs=%.2f drain_secs=%.2f rate=%.1f handover_p50_ms=%.3f handover_p99_ms=%.3f",
		m, holderMode, order, n, conns, served, errs.Load(), outOfOrder, early.Load(), unconfirmed, sendSecs, secs, float64(served)/secs,
		pct(ho, 50), pct(ho, 99))
	if e := firstErr.Load(); e != nil {
		fmt.Printf(" first_error=%q", e)
	}
	fmt.Println()
	return errs.Load() == 0 && served == int64(n) && outOfOrder == 0 && early.Load() == 0
}
