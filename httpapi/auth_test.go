package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

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
