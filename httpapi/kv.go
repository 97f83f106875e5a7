package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/concurrencydb/concurrencydb/core"
)

// precondition reads ?ver=N, If-Match: "N" | * or If-None-Match: *, one
// of them; ver=0 means "only if absent".
func precondition(r *http.Request) (core.Precondition, error) {
	ver, ok, err := uintParam(queryOf(r), "ver")
	if err != nil {
		return core.Precondition{}, err
	}
	inm, hasINM := r.Header["If-None-Match"]
	im, hasIM := r.Header["If-Match"]
	if ok {
		if hasINM || hasIM { // one condition per request, never one dropped
			return core.Precondition{}, fmt.Errorf("%w: send ?ver or If-Match/If-None-Match, not both", core.ErrInvalid)
		}
		return core.Precondition{Cond: core.CondVersion, Version: ver}, nil
	}
	// NB: a header that is present counts, even empty or repeated: each
	// of these is refused rather than read as absent, which would make
	// the write unconditional. Both headers at once are refused too (one
	// condition per request; RFC 9110 would evaluate If-Match first).
	switch {
	case hasINM && hasIM:
		return core.Precondition{}, fmt.Errorf("%w: send If-Match or If-None-Match, not both", core.ErrInvalid)
	case len(inm) > 1 || len(im) > 1:
		return core.Precondition{}, fmt.Errorf("%w: one If-Match or If-None-Match header line only", core.ErrInvalid)
	case hasINM:
		if m := strings.TrimSpace(inm[0]); m != "*" {
			return core.Precondition{}, fmt.Errorf("%w: If-None-Match supports only *, got %q", core.ErrInvalid, m)
		}
		return core.Precondition{Cond: core.CondAbsent}, nil
	case hasIM:
		m := strings.TrimSpace(im[0])
		if m == "*" {
			return core.Precondition{Cond: core.CondPresent}, nil
		}
		// NB: exactly one strong tag, "N" as the ETag header gives it: a
		// weak tag (W/"N") never matches under If-Match's strong
		// comparison (RFC 9110 13.1.1), an unquoted one is not a tag, and
		// a list ("1", "2") is not supported; none of them may write as if
		// it were "N", so each is refused as invalid.
		n, ok := int64(0), false
		if len(m) >= 3 && m[0] == '"' && m[len(m)-1] == '"' {
			n, ok = core.ParseInt([]byte(m[1 : len(m)-1])) // "099" is not "99"
		}
		if !ok || n < 0 {
			return core.Precondition{}, fmt.Errorf(`%w: If-Match must be * or one strong entity tag as the ETag header gives it ("N"), got %q`, core.ErrInvalid, m)
		}
		if n == 0 { // no ETag is "0"; ?ver=0 means "absent", If-Match never does
			return core.Precondition{}, fmt.Errorf(`%w: If-Match: "0" matches no version; create-only is If-None-Match: * (or ?ver=0)`, core.ErrInvalid)
		}
		return core.Precondition{Cond: core.CondVersion, Version: uint64(n)}, nil
	}
	return core.Precondition{}, nil
}

func setVersionHeaders(w http.ResponseWriter, ver uint64) {
	w.Header().Set("ETag", fmt.Sprintf(`"%d"`, ver))
	w.Header().Set("X-Version", strconv.FormatUint(ver, 10))
}

func (a *API) kvSet(w http.ResponseWriter, r *http.Request, acc, id string) error {
	var opts core.KVSetOptions
	var err error
	if opts.If, err = precondition(r); err != nil {
		return err
	}
	if opts.TTL, err = seconds(queryOf(r), "ttl", 0, false); err != nil {
		return err
	}
	opts.HasTTL = queryOf(r).Has("ttl")
	max := a.store.Config().MaxValueBytes
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(max)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: the body is larger than %d bytes", core.ErrTooLarge, max)
		}
		return fmt.Errorf("%w: reading the body: %v", core.ErrInvalid, err)
	}
	ver, err := a.store.KVSet(r.Context(), acc, id, body, opts)
	if err == nil {
		setVersionHeaders(w, ver)
	}
	return writeNumber(w, r, "version", ver, err)
}

func (a *API) kvGet(w http.ResponseWriter, r *http.Request, acc, id string) error {
	kv, err := a.store.KVGet(r.Context(), acc, id)
	if err != nil {
		return err
	}
	setVersionHeaders(w, kv.Version)
	// The body's form depends on Accept: a cache must not answer one
	// client with the form another asked for.
	w.Header().Set("Vary", "Accept")
	ttlMs := kv.TTLMs
	if ttlMs >= 0 {
		w.Header().Set("X-TTL-Ms", strconv.FormatInt(ttlMs, 10))
	}
	if wantsJSON(r) {
		body := map[string]any{"version": kv.Version}
		if utf8.Valid(kv.Value) {
			body["value"] = string(kv.Value)
		} else {
			body["value"] = base64.StdEncoding.EncodeToString(kv.Value)
			body["encoding"] = "base64"
		}
		if ttlMs >= 0 {
			body["ttl_ms"] = ttlMs
		}
		writeJSON(w, http.StatusOK, body)
		return nil
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(kv.Value)
	return nil
}

func (a *API) kvDelete(w http.ResponseWriter, r *http.Request, acc, id string) error {
	cond, err := precondition(r)
	if err != nil {
		return err
	}
	deleted, err := a.store.KVDelete(r.Context(), acc, id, cond)
	if err == nil && !deleted {
		// Absent, under a condition that held (?ver=0, If-None-Match: *):
		// nothing was deleted, so not a 204, which curl -f would take for
		// a deletion (found by review); 404, as without the condition.
		err = fmt.Errorf("%w: no key to delete", core.ErrNotFound)
	}
	return noContent(w, err)
}
