package httpapi

import (
	"fmt"
	"net/http"

	"github.com/concurrencydb/concurrencydb/core"
)

// owner reads ?owner=, or its alias ?id= (the original API description's
// example uses id=). Both given and different is malformed.
func owner(r *http.Request) (string, error) {
	q := r.URL.Query()
	o, alias := q.Get("owner"), q.Get("id")
	if o != "" && alias != "" && o != alias {
		return "", fmt.Errorf("%w: owner and id (its alias) differ", core.ErrInvalid)
	}
	if o == "" {
		o = alias
	}
	return o, nil
}

func lockJSON(li core.LockInfo) map[string]any {
	return map[string]any{"owner": li.Owner, "token": li.Token, "remaining_ms": li.RemainingMs}
}

func (a *API) lockAcquire(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	who, err := owner(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if who == "" {
		writeError(w, fmt.Errorf("%w: owner is required", core.ErrInvalid))
		return
	}
	dur, err := seconds(r.URL.Query(), "dur", 0, true)
	if err != nil {
		writeError(w, err)
		return
	}
	li, err := a.store.LockAcquire(r.Context(), acc, id, who, dur)
	if err != nil {
		writeError(w, err)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, lockJSON(li))
		return
	}
	writeText(w, fmt.Sprintf("%d\n", li.Token))
}

// lockGet always answers JSON: a lock has three facts, none of them primary.
func (a *API) lockGet(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	li, err := a.store.LockGet(r.Context(), acc, id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, lockJSON(li))
}

func (a *API) lockRelease(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	who, err := owner(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := a.store.LockRelease(r.Context(), acc, id, who); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
