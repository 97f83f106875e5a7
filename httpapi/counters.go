package httpapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/concurrencydb/concurrencydb/core"
)

func (a *API) ctrAdd(w http.ResponseWriter, r *http.Request, acc, id string) error {
	delta := int64(1)
	if q := queryOf(r); q.Has("add") {
		s := q.Get("add")
		var err error
		if delta, err = strconv.ParseInt(s, 10, 64); err != nil {
			return fmt.Errorf("%w: add must be a signed 64-bit integer, got %q", core.ErrInvalid, s)
		}
	}
	v, err := a.store.CtrAdd(r.Context(), acc, id, delta)
	return writeNumber(w, r, "value", v, err)
}

func (a *API) ctrGet(w http.ResponseWriter, r *http.Request, acc, id string) error {
	v, err := a.store.CtrGet(r.Context(), acc, id)
	return writeNumber(w, r, "value", v, err)
}

func (a *API) ctrDelete(w http.ResponseWriter, r *http.Request, acc, id string) error {
	return noContent(w, a.store.CtrDelete(r.Context(), acc, id))
}
