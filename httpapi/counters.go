package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/concurrencydb/concurrencydb/core"
)

func (a *API) ctrAdd(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	delta := int64(1)
	if s := r.URL.Query().Get("add"); s != "" {
		if delta, err = strconv.ParseInt(s, 10, 64); err != nil {
			writeError(w, fmt.Errorf("%w: add must be a signed 64-bit integer, got %q", core.ErrInvalid, s))
			return
		}
	}
	v, err := a.store.CtrAdd(r.Context(), acc, id, delta)
	if err != nil {
		writeError(w, err)
		return
	}
	writeNumber(w, r, "value", v)
}

func (a *API) ctrGet(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := a.store.CtrGet(r.Context(), acc, id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeNumber(w, r, "value", v)
}

func (a *API) ctrDelete(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.store.CtrDelete(r.Context(), acc, id); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
