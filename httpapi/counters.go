package httpapi

import (
	"fmt"
	"net/http"

	"github.com/concurrencydb/concurrencydb/core"
)

func (a *API) ctrAdd(w http.ResponseWriter, r *http.Request, acc, id string) error {
	delta := int64(1)
	if q := queryOf(r); q.Has("add") {
		s := q.Get("add")
		var ok bool
		// NB: Redis's integer syntax, as CTR.ADD/INCRBY read it: no sign
		// but '-', no leading zeros.
		if delta, ok = core.ParseInt([]byte(s)); !ok {
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
