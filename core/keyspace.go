package core

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/concurrencydb/concurrencydb/persist"
)

// The generic keyspace commands (Redis's db.c and expire.c): delete, exist,
// type, TTLs, enumeration, rename, flush. They act on every type; the few
// that could move a sequence backwards or make it expire (EXPIRE family,
// RENAME onto it) refuse it with ErrWrongType (D3).

// ErrInvalidExpire is the ErrInvalid of an expiry that is zero, negative or
// out of range where a positive one is required (SET EX 0). Front-ends name
// the command in its text, as Redis does.
var ErrInvalidExpire = fmt.Errorf("%w: invalid expire time", ErrInvalid)

// ExpiryMode says what a write does to a key's TTL.
type ExpiryMode uint8

// Expiry modes.
const (
	ExpiryClear ExpiryMode = iota // no expiry: what a plain SET does
	ExpiryKeep                    // keep the current expiry (KEEPTTL)
	ExpiryIn                      // Ms milliseconds from now (EX, PX)
	ExpiryAt                      // at unix time Ms milliseconds (EXAT, PXAT)
)

// Expiry is the TTL part of a write. Relative expiries become absolute
// deadlines with the command's single clock reading (T1).
type Expiry struct {
	Mode ExpiryMode
	Ms   int64
}

// resolve returns the deadline (unix ms, 0 = none) a write with x stores,
// given the key's current deadline old. A deadline at or before now is
// returned as is: the caller deletes the key instead of writing it.
func (x Expiry) resolve(now, old int64, max time.Duration) (int64, error) {
	switch x.Mode {
	case ExpiryKeep:
		return old, nil
	case ExpiryIn:
		if x.Ms <= 0 {
			return 0, ErrInvalidExpire
		}
		if x.Ms > max.Milliseconds() {
			return 0, invalidf("ttl must be at most %v", max)
		}
		return now + x.Ms, nil
	case ExpiryAt:
		if x.Ms <= 0 {
			return 0, ErrInvalidExpire
		}
		if x.Ms-now > max.Milliseconds() {
			return 0, invalidf("ttl must be at most %v", max)
		}
		return x.Ms, nil
	}
	return 0, nil
}

// recLive reports whether a stored record is visible at now (D4).
func recLive(r *persist.Record, now int64) bool {
	return r.ExpireAt == 0 || r.ExpireAt > now
}

// putOrExpire writes rec at k unless its deadline has already passed, in
// which case the key is deleted (Redis: SET … PXAT in the past).
func (t *txn) putOrExpire(k []byte, old *entry, rec persist.Record) persist.Record {
	if rec.ExpireAt != 0 && rec.ExpireAt <= t.now {
		if old.exists {
			t.del(k, old)
		}
		return rec
	}
	return t.put(k, old, rec)
}

// keys validates and encodes the ids of one account.
func (s *Store) keys(acc string, ids []string) ([][]byte, error) {
	ks := make([][]byte, len(ids))
	for i, id := range ids {
		k, err := s.key(acc, id)
		if err != nil {
			return nil, err
		}
		ks[i] = k
	}
	return ks, nil
}

// Del deletes the given keys of acc, whatever their type (deleting a
// sequence resets it), and returns how many existed.
func (s *Store) Del(ctx context.Context, acc string, ids []string) (int, error) {
	ks, err := s.keys(acc, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.runKeys(ctx, true, ks, func(t *txn) error {
		for _, k := range ks {
			e, err := t.get(k)
			if err != nil {
				return err
			}
			if e.live(t.now) {
				t.del(k, e)
				n++
			}
		}
		return nil
	})
	return n, err
}

// Exists counts the given keys that exist; a key named twice counts twice.
func (s *Store) Exists(ctx context.Context, acc string, ids []string) (int, error) {
	ks, err := s.keys(acc, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.runKeys(ctx, false, ks, func(t *txn) error {
		for _, k := range ks {
			e, err := t.get(k)
			if err != nil {
				return err
			}
			if e.live(t.now) {
				n++
			}
		}
		return nil
	})
	return n, err
}

// TypeName is the name TYPE answers for a record type.
func TypeName(t persist.Type) string {
	switch t {
	case persist.TypeString:
		return "string"
	case persist.TypeSequence:
		return "sequence"
	}
	return "unknown"
}

// Type returns the type name of acc/id, "none" when absent.
func (s *Store) Type(ctx context.Context, acc, id string) (string, error) {
	name := "none"
	err := s.viewKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if e.live(t.now) {
			name = TypeName(e.rec.Type)
		}
		return nil
	})
	return name, err
}

// ExpireCond is the NX/XX/GT/LT condition of the EXPIRE family: a set
// of flags that must all hold (Redis takes XX GT and XX LT together).
type ExpireCond uint8

// Expire conditions (a key without TTL counts as an infinite TTL for GT/LT,
// as in Redis).
const (
	ExpireAlways    ExpireCond = 0
	ExpireIfNoTTL   ExpireCond = 1 << (iota - 1) // NX
	ExpireIfTTL                                  // XX
	ExpireIfGreater                              // GT
	ExpireIfLess                                 // LT
)

// Expire sets acc/id's deadline to x (ExpiryIn or ExpiryAt) if cond holds
// and reports whether it did. A deadline not after now deletes the key,
// like Redis. A sequence never expires: ErrWrongType (D3).
func (s *Store) Expire(ctx context.Context, acc, id string, x Expiry, cond ExpireCond) (bool, error) {
	if x.Mode != ExpiryIn && x.Mode != ExpiryAt {
		return false, invalidf("expire needs a relative or absolute deadline")
	}
	max := s.cfg.MaxDuration.Milliseconds()
	done := false
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		// NB: an absent key answers 0 before the amount is held against
		// max_duration, as Redis answers 0 for it whatever the amount.
		if !e.live(t.now) {
			return nil
		}
		if e.rec.Type == persist.TypeSequence {
			return ErrWrongType
		}
		at := x.Ms
		if x.Mode == ExpiryIn {
			if x.Ms > max {
				at = math.MaxInt64 // refused below; now+Ms could overflow
			} else {
				at = t.now + x.Ms
			}
		}
		// NB: a deadline of 0 or before (PEXPIRE k -now) is in the past:
		// the key goes. 0 must not reach the record, where it means "no
		// expiry" and would keep the key for ever.
		if at < 1 {
			at = 1
		}
		// NB: the condition first, as Redis: EXPIRE k <too long> NX on a
		// key with a TTL answers 0, not the max_duration error.
		cur := e.rec.ExpireAt
		if cond&ExpireIfNoTTL != 0 && cur != 0 ||
			cond&ExpireIfTTL != 0 && cur == 0 ||
			cond&ExpireIfGreater != 0 && (cur == 0 || at <= cur) ||
			cond&ExpireIfLess != 0 && cur != 0 && at >= cur {
			return nil
		}
		if at-t.now > max {
			return invalidf("ttl must be at most %v", s.cfg.MaxDuration)
		}
		rec := e.rec
		rec.ExpireAt = at
		t.putOrExpire(k, e, rec)
		done = true
		return nil
	})
	return done, err
}

// Persist removes acc/id's TTL and reports whether it had one.
func (s *Store) Persist(ctx context.Context, acc, id string) (bool, error) {
	done := false
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) || e.rec.ExpireAt == 0 {
			return nil
		}
		rec := e.rec
		rec.ExpireAt = 0
		t.put(k, e, rec)
		done = true
		return nil
	})
	return done, err
}

// Redis's replies for a key without a TTL and for an absent key.
const (
	NoExpiry  int64 = -1
	NoSuchKey int64 = -2
)

// KeyExpiry returns acc/id's deadline (unix ms) and the milliseconds left
// until it; both are NoExpiry for a key without TTL and NoSuchKey for an
// absent key.
func (s *Store) KeyExpiry(ctx context.Context, acc, id string) (expireAt, remainingMs int64, err error) {
	expireAt, remainingMs = NoSuchKey, NoSuchKey
	err = s.viewKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		switch {
		case !e.live(t.now):
		case e.rec.ExpireAt == 0:
			expireAt, remainingMs = NoExpiry, NoExpiry
		default:
			expireAt, remainingMs = e.rec.ExpireAt, e.rec.ExpireAt-t.now
		}
		return nil
	})
	return expireAt, remainingMs, err
}

// scan visits the records stored in [start, end) after key after
// (exclusive; nil: from start) in key order, calling fn for each existing
// record (live or expired: check recLive) until fn returns false; it
// reports whether fn stopped it. Pending writes (the overlay) take
// precedence over Pebble, and the txn depends on every pending write in the
// range, deletes included, so the reply waits for them (D1).
//
// It runs under the apply lock: fn may put and del. rec.Value is only valid
// during the call. NB: a full scan holds the apply lock for its duration,
// like Redis's KEYS holds its event loop; SCAN bounds it with COUNT.
func (t *txn) scan(start, end, after []byte, fn func(k []byte, rec *persist.Record) bool) (stopped bool, err error) {
	s := t.s
	lower := start
	if after != nil && bytes.Compare(after, start) >= 0 {
		lower = append(bytes.Clone(after), 0)
	}
	overlay := t.pendingIn(lower, end)
	i := 0
	// emit visits overlay key i; it reports false to stop the scan.
	emit := func() bool {
		k := []byte(overlay[i])
		i++
		e, gerr := t.get(k)
		if gerr != nil {
			err = gerr
			return false
		}
		if !e.exists {
			return true
		}
		rec := e.rec
		if !fn(k, &rec) {
			stopped = true
			return false
		}
		return true
	}
	serr := s.db.Scan(lower, end, func(k []byte, rec persist.Record) bool {
		for i < len(overlay) && overlay[i] < string(k) {
			if !emit() {
				return false
			}
		}
		if i < len(overlay) && overlay[i] == string(k) {
			return emit()
		}
		if !fn(k, &rec) {
			stopped = true
			return false
		}
		return true
	})
	if serr != nil {
		return false, serr
	}
	for err == nil && !stopped && i < len(overlay) {
		emit()
	}
	return stopped, err
}

// pendingIn returns the keys in [lower, end) (end nil: no bound) whose
// entries are pending, sorted: the writes Pebble does not have yet, which
// a listing merges with its own. NB: from the batches' key lists, not a
// walk of mem: a SCAN of 10 keys walked a full cache (90,000 entries, 2
// ms under the apply lock, every write waiting) where Redis looks at ~10.
func (t *txn) pendingIn(lower, end []byte) []string {
	s := t.s
	var out []string
	add := func(keys []string) {
		for _, k := range keys {
			if k >= string(lower) && (end == nil || k < string(end)) {
				out = append(out, k)
			}
		}
	}
	add(s.mu.open.keys)
	if s.mu.inflight != nil {
		add(s.mu.inflight.keys)
	}
	if s.mu.applying != nil {
		add(s.mu.applying.keys)
	}
	add(s.mu.failedKeys)
	slices.Sort(out)
	return slices.Compact(out)
}

func accountRange(acc string) (start, end []byte) {
	start = persist.AccountPrefix(acc)
	return start, persist.PrefixEnd(start)
}

func (s *Store) checkAccount(acc string) error { return CheckAccount(acc) }

// CheckAccount validates an account name (ErrInvalid): 1 to 255 bytes,
// without '{' or '}', which RESP reserves for its {account}:key form — an
// account with them could never be reached over RESP. NB: spaces and
// control characters are allowed (data written with them must stay
// reachable); RESP escapes them where it prints names as words.
func CheckAccount(acc string) error {
	if len(acc) == 0 || len(acc) > persist.MaxNameLen {
		return invalidf("account name must be 1 to %d bytes", persist.MaxNameLen)
	}
	if strings.ContainsAny(acc, "{}") {
		return invalidf("account name must not contain { or }: they are reserved for {account}:key")
	}
	return nil
}

// ScanOptions qualify Scan and Keys.
type ScanOptions struct {
	// After is where to continue: after this id when Resume is set, from
	// the beginning when not. NB: a flag, not After != "": the empty id is
	// a key too, and the first in order.
	After  string
	Resume bool
	Count  int    // how many live keys to look at (a hint, as in Redis); ≤0: 10
	Match  string // glob pattern (Redis syntax); "" matches all
	Type   string // only keys of this type name; "" for all
}

// Scan returns ids of acc in key order after opts.After, looking at about
// opts.Count live keys, and, when more may follow (more), the id to
// continue after. Keys are ordered, so a key that exists for the whole of
// a scan is returned exactly once however the keyspace changes meanwhile.
func (s *Store) Scan(ctx context.Context, acc string, opts ScanOptions) (ids []string, next string, more bool, err error) {
	if err := s.checkAccount(acc); err != nil {
		return nil, "", false, err
	}
	if opts.Count <= 0 {
		opts.Count = 10
	}
	start, end := accountRange(acc)
	var after []byte
	if opts.Resume {
		after = persist.DataKey(acc, opts.After)
	}
	err = s.view(ctx, func(t *txn) error {
		seen := 0
		stopped, err := t.scan(start, end, after, func(k []byte, rec *persist.Record) bool {
			if !recLive(rec, t.now) {
				return true
			}
			_, id, _ := persist.SplitDataKey(k)
			if (opts.Type == "" || opts.Type == TypeName(rec.Type)) && (opts.Match == "" || opts.Match == "*" || MatchGlob(opts.Match, id)) {
				ids = append(ids, id)
			}
			seen++
			if seen >= opts.Count {
				next = id
				return false
			}
			return true
		})
		more = err == nil && stopped
		return err
	})
	if !more {
		next = ""
	}
	return ids, next, more, err
}

// Keys returns every id of acc that matches the glob pattern, in key order.
func (s *Store) Keys(ctx context.Context, acc, pattern string) ([]string, error) {
	if err := s.checkAccount(acc); err != nil {
		return nil, err
	}
	start, end := accountRange(acc)
	ids := []string{}
	err := s.view(ctx, func(t *txn) error {
		var ctxErr error
		n := 0
		_, err := t.scan(start, end, nil, func(k []byte, rec *persist.Record) bool {
			// A client that went away (its connection's ctx ends) stops
			// the walk, which holds the apply lock: found by review, 20
			// clients that sent KEYS * over 1.16M keys and left held
			// every other client back for 11 s.
			if n++; n%4096 == 0 {
				if ctxErr = ctx.Err(); ctxErr != nil {
					return false
				}
			}
			if recLive(rec, t.now) {
				_, id, _ := persist.SplitDataKey(k)
				if pattern == "*" || MatchGlob(pattern, id) { // "*": all, "" too
					ids = append(ids, id)
				}
			}
			return true
		})
		return cmp.Or(err, ctxErr)
	})
	return ids, err
}

// RandomKey returns an id of acc picked at random, or ok false when the
// account is empty. NB: it picks the first key after a random point, so
// ids after long gaps are favoured; good enough for RANDOMKEY's uses.
func (s *Store) RandomKey(ctx context.Context, acc string) (id string, ok bool, err error) {
	if err := s.checkAccount(acc); err != nil {
		return "", false, err
	}
	start, end := accountRange(acc)
	pivot := append(bytes.Clone(start), byte(rand.IntN(256)), byte(rand.IntN(256)))
	err = s.view(ctx, func(t *txn) error {
		first := func(k []byte, rec *persist.Record) bool {
			if !recLive(rec, t.now) {
				return true
			}
			_, id, _ = persist.SplitDataKey(k)
			ok = true
			return false
		}
		if _, err := t.scan(start, end, pivot, first); err != nil || ok {
			return err
		}
		_, err := t.scan(start, end, nil, first)
		return err
	})
	return id, ok, err
}

// DBSize counts the live keys of acc, as they are when it is called.
//
// NB: it walks the account without the apply lock, which it holds only to
// take a view of Pebble and the state of the writes Pebble does not have
// yet (pendingIn), at one moment: the walk then counts the view's records,
// each pending key by its state instead. Counted under the lock, as KEYS
// is, a DBSIZE of 100,000 keys held every write back for 30 ms (Redis's
// DBSIZE is O(1), and monitoring calls it freely).
func (s *Store) DBSize(ctx context.Context, acc string) (int, error) {
	if err := s.checkAccount(acc); err != nil {
		return 0, err
	}
	start, end := accountRange(acc)
	var (
		pending []string // sorted
		live    []bool   // pending[i]'s state
		view    *persist.View
		now     int64
	)
	err := s.view(ctx, func(t *txn) error {
		now = t.now
		pending = t.pendingIn(start, end)
		live = make([]bool, len(pending))
		for i, k := range pending {
			e, err := t.get([]byte(k)) // waits for its batch (D1); a failed one's error (D6)
			if err != nil {
				return err
			}
			live[i] = e.live(t.now)
		}
		v, err := s.db.View(start, end)
		if err != nil {
			return err
		}
		view = v
		s.reads.RLock() // Close waits for the walk
		return nil
	})
	if view == nil {
		return 0, err
	}
	defer s.reads.RUnlock()
	if err != nil {
		return 0, errors.Join(err, view.Close())
	}
	n, i := 0, 0
	for _, l := range live {
		if l {
			n++
		}
	}
	serr := view.Scan(func(k []byte, rec persist.Record) bool {
		for i < len(pending) && pending[i] < string(k) {
			i++
		}
		if i < len(pending) && pending[i] == string(k) {
			return true // counted by its pending state
		}
		if recLive(&rec, now) {
			n++
		}
		return true
	})
	return n, serr
}

// FlushDB deletes every key of acc, sequences included.
func (s *Store) FlushDB(ctx context.Context, acc string) error {
	if err := s.checkAccount(acc); err != nil {
		return err
	}
	start, end := accountRange(acc)
	return s.flush(ctx, start, end)
}

// FlushAll deletes every key of every account.
func (s *Store) FlushAll(ctx context.Context) error {
	start := persist.DataPrefix()
	return s.flush(ctx, start, persist.PrefixEnd(start))
}

func (s *Store) flush(ctx context.Context, start, end []byte) error {
	return s.update(ctx, func(t *txn) error {
		var ks [][]byte
		_, err := t.scan(start, end, nil, func(k []byte, _ *persist.Record) bool {
			ks = append(ks, bytes.Clone(k))
			return true
		})
		if err != nil {
			return err
		}
		for _, k := range ks {
			e, err := t.get(k)
			if err != nil {
				return err
			}
			if e.exists {
				t.del(k, e)
			}
		}
		return nil
	})
}

// AccountKeys is one line of INFO keyspace.
type AccountKeys struct {
	Account string
	Keys    int // live keys
	Expires int // live keys with a TTL
}

// Keyspace counts the live keys of every non-empty account, in account
// order, for INFO. It reads committed data only and without the apply
// lock, so monitoring never stalls writes; writes not yet synced are not
// counted (what it reports is durable, D1). NB: it reads every key.
func (s *Store) Keyspace(ctx context.Context) ([]AccountKeys, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Every acknowledged write is counted (C3), or the count fails.
	if err := s.appliedCtx(ctx); err != nil {
		return nil, err
	}
	start := persist.DataPrefix()
	now := s.clock.Now().UnixMilli()
	var out []AccountKeys
	err := s.readDB(func() error {
		return s.db.Scan(start, persist.PrefixEnd(start), func(k []byte, rec persist.Record) bool {
			if ctx.Err() != nil {
				return false // a metrics scrape's deadline, or shutdown
			}
			if !recLive(&rec, now) {
				return true
			}
			acc, _, _ := persist.SplitDataKey(k)
			if len(out) == 0 || out[len(out)-1].Account != acc {
				out = append(out, AccountKeys{Account: acc})
			}
			out[len(out)-1].Keys++
			if rec.ExpireAt != 0 {
				out[len(out)-1].Expires++
			}
			return true
		})
	})
	if err == nil {
		err = ctx.Err() // a partial count is no count
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Rename moves acc/src to acc/dst with its value and TTL, replacing dst
// (with nx, only when dst is absent; it reports whether it moved). The key
// at dst is a new key: it gets a new create revision, so a lock renamed
// onto dst fences above any earlier holder of dst (D3). Moving a sequence
// resets src and keeps its value at dst; replacing a sequence at dst would
// move it backwards: ErrWrongType. An absent src is ErrNotFound.
func (s *Store) Rename(ctx context.Context, acc, src, dst string, nx bool) (bool, error) {
	ks, err := s.keys(acc, []string{src, dst})
	if err != nil {
		return false, err
	}
	moved := false
	err = s.runKeys(ctx, true, ks, func(t *txn) error {
		se, err := t.get(ks[0])
		if err != nil {
			return err
		}
		if !se.live(t.now) {
			return ErrNotFound
		}
		de, err := t.get(ks[1])
		if err != nil {
			return err
		}
		dlive := de.live(t.now)
		if src == dst {
			moved = !nx
			return nil
		}
		if nx && dlive {
			return nil // NB: before the type: NX never replaces (review: RENAMENX onto a sequence was WRONGTYPE, not 0)
		}
		if dlive && de.rec.Type == persist.TypeSequence {
			return ErrWrongType
		}
		rec := se.rec
		rec.Create = 0
		t.put(ks[1], de, rec)
		t.del(ks[0], se)
		moved = true
		return nil
	})
	return moved, err
}

// MatchGlob reports whether s matches the Redis glob pattern p: * any run,
// ? one byte, [abc] [^a] [a-z] classes, \ escapes the next byte.
func MatchGlob(p, s string) bool {
	if s == "" {
		// As Redis's stringmatchlen: no pattern but "" matches the empty
		// key (KEYS * and SCAN without MATCH list it: they do not match).
		return p == ""
	}
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				for pi < len(p) && p[pi] == '*' {
					pi++
				}
				if pi == len(p) {
					return true
				}
				starP, starS = pi, si
				continue
			default:
				if next, ok := matchOne(p, pi, s[si]); ok {
					pi, si = next, si+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchOne matches the single pattern token at p[i] (not '*') against c and
// returns the index after the token.
func matchOne(p string, i int, c byte) (int, bool) {
	switch p[i] {
	case '?':
		return i + 1, true
	case '\\':
		if i+1 < len(p) {
			return i + 2, p[i+1] == c
		}
		return i + 1, c == '\\'
	case '[':
		j := i + 1
		not := j < len(p) && p[j] == '^'
		if not {
			j++
		}
		match := false
		for j < len(p) && p[j] != ']' {
			switch {
			case p[j] == '\\' && j+1 < len(p):
				match = match || p[j+1] == c
				j += 2
			case j+2 < len(p) && p[j+1] == '-': // as Redis, [a-] is the range ]..a
				lo, hi := p[j], p[j+2]
				if lo > hi {
					lo, hi = hi, lo
				}
				match = match || (c >= lo && c <= hi)
				j += 3
			default:
				match = match || p[j] == c
				j++
			}
		}
		if j < len(p) {
			j++ // the closing ]
		}
		return j, match != not
	}
	return i + 1, p[i] == c
}
