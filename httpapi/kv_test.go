package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
)

// wantVersion checks a successful kv write: the body is the new version
// and ETag/X-Version carry the same number.
func (r reply) wantVersion(t *testing.T) uint64 {
	t.Helper()
	r.want(t, http.StatusOK)
	v := r.number(t)
	checkVersionHeaders(t, r, v)
	return v
}

func checkVersionHeaders(t *testing.T, r reply, v uint64) {
	t.Helper()
	if got, want := r.header.Get("ETag"), fmt.Sprintf(`"%d"`, v); got != want {
		t.Fatalf("ETag %q, want %q", got, want)
	}
	if got, want := r.header.Get("X-Version"), strconv.FormatUint(v, 10); got != want {
		t.Fatalf("X-Version %q, want %q", got, want)
	}
}

// wantValue checks a 200 raw kv value.
func (r reply) wantValue(t *testing.T, body string) reply {
	t.Helper()
	r.want(t, http.StatusOK)
	if string(r.body) != body {
		t.Fatalf("body %q, want %q", r.body, body)
	}
	return r
}

// POST and PUT are the same write.
var kvWriteMethods = []string{"POST", "PUT"}

func TestKVWriteReturnsVersionAndGetReturnsRawValue(t *testing.T) {
	for _, m := range kvWriteMethods {
		t.Run(m, func(t *testing.T) {
			s := newServer(t)
			const p = "/db/acme/kv/user:1"
			s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
			v1 := s.do(t, m, p, []byte("alice"), nil).wantVersion(t)
			r := s.get(t, p).wantValue(t, "alice")
			checkVersionHeaders(t, r, v1)
			if h := r.header.Values("X-TTL-Ms"); len(h) != 0 {
				t.Fatalf("X-TTL-Ms %q on a key without expiry", h)
			}
			// Every write gets a higher version.
			v2 := s.do(t, m, p, []byte("bob"), nil).wantVersion(t)
			if v2 <= v1 {
				t.Fatalf("version %d after %d", v2, v1)
			}
			checkVersionHeaders(t, s.get(t, p).wantValue(t, "bob"), v2)
			// An empty body is an empty value, not a missing parameter.
			v3 := s.do(t, m, p, nil, nil).wantVersion(t)
			checkVersionHeaders(t, s.get(t, p).wantValue(t, ""), v3)
		})
	}
}

func TestKVValuesAreStoredByteExact(t *testing.T) {
	s := newServer(t)
	bin := []byte{0, 0xff, 0xfe, '\n', 0x80, 'x'}
	s.do(t, "PUT", "/db/acme/kv/bin", bin, nil).want(t, http.StatusOK)
	r := s.get(t, "/db/acme/kv/bin").want(t, http.StatusOK)
	if !bytes.Equal(r.body, bin) {
		t.Fatalf("body %q, want %q", r.body, bin)
	}
}

func TestKVJSONValueIsUTF8StringOrBase64(t *testing.T) {
	s := newServer(t)
	v := s.do(t, "PUT", "/db/acme/kv/text", []byte("grüße ✓"), acceptJSON).want(t, http.StatusOK).json(t)
	ver := jsonInt(t, v, "version")
	if len(v) != 1 {
		t.Fatalf("JSON write reply %v, want only version", v)
	}
	r := s.do(t, "GET", "/db/acme/kv/text", nil, acceptJSON)
	r.wantJSON(t, map[string]any{"value": "grüße ✓", "version": num(ver)})
	checkVersionHeaders(t, r, uint64(ver))

	bin := []byte{0xff, 0x00, 0xc3}
	ver = jsonInt(t, s.do(t, "POST", "/db/acme/kv/bin", bin, acceptJSON).want(t, http.StatusOK).json(t), "version")
	s.do(t, "GET", "/db/acme/kv/bin", nil, acceptJSON).wantJSON(t, map[string]any{
		"value": base64.StdEncoding.EncodeToString(bin), "encoding": "base64", "version": num(ver),
	})
}

// Compare-and-set: every precondition spelling, its success and its
// failure. A failed condition is 409 and leaves value and version as they
// were.
func TestKVPreconditionsWriteOnlyWhenTheyHold(t *testing.T) {
	for _, m := range kvWriteMethods {
		t.Run(m, func(t *testing.T) {
			s := newServer(t)
			const p = "/db/acme/kv/k"
			write := func(q string, h hdr, v string) reply { return s.do(t, m, p+q, []byte(v), h) }
			unchanged := func(val string, ver uint64) {
				t.Helper()
				checkVersionHeaders(t, s.get(t, p).wantValue(t, val), ver)
			}

			// Absent key: "only if present" and "version N" fail.
			write("", hdr{"If-Match", "*"}, "x").wantError(t, http.StatusConflict, "version_mismatch")
			write("?ver=5", nil, "x").wantError(t, http.StatusConflict, "version_mismatch")
			write("", hdr{"If-Match", `"5"`}, "x").wantError(t, http.StatusConflict, "version_mismatch")
			s.get(t, p).wantError(t, http.StatusNotFound, "not_found")

			// Create-only succeeds once: ver=0, then If-None-Match: *.
			v1 := write("?ver=0", nil, "a").wantVersion(t)
			write("?ver=0", nil, "x").wantError(t, http.StatusConflict, "version_mismatch")
			write("", hdr{"If-None-Match", "*"}, "x").wantError(t, http.StatusConflict, "version_mismatch")
			unchanged("a", v1)

			// ?ver=N: only at the current version; the 409 names it.
			e := write("?ver="+strconv.FormatUint(v1+100, 10), nil, "x").wantError(t, http.StatusConflict, "version_mismatch")
			if got := jsonInt(t, e, "version"); uint64(got) != v1 {
				t.Fatalf("409 names version %d, want current %d", got, v1)
			}
			unchanged("a", v1)
			v2 := write("?ver="+strconv.FormatUint(v1, 10), nil, "b").wantVersion(t)

			// If-Match: "N", the ETag as returned.
			write("", hdr{"If-Match", fmt.Sprintf(`"%d"`, v1)}, "x").wantError(t, http.StatusConflict, "version_mismatch")
			unchanged("b", v2)
			v3 := write("", hdr{"If-Match", fmt.Sprintf(`"%d"`, v2)}, "c").wantVersion(t)

			// If-Match: * on a present key.
			v4 := write("", hdr{"If-Match", "*"}, "d").wantVersion(t)
			if !(v1 < v2 && v2 < v3 && v3 < v4) {
				t.Fatalf("versions not increasing: %d %d %d %d", v1, v2, v3, v4)
			}
			unchanged("d", v4)

			// If-None-Match: * on a deleted key creates it again.
			s.del(t, p).want(t, http.StatusNoContent)
			v5 := write("", hdr{"If-None-Match", "*"}, "e").wantVersion(t)
			if v5 <= v4 {
				t.Fatalf("re-created key has version %d, not above %d", v5, v4)
			}
		})
	}
}

func TestKVMalformedPreconditionIs400AndChangesNothing(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/kv/k"
	v := s.do(t, "PUT", p, []byte("orig"), nil).wantVersion(t)
	for _, c := range []struct {
		name, q string
		h       hdr
	}{
		{"ver=abc", "?ver=abc", nil},
		{"ver=-1", "?ver=-1", nil},
		{"ver=1.5", "?ver=1.5", nil},
		{"ver empty", "?ver=", nil},
		{"ver too big", "?ver=18446744073709551616", nil},
		{"If-Match garbage", "", hdr{"If-Match", `"abc"`}},
		// A weak tag never matches strongly; an unquoted one is no tag.
		{"If-Match weak", "", hdr{"If-Match", fmt.Sprintf(`W/"%d"`, v)}},
		{"If-Match unquoted", "", hdr{"If-Match", fmt.Sprint(v)}},
		{"If-Match half quoted", "", hdr{"If-Match", fmt.Sprintf(`"%d`, v)}},
		{"If-Match a list", "", hdr{"If-Match", fmt.Sprintf(`"%d", "%d"`, v, v+1)}},
		{"If-Match empty tag", "", hdr{"If-Match", `""`}},
		// No ETag is "0": If-Match: "0" is not ?ver=0 (create-only).
		{"If-Match zero", "", hdr{"If-Match", `"0"`}},
		{"If-Match zero-padded", "", hdr{"If-Match", fmt.Sprintf(`"0%d"`, v)}}, // not the ETag as given
		// Numbers read as RESP reads them, and never one of two.
		{"ver zero-padded", fmt.Sprintf("?ver=0%d", v), nil},
		{"ver with +", fmt.Sprintf("?ver=%%2B%d", v), nil},
		{"ver past int64", "?ver=9223372036854775808", nil},
		{"ver twice", fmt.Sprintf("?ver=%d&ver=0", v), nil},
		{"ver twice, escaped", fmt.Sprintf("?ver=%d&v%%65r=0", v), nil},
		{"ttl twice", "?ttl=1&ttl=", nil},
		// One condition per request: If-Match is not dropped for the other.
		{"If-Match and If-None-Match", "", hdr{"If-Match", fmt.Sprintf(`"%d"`, v), "If-None-Match", "*"}},
		{"ver and If-None-Match", fmt.Sprintf("?ver=%d", v), hdr{"If-None-Match", "*"}},
		{"ver and a malformed If-Match", fmt.Sprintf("?ver=%d", v), hdr{"If-Match", "garbage"}},
		{"If-None-Match a version", "", hdr{"If-None-Match", `"3"`}},
	} {
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			t.Run(m+" "+c.name, func(t *testing.T) {
				s.do(t, m, p+c.q, []byte("new"), c.h).wantError(t, http.StatusBadRequest, "invalid")
			})
		}
	}
	checkVersionHeaders(t, s.get(t, p).wantValue(t, "orig"), v)
}

// A precondition header that is present counts even when empty or sent
// twice: either is 400 and writes nothing, never an unconditional write.
func TestEmptyOrRepeatedPreconditionHeadersAre400(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/kv/k"
	v := s.do(t, "PUT", p, []byte("orig"), nil).wantVersion(t)
	for _, h := range []string{
		"If-Match: \r\n",
		"If-None-Match: \r\n",
		fmt.Sprintf("If-Match: \"1\"\r\nIf-Match: \"%d\"\r\n", v),
		"If-None-Match: *\r\nIf-None-Match: *\r\n",
	} {
		c := s.raw(t)
		c.send(t, "PUT "+p+" HTTP/1.1\r\nHost: x\r\n"+h+"Content-Length: 3\r\n\r\nnew")
		if got := c.read(t, "PUT"); got.status != http.StatusBadRequest || !strings.Contains(string(got.body), `"invalid"`) {
			t.Errorf("%q: %d %s, want 400 invalid", h, got.status, got.body)
		}
	}
	checkVersionHeaders(t, s.get(t, p).wantValue(t, "orig"), v)
}

func TestKVTTLSetsExpiryAndAWriteWithoutTTLClearsIt(t *testing.T) {
	clock := newFakeClock()
	s := newServerWith(t, core.Config{Clock: clock}, httpapi.Config{})
	const p = "/db/acme/kv/session"
	v := s.do(t, "PUT", p+"?ttl=1.5", []byte("tok"), nil).wantVersion(t)
	r := s.get(t, p).wantValue(t, "tok")
	if got := r.header.Get("X-TTL-Ms"); got != "1500" {
		t.Fatalf("X-TTL-Ms %q, want 1500", got)
	}
	checkVersionHeaders(t, r, v)
	clock.Advance(1499 * time.Millisecond)
	s.do(t, "GET", p, nil, acceptJSON).wantJSON(t, map[string]any{"value": "tok", "version": unum(v), "ttl_ms": num(1)})
	clock.Advance(time.Millisecond)
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.do(t, "DELETE", p, nil, nil).wantError(t, http.StatusNotFound, "not_found")

	// A fraction of a millisecond still expires (at least 1 ms ahead).
	s.do(t, "PUT", p+"?ttl=0.0001", []byte("x"), nil).want(t, http.StatusOK)
	if got := s.get(t, p).header.Get("X-TTL-Ms"); got != "1" {
		t.Fatalf("X-TTL-Ms %q, want 1", got)
	}

	// Rewriting without ttl clears the expiry, like Redis SET.
	s.do(t, "PUT", p+"?ttl=2", []byte("tok"), nil).want(t, http.StatusOK)
	s.do(t, "PUT", p, []byte("forever"), nil).want(t, http.StatusOK)
	clock.Advance(time.Hour)
	r = s.get(t, p).wantValue(t, "forever")
	if h := r.header.Values("X-TTL-Ms"); len(h) != 0 {
		t.Fatalf("X-TTL-Ms %q after a write without ttl", h)
	}
}

// With the real clock: a short TTL makes the key disappear. Polled with a
// deadline; how long it took is not asserted.
func TestKVShortTTLExpiresOnTheRealClock(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/kv/brief"
	s.do(t, "PUT", p+"?ttl=0.05", []byte("x"), nil).want(t, http.StatusOK)
	eventually(t, "the key expired", func() bool { return s.get(t, p).status == http.StatusNotFound })
	// Expired is absent for create-only writes too.
	s.do(t, "PUT", p+"?ver=0", []byte("y"), nil).want(t, http.StatusOK)
}

func TestKVValueOverMaxValueBytesIs413AndChangesNothing(t *testing.T) {
	s := newServerWith(t, core.Config{MaxValueBytes: 16}, httpapi.Config{})
	const p = "/db/acme/kv/k"
	for _, m := range kvWriteMethods {
		t.Run(m, func(t *testing.T) {
			s.do(t, m, p, bytes.Repeat([]byte("a"), 17), nil).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
			s.do(t, m, p, bytes.Repeat([]byte("a"), 1<<20), nil).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
			s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
		})
	}
	full := strings.Repeat("b", 16)
	v := s.do(t, "PUT", p, []byte(full), nil).wantVersion(t)
	s.do(t, "PUT", p, []byte(full+"c"), nil).wantError(t, http.StatusRequestEntityTooLarge, "too_large")
	checkVersionHeaders(t, s.get(t, p).wantValue(t, full), v)
	// A lock owner is a value too.
	s.post(t, "/db/acme/lock/l?dur=1&owner="+full+"c").wantError(t, http.StatusRequestEntityTooLarge, "too_large")
	s.get(t, "/db/acme/lock/l").wantError(t, http.StatusNotFound, "not_found")
}

func TestKVDeleteIs204Then404AndVerMakesItConditional(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/kv/k"
	s.del(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.del(t, p+"?ver=3").wantError(t, http.StatusConflict, "version_mismatch") // absent: mismatch too

	v := s.do(t, "PUT", p, []byte("x"), nil).wantVersion(t)
	s.del(t, p+"?ver="+strconv.FormatUint(v+1, 10)).wantError(t, http.StatusConflict, "version_mismatch")
	s.do(t, "DELETE", p, nil, hdr{"If-Match", fmt.Sprintf(`"%d"`, v+1)}).wantError(t, http.StatusConflict, "version_mismatch")
	checkVersionHeaders(t, s.get(t, p).wantValue(t, "x"), v)
	s.del(t, p+"?ver="+strconv.FormatUint(v, 10)).want(t, http.StatusNoContent)
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")

	v = s.do(t, "PUT", p, []byte("y"), nil).wantVersion(t)
	s.do(t, "DELETE", p, nil, hdr{"If-Match", fmt.Sprintf(`"%d"`, v)}).want(t, http.StatusNoContent)
	s.do(t, "PUT", p, []byte("z"), nil).want(t, http.StatusOK)
	s.do(t, "DELETE", p, nil, hdr{"If-Match", "*"}).want(t, http.StatusNoContent)
	s.do(t, "DELETE", p, nil, hdr{"If-Match", "*"}).wantError(t, http.StatusConflict, "version_mismatch")
	s.do(t, "PUT", p, []byte("w"), nil).want(t, http.StatusOK)
	s.del(t, p).want(t, http.StatusNoContent)
	s.del(t, p).wantError(t, http.StatusNotFound, "not_found")
}
