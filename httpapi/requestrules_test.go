package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// Found by a review of the HTTP API against its documents, each checked
// to fail before its fix.

// A body on an endpoint that reads none is 400 and changes nothing (H2):
// its form parameters were ignored, so curl -d owner=mallory force-released
// a lock, -d handle=… force-unlocked a mutex, and -d count=100 reserved
// one value where the client believed it had a hundred.
func TestABodyOnAnEndpointThatReadsNoneIs400AndChangesNothing(t *testing.T) {
	s := newServer(t)
	form := hdr{"Content-Type", "application/x-www-form-urlencoded"}
	s.post(t, "/db/acme/lock/job?owner=alice&dur=60").want(t, http.StatusOK)
	s.do(t, "DELETE", "/db/acme/lock/job", []byte("owner=mallory"), form).wantError(t, http.StatusBadRequest, "invalid")
	s.get(t, "/db/acme/lock/job").want(t, http.StatusOK)

	s.post(t, "/db/acme/sequence/ids?count=100").wantText(t, "100\n")
	s.do(t, "POST", "/db/acme/sequence/ids", []byte("count=100"), form).wantError(t, http.StatusBadRequest, "invalid")
	s.post(t, "/db/acme/sequence/ids").wantText(t, "101\n")

	h := s.mlock(t, "/db/acme/mlock/mm", "dur=60")
	s.do(t, "POST", "/db/acme/munlock/mm", []byte("handle=999"), form).wantError(t, http.StatusBadRequest, "invalid")
	s.wantMutexHeld(t, "/db/acme/mlock/mm")
	s.post(t, "/db/acme/munlock/mm?handle="+h).want(t, http.StatusNoContent)

	// A kv write reads its body, and a read ignores one.
	s.do(t, "PUT", "/db/acme/kv/k", []byte("v"), nil).want(t, http.StatusOK)
	s.do(t, "GET", "/db/acme/kv/k", []byte("ignored"), nil).want(t, http.StatusOK)
}

// A read ignores the parameters it does not take, given twice too, as
// documented (a repeated one was 400); a malformed query is still 400.
func TestAReadIgnoresRepeatedParameters(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/k1", []byte("v"), nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/kv/k1?a=1&a=2").wantValue(t, "v")
	s.do(t, "HEAD", "/db/acme/kv/k1?tag&tag", nil, nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/kv/k1?a=%zz").wantError(t, http.StatusBadRequest, "invalid")
	s.do(t, "PUT", "/db/acme/kv/k1?ttl=5&ttl=6", []byte("v"), nil).wantError(t, http.StatusBadRequest, "invalid")
}

// A 405's Allow lists the methods of the path as sent: decoded, an
// account holding %2F read as another path (Allow offered the very method
// refused, or nothing).
func TestA405sAllowIsThatOfThePathAsSent(t *testing.T) {
	s := newServer(t)
	r := s.do(t, "PUT", "/db/a%2Fkv/lock/x", nil, nil).want(t, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
		t.Errorf("PUT on a lock: Allow %q", allow)
	}
	r = s.do(t, "PATCH", "/db/a%2Fb/kv/x", nil, nil).want(t, http.StatusMethodNotAllowed)
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "PUT") {
		t.Errorf("PATCH on a kv key: Allow %q", allow)
	}
	if r := s.get(t, "/db/acme/k%76/x").want(t, http.StatusNotFound); strings.Contains(string(r.body), "/kv/") {
		t.Errorf("404 names a route that exists: %s", r.body)
	}
}

// A delete under a condition that holds on an absent key (?ver=0,
// If-None-Match: *) deleted nothing: 404, as without the condition, not a
// 204 that curl -f takes for a deletion.
func TestAConditionalDeleteOfAnAbsentKeyIs404(t *testing.T) {
	s := newServer(t)
	s.del(t, "/db/acme/kv/nokey?ver=0").wantError(t, http.StatusNotFound, "not_found")
	s.do(t, "DELETE", "/db/acme/kv/nokey", nil, hdr{"If-None-Match", "*"}).wantError(t, http.StatusNotFound, "not_found")
}

// A mutex extension checks the wait it does not use against its range,
// as a lock request does.
func TestAMutexExtensionRefusesAWaitOutOfRange(t *testing.T) {
	s := newServer(t)
	h := s.mlock(t, "/db/acme/mlock/ext", "dur=5")
	s.post(t, "/db/acme/mlock/ext?handle="+h+"&dur=5&wait=99999").wantError(t, http.StatusBadRequest, "invalid")
}

// Date conditions are not checked (keys carry versions), so a write
// carrying one is refused rather than run unconditionally.
func TestADateConditionOnAWriteIs400(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/ius", []byte("a"), nil).want(t, http.StatusOK)
	old := hdr{"If-Unmodified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}
	s.do(t, "PUT", "/db/acme/kv/ius", []byte("b"), old).wantError(t, http.StatusBadRequest, "invalid")
	s.do(t, "DELETE", "/db/acme/kv/ius", nil, old).wantError(t, http.StatusBadRequest, "invalid")
	s.get(t, "/db/acme/kv/ius").wantValue(t, "a")
	s.do(t, "GET", "/db/acme/kv/ius", nil, hdr{"If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"}).want(t, http.StatusOK)
}
