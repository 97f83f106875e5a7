package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/concurrencydb/concurrencydb/core"
)

// errorRow maps a core error to an HTTP status and a stable error code.
type errorRow struct {
	err    error
	status int
	code   string
}

// errorTable is the only place core errors become HTTP statuses (H3). It
// is ordered: the first row whose err matches (errors.Is) wins.
var errorTable = []errorRow{
	{core.ErrInvalid, http.StatusBadRequest, "invalid"},
	{core.ErrNotFound, http.StatusNotFound, "not_found"},
	{core.ErrWrongType, http.StatusConflict, "wrongtype"},
	{core.ErrNotInteger, http.StatusConflict, "wrongtype"},
	{core.ErrOverflow, http.StatusConflict, "overflow"},
	{core.ErrVersionMismatch, http.StatusConflict, "version_mismatch"},
	{core.ErrLocked, http.StatusConflict, "locked"},
	{core.ErrNotHeld, http.StatusConflict, "not_held"},
	{core.ErrTimeout, http.StatusConflict, "timeout"},
	{core.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{core.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{core.ErrClosed, http.StatusServiceUnavailable, "shutting_down"},
	{core.ErrNoAuth, http.StatusUnauthorized, "unauthorized"},
	{core.ErrBadToken, http.StatusUnauthorized, "unauthorized"},
	{core.ErrForbidden, http.StatusForbidden, "forbidden"},
	{context.Canceled, 499, "client_closed_request"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "timeout"},
}

func lookupError(err error) errorRow {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row
		}
	}
	return errorRow{err, http.StatusInternalServerError, "internal"}
}

// writeError answers err as JSON with its mapped status. Conflicts about a
// held lock name the owner and the time left; version conflicts the
// current version.
func writeError(w http.ResponseWriter, err error) {
	row := lookupError(err)
	body := map[string]any{"error": row.code, "message": err.Error()}
	var le *core.LockedError
	if errors.As(err, &le) {
		putOwner(body, le.Owner)
		body["remaining_ms"] = le.RemainingMs
	}
	var ve *core.VersionError
	if errors.As(err, &ve) {
		body["version"] = ve.Current
	}
	if row.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="concurrencydb"`)
	}
	if errors.Is(err, core.ErrClosed) {
		// The server is stopping and closes the connection after this: a
		// client's (or proxy's) keep-alive pool must not reuse it.
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, row.status, body)
}
