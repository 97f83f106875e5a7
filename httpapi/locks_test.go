package httpapi_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
)

// lockInfo checks a lock GET: always JSON {"owner", "token", "remaining_ms"},
// whatever the Accept header, and returns token and remaining ms.
func (s *testServer) lockInfo(t *testing.T, path, owner string) (token, remainingMs int64) {
	t.Helper()
	var tokens [2]int64
	for i, h := range []hdr{nil, acceptJSON, {"Accept", "text/plain"}} {
		m := s.do(t, "GET", path, nil, h).want(t, http.StatusOK).json(t)
		if len(m) != 3 || m["owner"] != owner {
			t.Fatalf("lock GET %v, want owner %q, token and remaining_ms", m, owner)
		}
		tokens[min(i, 1)] = jsonInt(t, m, "token")
		remainingMs = jsonInt(t, m, "remaining_ms")
	}
	if tokens[0] != tokens[1] {
		t.Fatalf("token changed between reads: %v", tokens)
	}
	return tokens[0], remainingMs
}

func TestLockAcquireReturnsTokenAndGetDescribesTheHolder(t *testing.T) {
	clock := newFakeClock()
	s := newServerWith(t, core.Config{Clock: clock}, httpapi.Config{})
	const p = "/db/acme/lock/backup"
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	tok := s.post(t, p+"?owner=host1&dur=30").want(t, http.StatusOK).number(t)
	gotTok, rem := s.lockInfo(t, p, "host1")
	if uint64(gotTok) != tok || rem != 30000 {
		t.Fatalf("GET token %d remaining %d, want %d and 30000", gotTok, rem, tok)
	}
	clock.Advance(10 * time.Second)
	if _, rem := s.lockInfo(t, p, "host1"); rem != 20000 {
		t.Fatalf("remaining_ms %d after 10 s of 30, want 20000", rem)
	}
	// JSON acquire answers the lock object.
	s.do(t, "POST", p+"?owner=host1&dur=5", nil, acceptJSON).
		wantJSON(t, map[string]any{"owner": "host1", "token": unum(tok), "remaining_ms": num(5000)})
}

// An extension by the holder keeps the fencing token and restarts the
// duration; another owner gets 409 naming the holder and the time left.
func TestLockSameOwnerExtendsKeepingTokenOtherOwnerGets409(t *testing.T) {
	clock := newFakeClock()
	s := newServerWith(t, core.Config{Clock: clock}, httpapi.Config{})
	const p = "/db/acme/lock/job"
	tok := s.post(t, p+"?owner=a&dur=10").want(t, http.StatusOK).number(t)
	clock.Advance(8 * time.Second)
	s.post(t, p+"?owner=a&dur=10").wantText(t, itoa(tok)+"\n")
	if _, rem := s.lockInfo(t, p, "a"); rem != 10000 {
		t.Fatalf("remaining_ms %d after extension, want 10000", rem)
	}
	clock.Advance(3 * time.Second)
	e := s.post(t, p+"?owner=b&dur=10").wantError(t, http.StatusConflict, "locked")
	if e["owner"] != "a" || jsonInt(t, e, "remaining_ms") != 7000 {
		t.Fatalf("409 body %v, want owner a and remaining_ms 7000", e)
	}
	gotTok, _ := s.lockInfo(t, p, "a")
	if uint64(gotTok) != tok {
		t.Fatalf("token %d after a refused acquire, want %d", gotTok, tok)
	}
}

// id= is an alias of owner=, as the original API description's example
// uses it; both given and different, or empty, is malformed.
func TestLockIDParameterIsAnAliasOfOwner(t *testing.T) {
	s := newServer(t)
	const p = "/db/1/lock/1"
	tok := s.post(t, p+"?id=123&dur=30").want(t, http.StatusOK).number(t)
	s.lockInfo(t, p, "123")
	s.post(t, p+"?owner=123&dur=30").wantText(t, itoa(tok)+"\n")
	s.post(t, p+"?owner=123&id=123&dur=30").wantText(t, itoa(tok)+"\n")
	s.del(t, p+"?id=999").wantError(t, http.StatusConflict, "locked")
	s.del(t, p+"?id=123").want(t, http.StatusNoContent)
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
}

func TestLockMalformedParametersAre400AndChangeNothing(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/lock/l"
	tok := s.post(t, "/db/acme/lock/held?owner=a&dur=30").want(t, http.StatusOK).number(t)
	for _, c := range []struct{ name, method, path string }{
		{"acquire without owner", "POST", p + "?dur=1"},
		{"acquire with empty owner", "POST", p + "?owner=&dur=1"},
		{"acquire with empty id", "POST", p + "?id=&dur=1"},
		{"acquire with owner and id differing", "POST", p + "?owner=a&id=b&dur=1"},
		{"acquire without dur", "POST", p + "?owner=a"},
		{"release with empty owner", "DELETE", "/db/acme/lock/held?owner="},
		{"release with empty id", "DELETE", "/db/acme/lock/held?id="},
		{"release with owner and id differing", "DELETE", "/db/acme/lock/held?owner=a&id=b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.do(t, c.method, c.path, nil, nil).wantError(t, http.StatusBadRequest, "invalid")
		})
	}
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	if got, _ := s.lockInfo(t, "/db/acme/lock/held", "a"); uint64(got) != tok {
		t.Fatalf("held lock's token %d, want %d", got, tok)
	}
}

func TestLockReleaseByOwnerOrForceIs204OtherOwnerIs409(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/lock/l"
	s.del(t, p+"?owner=a").want(t, http.StatusNoContent) // already free
	s.del(t, p).want(t, http.StatusNoContent)            // force on a free lock

	tok := s.post(t, p+"?owner=a&dur=30").want(t, http.StatusOK).number(t)
	e := s.del(t, p+"?owner=b").wantError(t, http.StatusConflict, "locked")
	if e["owner"] != "a" {
		t.Fatalf("409 body %v, want owner a", e)
	}
	if rem := jsonInt(t, e, "remaining_ms"); rem <= 0 || rem > 30000 {
		t.Fatalf("409 remaining_ms %d, want within (0, 30000]", rem)
	}
	if got, _ := s.lockInfo(t, p, "a"); uint64(got) != tok {
		t.Fatalf("token %d after a refused release, want %d", got, tok)
	}
	s.del(t, p+"?owner=a").want(t, http.StatusNoContent)
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")

	// Without owner: an operator's force release.
	s.post(t, p+"?owner=a&dur=30").want(t, http.StatusOK)
	s.del(t, p).want(t, http.StatusNoContent)
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
}

// The fencing token is the key's create revision: every new acquisition,
// after a release, a force release or an expiry, gets a higher one.
func TestLockTokenIncreasesAcrossReleaseAndReacquire(t *testing.T) {
	clock := newFakeClock()
	s := newServerWith(t, core.Config{Clock: clock}, httpapi.Config{})
	const p = "/db/acme/lock/l"
	last := uint64(0)
	next := func(owner string) {
		t.Helper()
		tok := s.post(t, p+"?owner="+owner+"&dur=10").want(t, http.StatusOK).number(t)
		if tok <= last {
			t.Fatalf("token %d for a new acquisition, not above %d", tok, last)
		}
		last = tok
	}
	next("a")
	s.del(t, p+"?owner=a").want(t, http.StatusNoContent)
	next("a")
	s.del(t, p).want(t, http.StatusNoContent)
	next("b")
	clock.Advance(10 * time.Second) // expired
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.del(t, p+"?owner=b").want(t, http.StatusNoContent) // already free
	next("c")
	// Unrelated writes in between do not break the order.
	s.do(t, "PUT", "/db/acme/kv/other", []byte("x"), nil).want(t, http.StatusOK)
	clock.Advance(10 * time.Second)
	next("c")
}

// A lock is the SET key owner NX PX idiom: a key holding any value is a
// held lock, and a lock is readable as a kv value.
func TestLockOnAKeyHoldingAValueIsHeld(t *testing.T) {
	s := newServer(t)
	v := s.do(t, "PUT", "/db/acme/kv/k", []byte("someone"), nil).wantVersion(t)
	e := s.post(t, "/db/acme/lock/k?owner=me&dur=10").wantError(t, http.StatusConflict, "locked")
	if e["owner"] != "someone" || jsonInt(t, e, "remaining_ms") != -1 {
		t.Fatalf("409 body %v, want owner someone and remaining_ms -1 (no expiry)", e)
	}
	tok, rem := s.lockInfo(t, "/db/acme/lock/k", "someone")
	if uint64(tok) != v || rem != -1 {
		t.Fatalf("GET token %d remaining %d, want %d (create revision) and -1", tok, rem, v)
	}
	// The value's owner may take it over as a lock, keeping its token.
	s.post(t, "/db/acme/lock/k?owner=someone&dur=10").wantText(t, itoa(v)+"\n")

	s.post(t, "/db/acme/lock/j?owner=worker-7&dur=10").want(t, http.StatusOK)
	r := s.get(t, "/db/acme/kv/j").wantValue(t, "worker-7")
	if r.header.Get("X-TTL-Ms") == "" {
		t.Fatal("a lock read as kv has no X-TTL-Ms")
	}
	s.do(t, "PUT", "/db/acme/kv/j?ver=0", []byte("x"), nil).wantError(t, http.StatusConflict, "version_mismatch")
}

// A sequence's key is never a lock: acquiring, reading, releasing and
// force-releasing it are 409 wrongtype (documented with the lock routes'
// 409) and leave it as it was (D3). NB: acquiring was "409 locked, held
// by its value", so an acquire by owner=7 was refused as held by "7"
// (found by review).
func TestLockReleaseOfASequenceIsWrongType(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/lock/seq"
	s.post(t, "/db/acme/sequence/seq?count=7").wantText(t, "7\n")
	s.post(t, p+"?owner=7&dur=10").wantError(t, http.StatusConflict, "wrongtype")
	s.get(t, p).wantError(t, http.StatusConflict, "wrongtype")
	s.del(t, p+"?owner=me").wantError(t, http.StatusConflict, "wrongtype")
	s.del(t, p).wantError(t, http.StatusConflict, "wrongtype")
	s.post(t, "/db/acme/sequence/seq").wantText(t, "8\n")
}

// An owner that is not UTF-8 (SET over RESP with any bytes) reads back
// exactly over HTTP: in base64, flagged, in GET /lock and in a 409.
func TestANonUTF8LockOwnerReadsBackInBase64(t *testing.T) {
	s := newServer(t)
	owner := "o\xffx"
	if _, err := s.store.Set(context.Background(), "acme", "bin", []byte(owner), core.SetOptions{Expiry: core.Expiry{Mode: core.ExpiryIn, Ms: 60000}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"owner": base64.StdEncoding.EncodeToString([]byte(owner)), "owner_encoding": "base64"}
	got := s.get(t, "/db/acme/lock/bin").want(t, http.StatusOK).json(t)
	conflict := s.post(t, "/db/acme/lock/bin?owner=me&dur=10").wantError(t, http.StatusConflict, "locked")
	for _, body := range []map[string]any{got, conflict} {
		for k, v := range want {
			if body[k] != v {
				t.Errorf("%s = %v, want %v (body %v)", k, body[k], v, body)
			}
		}
	}
	s.post(t, "/db/acme/lock/utf?owner=plain&dur=10").want(t, http.StatusOK)
	if body := s.get(t, "/db/acme/lock/utf").want(t, http.StatusOK).json(t); body["owner"] != "plain" || body["owner_encoding"] != nil {
		t.Errorf("a UTF-8 owner: %v", body)
	}
}

func itoa(n uint64) string { return unum(n).String() }

// A query url.ParseQuery rejects is 400 and changes nothing: its bad pairs
// are not read as absent, which would turn ?owner=bob into a force release
// (or a 10,001st parameter drop ?ver=, making a write unconditional).
func TestMalformedQueryIs400NotAnAbsentParameter(t *testing.T) {
	s := newServer(t)
	s.post(t, "/db/acme/lock/l?owner=alice&dur=60").want(t, http.StatusOK)
	for _, q := range []string{"owner=bob;", "owner=bob%zz", "owner=bob%3", "owner=bob&" + strings.Repeat("x&", 10001)} {
		s.do(t, "DELETE", "/db/acme/lock/l?"+q, nil, nil).wantError(t, http.StatusBadRequest, "invalid")
	}
	s.do(t, "DELETE", "/db/acme/lock/l?owner=bob", nil, nil).wantError(t, http.StatusConflict, "locked")
	s.do(t, "PUT", "/db/acme/kv/k", []byte("v1"), nil).want(t, http.StatusOK)
	s.do(t, "PUT", "/db/acme/kv/k?ver=99&"+strings.Repeat("x&", 10001), []byte("v2"), nil).wantError(t, http.StatusBadRequest, "invalid")
	s.get(t, "/db/acme/kv/k").wantValue(t, "v1")
}

// A query parameter a write does not take is 400 and changes nothing
// (a read takes any: a cache-buster misapplies nothing): read as absent, a misspelt ?Owner=bob would force-release alice's lock,
// ?Handle= force-unlock a mutex, ?TTL=5 store a value that never expires,
// ?ad=5 add 1 (found by a review).
func TestUnknownQueryParameterIs400AndChangesNothing(t *testing.T) {
	s := newServer(t)
	s.post(t, "/db/acme/lock/l?owner=alice&dur=60").want(t, http.StatusOK)
	for _, q := range []string{"Owner=bob", "ownr=bob", "owner_id=bob", "owner=alice&force=1", "=bob", "flag"} {
		r := s.do(t, "DELETE", "/db/acme/lock/l?"+q, nil, nil)
		r.wantError(t, http.StatusBadRequest, "invalid")
		if !strings.Contains(string(r.body), "unknown query parameter") {
			t.Errorf("DELETE ?%s: %s, want the unknown parameter named", q, r.body)
		}
	}
	if got := s.get(t, "/db/acme/lock/l"); got.status != http.StatusOK || !strings.Contains(string(got.body), `"alice"`) {
		t.Fatalf("alice's lock after misspelt releases: %d %s", got.status, got.body)
	}

	h := s.mlock(t, "/db/acme/mlock/m", "dur=60")
	s.post(t, "/db/acme/munlock/m?Handle=1").wantError(t, http.StatusBadRequest, "invalid")
	s.post(t, "/db/acme/mlock/m?dur=60&wait=0").wantError(t, http.StatusConflict, "timeout")
	s.post(t, "/db/acme/munlock/m?handle="+h).want(t, http.StatusNoContent)

	s.do(t, "PUT", "/db/acme/kv/k?TTL=5", []byte("v"), nil).wantError(t, http.StatusBadRequest, "invalid")
	s.get(t, "/db/acme/kv/k").wantError(t, http.StatusNotFound, "not_found")
	s.post(t, "/db/acme/counter/c?add=2").want(t, http.StatusOK)
	s.post(t, "/db/acme/counter/c?ad=5").wantError(t, http.StatusBadRequest, "invalid")
	s.post(t, "/db/acme/counter/c?ttl=5").wantError(t, http.StatusBadRequest, "invalid")
	s.get(t, "/db/acme/counter/c").wantText(t, "2\n")
	s.post(t, "/db/acme/sequence/q?cnt=100").wantError(t, http.StatusBadRequest, "invalid")
	s.do(t, "DELETE", "/db/acme/sequence/q?x=1", nil, nil).wantError(t, http.StatusBadRequest, "invalid") // a route that takes none
	s.get(t, "/db/acme/counter/c?_=12345").wantText(t, "2\n")                                             // a read takes any: a cache-buster
	// %-escaped names are read decoded, as url.ParseQuery reads them.
	s.post(t, "/db/acme/counter/c?a%64d=3").want(t, http.StatusOK)
	s.get(t, "/db/acme/counter/c").wantText(t, "5\n")
}

// If-Match / If-None-Match on a write that cannot check them (every write
// but kv's) is 400 and changes nothing: the write must not run without its
// condition (RFC 9110 13.1.1; found by a review). A GET may ignore them.
func TestConditionsOnAWriteThatTakesNoneAre400(t *testing.T) {
	s := newServer(t)
	s.post(t, "/db/acme/counter/c").want(t, http.StatusOK)
	s.post(t, "/db/acme/lock/l?owner=alice&dur=60").want(t, http.StatusOK)
	s.post(t, "/db/acme/sequence/q").want(t, http.StatusOK)
	for _, c := range []struct{ method, path string }{
		{"POST", "/db/acme/counter/c"}, {"DELETE", "/db/acme/counter/c"},
		{"POST", "/db/acme/sequence/q"}, {"DELETE", "/db/acme/sequence/q"},
		{"DELETE", "/db/acme/lock/l"}, {"POST", "/db/acme/lock/l?owner=bob&dur=5"},
		{"POST", "/db/acme/mlock/m?dur=5"}, {"POST", "/db/acme/munlock/m"},
	} {
		for _, h := range []hdr{{"If-Match", `"1"`}, {"If-None-Match", "*"}} {
			s.do(t, c.method, c.path, nil, h).wantError(t, http.StatusBadRequest, "invalid")
		}
	}
	s.get(t, "/db/acme/counter/c").wantText(t, "1\n")
	s.get(t, "/db/acme/sequence/q").wantText(t, "1\n")
	if got := s.get(t, "/db/acme/lock/l"); got.status != http.StatusOK || !strings.Contains(string(got.body), `"alice"`) {
		t.Fatalf("alice's lock after conditional releases: %d %s", got.status, got.body)
	}
	s.do(t, "GET", "/db/acme/counter/c", nil, hdr{"If-None-Match", `"1"`}).wantText(t, "1\n")
}
