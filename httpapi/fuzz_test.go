package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/internal/fuzzcorpus"
	"github.com/concurrencydb/concurrencydb/persist"
)

// FuzzHTTPAPI feeds raw HTTP/1.1 requests (method, path, query, headers,
// body), parsed as net/http's server parses them, to the API over a store
// holding a small fixture, and checks (issue 5, H2, H3):
//
//   - no input panics a handler;
//   - the status is one the README documents (never 500);
//   - an error reply is JSON {"error": code, "message": sentence};
//   - a 4xx reply changed nothing (the store's keys, values, versions and
//     expiries are compared before and after), and no request leaves a
//     mutex waiter queued.
//
// The seed corpus is testdata/fuzz/FuzzHTTPAPI (go test runs it);
// TestHTTPAPIMutatedSeeds runs mutations of it in every test run. To fuzz:
//
//	go test ./httpapi -run '^$' -fuzz FuzzHTTPAPI -fuzztime 100000x
func FuzzHTTPAPI(f *testing.F) {
	fx := newFuzzFixture(f)
	f.Fuzz(func(t *testing.T, raw []byte) { fx.check(t, raw) })
}

// TestHTTPAPIMutatedSeeds runs a fixed number of random mutations of the
// seed corpus through FuzzHTTPAPI's property, so every test run fuzzes a
// little (the seed is printed; set FUZZ_SEED to replay one).
func TestHTTPAPIMutatedSeeds(t *testing.T) {
	seeds, rng, seed, n := fuzzcorpus.Mutations(t, "testdata/fuzz/FuzzHTTPAPI", 20)
	fx := newFuzzFixture(t)
	for i := 0; i < n; i++ {
		in := mutate(rng, seeds)
		fx.check(t, in)
		if t.Failed() {
			t.Fatalf("FUZZ_SEED=%d iteration %d input %q", seed, i, in)
		}
	}
}

// fuzzFixture is one store behind two API handlers, without and with auth
// (a request carrying an Authorization header goes to the second).
type fuzzFixture struct {
	store       *core.Store
	open, authd http.Handler
}

func newFuzzFixture(tb testing.TB) *fuzzFixture {
	db, err := persist.Open(tb.TempDir(), persist.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := core.Open(db, core.Config{
		MaxValueBytes: 1024, MaxDuration: time.Minute, MaxWait: 10 * time.Millisecond, NoSync: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		st.Close()
		db.Close()
	})
	return &fuzzFixture{
		store: st,
		open:  httpapi.New(st, httpapi.Config{}),
		authd: httpapi.New(st, httpapi.Config{Auth: core.Auth{Token: "root", Accounts: map[string]string{"acme": "t"}}}),
	}
}

// documented is every status the README's table (and openapi.yaml) lists.
var documented = map[int]bool{200: true, 204: true, 400: true, 401: true, 403: true, 404: true, 405: true, 409: true, 413: true, 503: true}

func (fx *fuzzFixture) check(t testing.TB, raw []byte) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return // net/http answers 400 itself; no handler runs
	}
	fx.reset(t)
	before := fx.snapshot(t)
	h := fx.open
	if req.Header.Get("Authorization") != "" {
		h = fx.authd
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !documented[rec.Code] {
		t.Fatalf("%q: status %d is not documented; body %q", raw, rec.Code, rec.Body.Bytes())
	}
	if rec.Code >= 400 {
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%q: %d error body is not JSON: %q", raw, rec.Code, rec.Body.Bytes())
		}
		code, _ := body["error"].(string)
		msg, _ := body["message"].(string)
		if code == "" || msg == "" {
			t.Fatalf("%q: %d error body lacks error or message: %q", raw, rec.Code, rec.Body.Bytes())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%q: %d error with Content-Type %q", raw, rec.Code, ct)
		}
	}
	if rec.Code >= 400 && rec.Code < 500 {
		if after := fx.snapshot(t); !reflect.DeepEqual(before, after) {
			t.Fatalf("%q: %d reply changed the store:\nbefore %v\nafter  %v", raw, rec.Code, before, after)
		}
	}
	// No request leaves a waiter queued behind it (M1).
	if w := fx.store.MutexWaiters(); w != 0 {
		t.Fatalf("%q: %d mutex waiters left after the reply", raw, w)
	}
}

// reset empties the store and writes the fixture the seeds address: kv k,
// counter c, sequence s and lock l (owner o) in account acme.
func (fx *fuzzFixture) reset(t testing.TB) {
	ctx := context.Background()
	st := fx.store
	if err := st.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.KVSet(ctx, "acme", "k", []byte("v"), core.KVSetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CtrAdd(ctx, "acme", "c", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SeqNext(ctx, "acme", "s", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LockAcquire(ctx, "acme", "l", "o", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every live key of every account with its value, type,
// versions and absolute expiry.
func (fx *fuzzFixture) snapshot(t testing.TB) map[string]string {
	ctx := context.Background()
	accs, err := fx.store.Keyspace(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range accs {
		opts := core.ScanOptions{Count: 1000}
		for {
			ids, next, more, err := fx.store.Scan(ctx, a.Account, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				kv, err := fx.store.KVGet(ctx, a.Account, id)
				if err != nil {
					t.Fatalf("KVGet %s/%s: %v", a.Account, id, err)
				}
				out[a.Account+"/"+id] = fmt.Sprintf("%q type=%v ver=%d created=%d exp=%d", kv.Value, kv.Type, kv.Version, kv.Created, kv.ExpireAt)
			}
			if !more {
				break
			}
			opts.After, opts.Resume = next, true
		}
	}
	return out
}

// tokens are spliced in by mutate: the inputs parsers get wrong.
var tokens = []string{
	"%", "%00", "%2F", "%2e%2e", "%ZZ", "/", "//", "..", "?", "&", "=", ";", "#",
	"-1", "0", "-0", "1e309", "NaN", "inf", "0x10", "0.0000000001", "99999999999999999999",
	"18446744073709551615", "9223372036854775807", "-9223372036854775808",
	"{", "}", "*", "\"", "W/", "\x00", "\xff", " ", "\t",
	"?ver=", "?ttl=", "&dur=", "&wait=", "&handle=", "&owner=", "&count=", "&add=",
	"\r\nIf-Match: ", "\r\nIf-None-Match: *", "\r\nAccept: application/json",
	"\r\nAuthorization: Bearer root", "\r\nAuthorization: Bearer t", "\r\nAuthorization: Basic x",
	"\r\nContent-Length: 5", "\r\nTransfer-Encoding: chunked",
	strings.Repeat("a", 300), strings.Repeat("x", 1100),
}

// mutate returns a random seed with a few random edits.
func mutate(rng *rand.Rand, seeds [][]byte) []byte {
	b := append([]byte(nil), seeds[rng.Intn(len(seeds))]...)
	for n := 1 + rng.Intn(4); n > 0; n-- {
		pos := 0
		if len(b) > 0 {
			pos = rng.Intn(len(b) + 1)
		}
		switch rng.Intn(6) {
		case 0: // flip a byte
			if pos < len(b) {
				b[pos] ^= byte(1 << rng.Intn(8))
			}
		case 1: // delete a span
			end := min(len(b), pos+1+rng.Intn(8))
			b = append(b[:pos], b[end:]...)
		case 2, 3: // insert a token
			tok := tokens[rng.Intn(len(tokens))]
			b = append(b[:pos], append([]byte(tok), b[pos:]...)...)
		case 4: // splice in part of another seed
			o := seeds[rng.Intn(len(seeds))]
			i := rng.Intn(len(o))
			b = append(b[:pos], append(append([]byte(nil), o[i:min(len(o), i+16)]...), b[pos:]...)...)
		case 5: // a random byte
			b = append(b[:pos], append([]byte{byte(rng.Intn(256))}, b[pos:]...)...)
		}
	}
	return b
}
