package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/resp"
)

// both is one store served over HTTP and RESP at once, as the binary does.
type both struct {
	base  string // http://…/db/acme
	rdb   *redis.Client
	store *core.Store
}

func startBoth(t *testing.T) *both {
	t.Helper()
	db, err := persist.Open(t.TempDir(), persist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := core.Open(db, core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(httpapi.New(store, httpapi.Config{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := resp.NewServer(store, resp.Config{})
	go rs.Serve(ln)
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), Protocol: 2})
	t.Cleanup(func() {
		rdb.Close()
		store.StopWaiters()
		hs.CloseClientConnections()
		hs.Close()
		rs.Close()
		store.Close()
		db.Close()
	})
	return &both{base: hs.URL + "/db/acme", rdb: rdb, store: store}
}

func (b *both) http(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, b.base+path, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(out))
}

func (b *both) must(t *testing.T, want int, method, path, body string) string {
	t.Helper()
	code, out := b.http(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	return out
}

// TestOneDatasetTwoProtocols: every type written over one protocol is read
// and changed over the other: /db/acme/{kind}/x is RESP key {acme}:x, and
// SELECT acme makes plain keys mean the same.
func TestOneDatasetTwoProtocols(t *testing.T) {
	b := startBoth(t)
	ctx := context.Background()
	r := b.rdb

	t.Run("kv", func(t *testing.T) {
		b.must(t, 200, "POST", "/kv/k1", "from-http")
		if v, err := r.Get(ctx, "{acme}:k1").Result(); err != nil || v != "from-http" {
			t.Fatalf("RESP GET of an HTTP value: %q %v", v, err)
		}
		ver := b.must(t, 200, "POST", "/kv/k1", "v2")
		kv, err := r.Do(ctx, "KV.GET", "{acme}:k1").Slice()
		if err != nil || kv[0] != "v2" || strconv.FormatInt(kv[1].(int64), 10) != ver {
			t.Fatalf("KV.GET = %v %v, want [v2 %s]", kv, err, ver)
		}
		if err := r.Set(ctx, "{acme}:k2", "from-resp", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got := b.must(t, 200, "GET", "/kv/k2", ""); got != "from-resp" {
			t.Fatalf("HTTP GET of a RESP value: %q", got)
		}
		// A version from RESP is a compare-and-set token over HTTP.
		v, _ := r.Do(ctx, "KV.SET", "{acme}:k2", "cas").Int64()
		b.must(t, 409, "POST", "/kv/k2?ver="+strconv.FormatInt(v-1, 10), "stale")
		b.must(t, 200, "POST", "/kv/k2?ver="+strconv.FormatInt(v, 10), "fresh")
		// SELECT acme: plain keys are the account's keys.
		c := r.Conn()
		defer c.Close()
		if err := c.Do(ctx, "SELECT", "acme").Err(); err != nil {
			t.Fatal(err)
		}
		if v, _ := c.Get(ctx, "k2").Result(); v != "fresh" {
			t.Fatalf("after SELECT acme, GET k2 = %q", v)
		}
		if n, _ := r.Del(ctx, "{acme}:k2").Result(); n != 1 {
			t.Fatalf("DEL = %d", n)
		}
		b.must(t, 404, "GET", "/kv/k2", "")
	})

	t.Run("sequence", func(t *testing.T) {
		b.must(t, 200, "POST", "/sequence/s?count=5", "")
		if n, err := r.Do(ctx, "SEQ.NEXT", "{acme}:s").Int64(); err != nil || n != 6 {
			t.Fatalf("SEQ.NEXT after HTTP = %d %v, want 6", n, err)
		}
		if n, err := r.Incr(ctx, "{acme}:s").Result(); err != nil || n != 7 {
			t.Fatalf("INCR of a sequence = %d %v, want 7", n, err)
		}
		if got := b.must(t, 200, "GET", "/sequence/s", ""); got != "7" {
			t.Fatalf("HTTP GET sequence = %s", got)
		}
		if typ, _ := r.Type(ctx, "{acme}:s").Result(); typ != "sequence" {
			t.Fatalf("TYPE = %q", typ)
		}
		if err := r.Decr(ctx, "{acme}:s").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
			t.Fatalf("DECR of a sequence: %v, want WRONGTYPE", err)
		}
		b.must(t, 409, "POST", "/kv/s", "overwrite") // kv write on a sequence
		r.Del(ctx, "{acme}:s")
		if got := b.must(t, 200, "POST", "/sequence/s", ""); got != "1" {
			t.Fatalf("after DEL the sequence restarts at %s, want 1", got)
		}
	})

	t.Run("counter", func(t *testing.T) {
		b.must(t, 200, "POST", "/counter/c?add=40", "")
		if n, err := r.IncrBy(ctx, "{acme}:c", 2).Result(); err != nil || n != 42 {
			t.Fatalf("INCRBY after HTTP = %d %v", n, err)
		}
		if n, err := r.Do(ctx, "CTR.ADD", "{acme}:c", "-2").Int64(); err != nil || n != 40 {
			t.Fatalf("CTR.ADD = %d %v", n, err)
		}
		if got := b.must(t, 200, "GET", "/counter/c", ""); got != "40" {
			t.Fatalf("HTTP counter = %s", got)
		}
		r.Set(ctx, "{acme}:c2", "41", 0)
		if got := b.must(t, 200, "POST", "/counter/c2", ""); got != "42" {
			t.Fatalf(`"41" + 1 over HTTP = %s`, got)
		}
	})

	t.Run("lock", func(t *testing.T) {
		tok := b.must(t, 200, "POST", "/lock/job?owner=alice&dur=30", "")
		if v, _ := r.Get(ctx, "{acme}:job").Result(); v != "alice" {
			t.Fatalf("GET of an HTTP lock = %q, want the owner", v)
		}
		if ms, _ := r.PTTL(ctx, "{acme}:job").Result(); ms <= 0 || ms > 30*time.Second {
			t.Fatalf("PTTL of an HTTP lock = %v", ms)
		}
		if ok, _ := r.SetNX(ctx, "{acme}:job", "bob", time.Minute).Result(); ok {
			t.Fatal("SET NX PX took a lock held over HTTP")
		}
		li, err := r.Do(ctx, "LOCK.GET", "{acme}:job").Slice()
		if err != nil || li[0] != "alice" || strconv.FormatInt(li[2].(int64), 10) != tok {
			t.Fatalf("LOCK.GET = %v %v, want alice and token %s", li, err, tok)
		}
		b.must(t, 409, "DELETE", "/lock/job?owner=bob", "")
		if n, err := r.Do(ctx, "DELEX", "{acme}:job", "IFEQ", "alice").Int64(); err != nil || n != 1 {
			t.Fatalf("DELEX IFEQ owner = %d %v", n, err)
		}
		b.must(t, 404, "GET", "/lock/job", "")
		// The Redis lock idiom is seen by the HTTP lock API.
		if ok, _ := r.SetNX(ctx, "{acme}:job", "bob", time.Minute).Result(); !ok {
			t.Fatal("SET NX PX on a free lock failed")
		}
		code, out := b.http(t, "POST", "/lock/job?owner=alice&dur=30", "")
		if code != 409 || !strings.Contains(out, `"owner":"bob"`) {
			t.Fatalf("HTTP acquire of a RESP-held lock: %d %s", code, out)
		}
		tok2 := b.must(t, 200, "POST", "/lock/job?owner=bob&dur=30", "") // same owner extends
		n1, _ := strconv.ParseUint(tok, 10, 64)
		n2, _ := strconv.ParseUint(tok2, 10, 64)
		if n2 <= n1 {
			t.Fatalf("fencing token of the new holder %d is not above the old %d", n2, n1)
		}
	})

	t.Run("mutex", func(t *testing.T) {
		h := b.must(t, 200, "POST", "/mlock/m?dur=30", "")
		got := make(chan string, 1)
		go func() {
			c := redis.NewClient(&redis.Options{Addr: r.Options().Addr, Protocol: 2, ReadTimeout: -1})
			defer c.Close()
			v, err := c.Do(ctx, "MLOCK", "{acme}:m", "30", "20").Result()
			if err != nil {
				v = "error: " + err.Error()
			}
			got <- fmt.Sprint(v)
		}()
		// The RESP waiter queues behind the HTTP holder.
		waitFor(t, func() bool { return b.store.MutexWaiters() == 1 })
		select {
		case v := <-got:
			t.Fatalf("MLOCK returned %q while HTTP held the mutex", v)
		default:
		}
		b.must(t, 204, "POST", "/munlock/m?handle="+h, "")
		var rh string
		select {
		case rh = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the RESP waiter was not granted after the HTTP unlock")
		}
		if _, err := strconv.ParseUint(rh, 10, 64); err != nil {
			t.Fatalf("MLOCK answered %q", rh)
		}
		b.must(t, 409, "POST", "/munlock/m?handle="+h, "")
		b.must(t, 204, "POST", "/munlock/m?handle="+rh, "")
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
