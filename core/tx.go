package core

import (
	"context"
	"errors"
)

// Transactions, as Redis's MULTI … EXEC and WATCH: a front-end queues a
// client's commands, then runs them with Atomically, which holds the apply
// lock from the first to the last, so no other command (of any client or
// protocol, nor the expiry reaper) runs between them; WATCH is Watch, and
// EXEC checks Changed first, inside Atomically. As in Redis there is no
// rollback: a command that fails inside the transaction answers its error
// and the others still run.
//
// Invariants:
//   - A1: the commands run inside Atomically see and leave the keyspace
//     with nothing of anyone else's between them, at one time (the clock
//     is read once for all of them, as in Redis 7); their writes go to the
//     open batch in order, so a crash keeps a prefix of them (whole batches
//     are durable or not; the writes of one Atomically can straddle two
//     batches only if the committer took the batch between two commands,
//     which it cannot: it needs the apply lock to). Their replies wait for
//     the fsync of that batch (D1), as a pipeline's do.
//   - A2: Changed reports true when a watched key was written or deleted
//     since Watch (by anyone, this connection included), or was live at
//     Watch and has expired since; a key that was already absent or
//     expired at Watch and is reaped since is not a change (as Redis 7).
//     The touch count a write bumps is kept only while some connection
//     watches the key, so watching costs nothing to other writes.

// ErrInTransaction: Atomically was called inside another, or without a
// Pipeline in its context.
var ErrInTransaction = errors.New("transactions do not nest")

// Atomically runs fn with the apply lock held throughout: the Store calls
// fn makes with ctx, which must carry a Pipeline (WithPipeline), run one
// after another as one transaction (A1), and their durability waits are
// collected in that Pipeline as usual. fn must call only Store methods
// that run a command on keys (the strings, counters, sequences, kv and
// lock commands, Changed): a keyspace walk or Unwatch would wait for the
// lock fn holds, and a mutex call is not covered by it (mutexes have a
// lock of their own), so front-ends keep both out of transactions.
func (s *Store) Atomically(ctx context.Context, fn func()) error {
	p := pipelineFrom(ctx)
	if p == nil || p.held != nil {
		return ErrInTransaction
	}
	s.mu.Lock()
	if s.mu.closed {
		// NB: its commands read records with the lock held (runLocked),
		// not through readDB, which Close waits for: after Close they
		// would read a closed Pebble (found by review: a panic).
		s.mu.Unlock()
		return ErrClosed
	}
	// One clock reading for the whole transaction, as Redis 7 freezes
	// its clock during EXEC: a key cannot expire between two of its
	// commands, nor between Changed and the commands after it.
	p.held, p.now = s, s.clock.Now().UnixMilli()
	defer func() {
		p.held, p.now = nil, 0
		s.mu.Unlock()
	}()
	fn()
	return nil
}

// watchKey counts the writes to a key some connection watches.
type watchKey struct {
	refs    int    // Watched entries pointing here
	touches uint64 // writes and deletes of the key since it was first watched
}

// Watched is one key a connection watches (WATCH): the key's touch count
// and liveness when it was watched.
type Watched struct {
	k       string
	w       *watchKey
	touches uint64
	live    bool
}

// Watch starts watching acc/ids, appending to ws. The caller must give
// every entry it returns back to Unwatch (EXEC, DISCARD, UNWATCH, the
// connection's end), or the store keeps counting writes to those keys.
func (s *Store) Watch(ctx context.Context, acc string, ids []string, ws []Watched) ([]Watched, error) {
	ks, err := s.keys(acc, ids)
	if err != nil {
		return ws, err
	}
	err = s.runKeys(ctx, false, ks, func(t *txn) error {
		live := make([]bool, len(ks))
		for i, k := range ks { // all read before any is watched
			e, err := t.get(k)
			if err != nil {
				return err
			}
			live[i] = e.live(t.now)
		}
		for i, k := range ks {
			if s.mu.watch == nil {
				s.mu.watch = map[string]*watchKey{}
			}
			w := s.mu.watch[string(k)]
			if w == nil {
				w = &watchKey{}
				s.mu.watch[string(k)] = w
			}
			w.refs++
			ws = append(ws, Watched{k: string(k), w: w, touches: w.touches, live: live[i]})
		}
		return nil
	})
	return ws, err
}

// Unwatch stops watching ws. Not from inside Atomically.
func (s *Store) Unwatch(ws []Watched) {
	if len(ws) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range ws {
		if x.w.refs--; x.w.refs == 0 {
			delete(s.mu.watch, x.k)
		}
	}
	if len(s.mu.watch) == 0 {
		s.mu.watch = nil // touchLocked's test stays one nil check
	}
}

// Changed reports whether any of ws changed since Watch (A2). Called
// inside Atomically, the answer holds until fn returns.
func (s *Store) Changed(ctx context.Context, ws []Watched) (bool, error) {
	changed := false
	err := s.runKeys(ctx, false, nil, func(t *txn) error {
		for _, x := range ws {
			touched := x.w.touches != x.touches
			if !touched && !x.live {
				continue // absent or expired then, untouched since: still so
			}
			// NB: read also when the count answers: get makes the reply
			// wait for the write it reflects (D1).
			e, err := t.get([]byte(x.k))
			if err != nil {
				return err
			}
			if touched {
				changed = true
				return nil
			}
			if !e.live(t.now) {
				changed = true // expired since
				return nil
			}
		}
		return nil
	})
	return changed, err
}

// WatchedKeys is how many distinct keys connections watch.
func (s *Store) WatchedKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.watch)
}

// touchLocked counts a write of k for its watchers (A2).
func (s *Store) touchLocked(k []byte) {
	if w := s.mu.watch[string(k)]; w != nil {
		w.touches++
	}
}
