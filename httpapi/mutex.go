package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
)

// Mutex handles are 64-bit; JSON carries them as strings because
// JavaScript numbers lose precision above 2^53.

func (a *API) mutexLock(w http.ResponseWriter, r *http.Request, acc, id string) error {
	q := queryOf(r)
	dur, err := seconds(q, "dur", 0, true)
	if err != nil {
		return err
	}
	handle, extend, err := uintParam(q, "handle")
	if err != nil {
		return err
	}
	// NB: read even when handle makes it unused: a malformed parameter is
	// 400 before anything changes (H2).
	wait, err := seconds(q, "wait", 0, false)
	if err != nil {
		return err
	}
	if extend {
		if err := a.store.MutexExtend(acc, id, handle, dur); err != nil {
			return err
		}
		return writeHandle(w, r, handle)
	}
	h, err := a.store.MutexLock(r.Context(), acc, id, dur, wait)
	if err != nil {
		return err
	}
	if l, ok := w.(interface{ onLoss(func()) }); ok {
		// M1: a grant whose response never reaches the client is passed
		// on (on the event loop, whose writer this is).
		l.onLoss(func() { _ = a.store.MutexUnlock(acc, id, h) })
	}
	return writeHandle(w, r, h)
}

func writeHandle(w http.ResponseWriter, r *http.Request, h uint64) error {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]any{"handle": strconv.FormatUint(h, 10)})
		return nil
	}
	writeText(w, fmt.Sprintf("%d\n", h))
	return nil
}

func (a *API) mutexUnlock(w http.ResponseWriter, r *http.Request, acc, id string) error {
	handle, given, err := uintParam(queryOf(r), "handle")
	if err != nil {
		return err
	}
	if !given {
		return noContent(w, a.store.MutexForceUnlock(acc, id))
	}
	return noContent(w, a.store.MutexUnlock(acc, id, handle))
}
