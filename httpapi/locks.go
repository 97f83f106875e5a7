package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/concurrencydb/concurrencydb/core"
)

// owner reads ?owner=, or its alias ?id= (the original API description's
// example uses id=). Both given and different is malformed.
func owner(r *http.Request) (string, error) {
	q := queryOf(r)
	o, alias := q.Get("owner"), q.Get("id")
	// Present but empty is malformed: release without an owner is a force
	// release, which an unset shell variable must not turn into.
	if (o == "" && q.Has("owner")) || (alias == "" && q.Has("id")) {
		return "", fmt.Errorf("%w: owner is empty", core.ErrInvalid)
	}
	if o != "" && alias != "" && o != alias {
		return "", fmt.Errorf("%w: owner and id (its alias) differ", core.ErrInvalid)
	}
	if o == "" {
		o = alias
	}
	return o, nil
}

func lockJSON(li core.LockInfo) map[string]any {
	body := map[string]any{"token": li.Token, "remaining_ms": li.RemainingMs}
	putOwner(body, li.Owner)
	return body
}

// putOwner sets a lock's owner in a JSON body: as is when it is UTF-8,
// else in base64 with "owner_encoding": "base64" (as kv values), so that
// an owner SET over RESP with any bytes reads back exactly.
func putOwner(body map[string]any, owner string) {
	if utf8.ValidString(owner) {
		body["owner"] = owner
		return
	}
	body["owner"] = base64.StdEncoding.EncodeToString([]byte(owner))
	body["owner_encoding"] = "base64"
}

func (a *API) lockAcquire(w http.ResponseWriter, r *http.Request, acc, id string) error {
	who, err := owner(r)
	if err != nil {
		return err
	}
	if who == "" {
		return fmt.Errorf("%w: owner is required", core.ErrInvalid)
	}
	dur, err := seconds(queryOf(r), "dur", 0, true)
	if err != nil {
		return err
	}
	li, err := a.store.LockAcquire(r.Context(), acc, id, who, dur)
	if err != nil {
		return err
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, lockJSON(li))
		return nil
	}
	writeText(w, fmt.Sprintf("%d\n", li.Token))
	return nil
}

// lockGet always answers JSON: a lock has three facts, none of them primary.
func (a *API) lockGet(w http.ResponseWriter, r *http.Request, acc, id string) error {
	li, err := a.store.LockGet(r.Context(), acc, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, lockJSON(li))
	return nil
}

func (a *API) lockRelease(w http.ResponseWriter, r *http.Request, acc, id string) error {
	who, err := owner(r)
	if err != nil {
		return err
	}
	if who == "" {
		_, err = a.store.LockForceRelease(r.Context(), acc, id)
	} else {
		_, err = a.store.LockRelease(r.Context(), acc, id, who)
	}
	return noContent(w, err)
}
