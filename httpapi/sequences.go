package httpapi

import (
	"net/http"
)

func (a *API) seqNext(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	count, ok, err := uintParam(r.URL.Query(), "count")
	if err != nil {
		writeError(w, err)
		return
	}
	if !ok {
		count = 1
	}
	v, err := a.store.SeqNext(r.Context(), acc, id, count)
	if err != nil {
		writeError(w, err)
		return
	}
	writeNumber(w, r, "value", v)
}

func (a *API) seqGet(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := a.store.SeqGet(r.Context(), acc, id)
	if err != nil {
		writeError(w, err)
		return
	}
	writeNumber(w, r, "value", v)
}

func (a *API) seqReset(w http.ResponseWriter, r *http.Request) {
	acc, id, err := target(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.store.SeqReset(r.Context(), acc, id); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
