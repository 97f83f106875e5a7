package httpapi

import (
	"net/http"
)

func (a *API) seqNext(w http.ResponseWriter, r *http.Request, acc, id string) error {
	count, ok, err := uintParam(queryOf(r), "count")
	if err != nil {
		return err
	}
	if !ok {
		count = 1
	}
	v, err := a.store.SeqNext(r.Context(), acc, id, count)
	return writeNumber(w, r, "value", v, err)
}

func (a *API) seqGet(w http.ResponseWriter, r *http.Request, acc, id string) error {
	v, err := a.store.SeqGet(r.Context(), acc, id)
	return writeNumber(w, r, "value", v, err)
}

func (a *API) seqReset(w http.ResponseWriter, r *http.Request, acc, id string) error {
	return noContent(w, a.store.SeqReset(r.Context(), acc, id))
}
