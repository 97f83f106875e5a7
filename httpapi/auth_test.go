package httpapi_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
)

func newAuthServer(t *testing.T) *testServer {
	return newServerWith(t, core.Config{}, httpapi.Config{Auth: core.Auth{
		Token:    "t",
		Accounts: map[string]string{"acme": "a"},
	}})
}

// H5: with auth on, every /db/ route answers 401 without a valid token and
// 403 for an account token used on another account, before any parameter
// is looked at (the requests below lack their required parameters).
func TestAuthIsCheckedOnEveryRouteBeforeParameters(t *testing.T) {
	s := newAuthServer(t)
	for _, rt := range httpapi.Routes() {
		if !strings.HasPrefix(rt.Pattern, "/db/") {
			continue
		}
		acme, other := routePath(rt.Pattern, "acme", "k"), routePath(rt.Pattern, "other", "k")
		t.Run(rt.Method+" "+rt.Pattern, func(t *testing.T) {
			for _, c := range []struct {
				name   string
				path   string
				h      hdr
				status int
				code   string
			}{
				{"no header", acme, nil, http.StatusUnauthorized, "unauthorized"},
				{"empty bearer", acme, hdr{"Authorization", "Bearer "}, http.StatusUnauthorized, "unauthorized"},
				{"wrong token", acme, hdr{"Authorization", "Bearer wrong"}, http.StatusUnauthorized, "unauthorized"},
				{"token without Bearer", acme, hdr{"Authorization", "t"}, http.StatusUnauthorized, "unauthorized"},
				{"basic auth", acme, hdr{"Authorization", "Basic dDp0"}, http.StatusUnauthorized, "unauthorized"},
				{"account token elsewhere", other, hdr{"Authorization", "Bearer a"}, http.StatusForbidden, "forbidden"},
			} {
				r := s.do(t, rt.Method, c.path+"?count=0&add=x&ttl=-1&dur=-1&ver=x&handle=x", nil, c.h)
				if r.status != c.status {
					t.Fatalf("%s: status %d, want %d; body %q", c.name, r.status, c.status, r.body)
				}
				r.wantError(t, c.status, c.code)
				if c.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s: 401 without WWW-Authenticate: Bearer", c.name)
				}
			}
			// Valid tokens pass auth and reach parameter parsing (400).
			for _, c := range []struct{ name, path, token string }{
				{"global token on acme", acme, "t"},
				{"global token on other", other, "t"},
				{"account token on its account", acme, "a"},
			} {
				r := s.do(t, rt.Method, c.path+"?count=0&add=x&ttl=-1&dur=-1&ver=x&handle=x", nil, hdr{"Authorization", "Bearer " + c.token})
				if rt.Method == "GET" || (rt.Method == "DELETE" && !strings.Contains(rt.Pattern, "/kv/")) {
					// These take no parameter that can be malformed.
					if r.status == http.StatusUnauthorized || r.status == http.StatusForbidden || r.status >= 500 {
						t.Fatalf("%s: status %d; body %q", c.name, r.status, r.body)
					}
					continue
				}
				r.wantError(t, http.StatusBadRequest, "invalid")
			}
		})
	}
}

func TestAuthGlobalTokenGrantsEveryAccountAndAccountTokenOnlyItsOwn(t *testing.T) {
	s := newAuthServer(t)
	s.token = "t"
	s.post(t, "/db/acme/sequence/s").wantText(t, "1\n")
	s.post(t, "/db/other/sequence/s").wantText(t, "1\n")

	s.token = "a"
	s.post(t, "/db/acme/sequence/s").wantText(t, "2\n")
	s.do(t, "PUT", "/db/acme/kv/k", []byte("v"), nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/kv/k").wantValue(t, "v")
	s.post(t, "/db/acme/lock/l?owner=o&dur=10").want(t, http.StatusOK)
	s.post(t, "/db/acme/mlock/m?dur=10").want(t, http.StatusOK)
	s.post(t, "/db/acme/munlock/m").want(t, http.StatusNoContent)
	s.post(t, "/db/other/sequence/s").wantError(t, http.StatusForbidden, "forbidden")
	s.do(t, "PUT", "/db/other/kv/k", []byte("v"), nil).wantError(t, http.StatusForbidden, "forbidden")

	// The refused requests changed nothing.
	s.token = "t"
	s.get(t, "/db/other/sequence/s").wantText(t, "1\n")
	s.get(t, "/db/other/kv/k").wantError(t, http.StatusNotFound, "not_found")

	// The scheme is case-insensitive.
	s.token = ""
	s.do(t, "GET", "/db/other/sequence/s", nil, hdr{"Authorization", "bearer t"}).wantText(t, "1\n")

	s.token = "wrong"
	s.post(t, "/db/acme/sequence/s").wantError(t, http.StatusUnauthorized, "unauthorized")
	s.token = "t"
	s.get(t, "/db/acme/sequence/s").wantText(t, "2\n")
}

// An account named in the path percent-encoded is the decoded account for
// auth too.
func TestAuthAppliesToTheDecodedAccount(t *testing.T) {
	s := newAuthServer(t)
	s.token = "a"
	s.post(t, "/db/%61cme/sequence/s").wantText(t, "1\n")
	s.post(t, "/db/acme%2F/sequence/s").wantError(t, http.StatusForbidden, "forbidden")
}

func TestAuthDoesNotGuardHealthz(t *testing.T) {
	s := newAuthServer(t)
	s.get(t, "/healthz").wantText(t, "ok\n")
}

func TestAuthOffAllowsRequestsWithoutToken(t *testing.T) {
	s := newServer(t)
	s.do(t, "POST", "/db/acme/sequence/s", nil, hdr{"Authorization", "Bearer anything"}).wantText(t, "1\n")
	s.post(t, "/db/acme/sequence/s").wantText(t, "2\n")
}

// H5 holds for requests no route serves: an unknown path or method under
// /db/ is refused 401 without a token, and only then 404 or 405.
func TestAuthComesBeforeUnknownPathsAndMethods(t *testing.T) {
	s := newAuthServer(t)
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/db/acme/nosuch/k", http.StatusNotFound, "not_found"},
		{"PUT", "/db/acme/sequence/k", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"GET", "/db/acme/mlock/k", http.StatusMethodNotAllowed, "method_not_allowed"},
		// Methods chi has no entry for are answered before any route.
		{"BREW", "/db/acme/kv/k", http.StatusMethodNotAllowed, "method_not_allowed"},
		{"get", "/db/acme/kv/k", http.StatusMethodNotAllowed, "method_not_allowed"},
		// An empty id is 400, once authenticated.
		{"GET", "/db/acme/kv/", http.StatusBadRequest, "invalid"},
		{"DELETE", "/db/acme/lock/", http.StatusBadRequest, "invalid"},
	} {
		s.do(t, c.method, c.path, nil, nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		s.do(t, c.method, c.path, nil, hdr{"Authorization", "Bearer t"}).wantError(t, c.status, c.code)
	}
}

// H9: a request with a body is refused from its head when its token does
// not grant the account: 401/403 at once, no 100 Continue, the connection
// closed, the body never waited for (a client without a token could
// otherwise make the server buffer max_value_bytes per connection). With
// a valid token the server waits for the body and serves it.
func TestABodyIsNotReadForARequestThatFailsAuth_H9(t *testing.T) {
	s := newAuthServer(t)
	addr := strings.TrimPrefix(s.url, "http://")
	for _, c := range []struct {
		name, auth, path, expect string
		status                   int
	}{
		{"no token", "", "/db/acme/kv/x", "", http.StatusUnauthorized},
		{"no token, Expect: 100-continue", "", "/db/acme/kv/x", "100-continue", http.StatusUnauthorized},
		{"wrong token", "Bearer wrong", "/db/acme/kv/x", "", http.StatusUnauthorized},
		{"account token on another account", "Bearer a", "/db/other/kv/x", "100-continue", http.StatusForbidden},
		{"account token, escaped other account", "Bearer a", "/db/%6Fther/kv/x", "", http.StatusForbidden},
		{"no token, chunked", "", "/db/acme/kv/x", "chunked", http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := "POST " + c.path + " HTTP/1.1\r\nHost: x\r\n"
			if c.auth != "" {
				head += "Authorization: " + c.auth + "\r\n"
			}
			switch c.expect {
			case "chunked":
				head += "Transfer-Encoding: chunked\r\n"
			case "":
				head += "Content-Length: 1048576\r\n"
			default:
				head += "Content-Length: 1048576\r\nExpect: " + c.expect + "\r\n"
			}
			if _, err := conn.Write([]byte(head + "\r\n")); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response to the head alone: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if !res.Close {
				t.Fatal("the connection stays open with the body unread")
			}
		})
	}
	// A valid token: the body is waited for, then served.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("POST /db/acme/kv/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("a valid token's Expect: 100-continue: %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the body with a valid token: %d", res.StatusCode)
	}
	// Paths outside /db/ need no token, body or not: /healthz answers,
	// an unknown path is 404, a wrong method 405 (H9 is about /db/).
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/healthz", http.StatusOK},
		{"POST", "/healthz", http.StatusMethodNotAllowed},
		{"GET", "/nosuch", http.StatusNotFound},
	} {
		r := s.raw(t)
		r.send(t, c.method+" "+c.path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
		if got := r.read(t, c.method); got.status != c.status {
			t.Errorf("%s %s with a body and no token: %d %s, want %d", c.method, c.path, got.status, got.body, c.status)
		}
	}
	// But not a large one (found by review: a client with no token could
	// make the server buffer a max_value_bytes body there): refused from
	// the head, without a 100 Continue, and the connection closed.
	for _, head := range []string{
		"POST /nosuch HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n",
		"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
	} {
		r := s.raw(t)
		r.send(t, head)
		if got := r.read(t, "POST"); got.status != http.StatusRequestEntityTooLarge || !got.close {
			t.Errorf("%q with no token: %d %s close=%v, want 413 and close", head, got.status, got.body, got.close)
		}
	}
}
