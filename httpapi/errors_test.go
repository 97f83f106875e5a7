package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/concurrencydb/concurrencydb/core"
)

// H3: every core sentinel has its own row in errorTable, so none falls
// through to the 500 fallback, also when wrapped with detail.
func TestEverySentinelIsMappedByErrorTable(t *testing.T) {
	for _, sentinel := range core.Sentinels {
		for _, err := range []error{sentinel, fmt.Errorf("%w: detail", sentinel)} {
			row := lookupError(err)
			if row.status == http.StatusInternalServerError || row.code == "internal" {
				t.Errorf("%v maps to the 500 fallback", err)
			}
			if row.err != sentinel {
				t.Errorf("%v matched the row of %v, not its own", err, row.err)
			}
		}
	}
}

// The statuses and codes the issue names for each sentinel.
func TestSentinelStatusesAreTheIssues(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{core.ErrInvalid, 400, "invalid"},
		{core.ErrNotFound, 404, "not_found"},
		{core.ErrWrongType, 409, "wrongtype"},
		{core.ErrNotInteger, 409, "wrongtype"},
		{core.ErrOverflow, 409, "overflow"},
		{core.ErrVersionMismatch, 409, "version_mismatch"},
		{&core.VersionError{Current: 3}, 409, "version_mismatch"},
		{core.ErrLocked, 409, "locked"},
		{&core.LockedError{Owner: "o", RemainingMs: 5}, 409, "locked"},
		{core.ErrNotHeld, 409, "not_held"},
		{core.ErrTimeout, 409, "timeout"},
		{core.ErrTooLarge, 413, "too_large"},
		{core.ErrUnavailable, 503, "unavailable"},
		{core.ErrClosed, 503, "shutting_down"},
		{core.ErrNoAuth, 401, "unauthorized"},
		{core.ErrBadToken, 401, "unauthorized"},
		{core.ErrForbidden, 403, "forbidden"},
		{context.Canceled, 499, "client_closed_request"},
		{errors.New("something else"), 500, "internal"},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			row := lookupError(c.err)
			if row.status != c.status || row.code != c.code {
				t.Fatalf("%d %s, want %d %s", row.status, row.code, c.status, c.code)
			}
		})
	}
}

// Error bodies are JSON {"error", "message"}; a held-lock conflict adds
// owner and remaining_ms, a version conflict the current version, and 401
// asks for a Bearer token.
func TestErrorBodiesAreJSONWithDetailsOfTheConflict(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		want   map[string]any
		auth   bool
	}{
		{fmt.Errorf("%w: count must be 1 to 1000000", core.ErrInvalid), 400,
			map[string]any{"error": "invalid", "message": "invalid argument: count must be 1 to 1000000"}, false},
		{&core.LockedError{Owner: "host1", RemainingMs: 1234}, 409,
			map[string]any{"error": "locked", "message": `lock is held by "host1" for another 1234 ms`, "owner": "host1", "remaining_ms": json.Number("1234")}, false},
		{&core.VersionError{Current: 7}, 409,
			map[string]any{"error": "version_mismatch", "message": "version mismatch: current version is 7", "version": json.Number("7")}, false},
		{core.ErrNoAuth, 401,
			map[string]any{"error": "unauthorized", "message": "authentication required"}, true},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			w := httptest.NewRecorder()
			writeError(w, c.err)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			dec := json.NewDecoder(w.Body)
			dec.UseNumber()
			var got map[string]any
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("body %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("body %v: %s = %v, want %v", got, k, got[k], v)
				}
			}
			if has := w.Header().Get("WWW-Authenticate") != ""; has != c.auth {
				t.Fatalf("WWW-Authenticate present %v, want %v", has, c.auth)
			}
		})
	}
}
