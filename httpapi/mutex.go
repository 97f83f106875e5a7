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
	// NB: read and checked even when handle makes it unused: a malformed
	// parameter is 400 before anything changes (H2; the range was not
	// checked, found by review).
	wait, err := seconds(q, "wait", 0, false)
	if err == nil {
		err = a.store.CheckWait(wait)
	}
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
	// M1: a grant whose response never reaches the client is passed on.
	onLoss(w, func() { _ = a.store.MutexUnlock(acc, id, h) })
	return writeHandle(w, r, h)
}

// onLoss has the event loop's response writer under w (observe wraps it
// when metrics or the slow log are on, as in the binary) run fn if the
// response never reaches the client. NB: through Unwrap, which every
// wrapper here has: a type assertion on w alone missed it.
func onLoss(w http.ResponseWriter, fn func()) {
	for {
		switch v := w.(type) {
		case interface{ onLoss(func()) }:
			v.onLoss(fn)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return // net/http's, in tests that serve the API with it
		}
	}
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
