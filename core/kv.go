package core

import (
	"context"
	"math"
	"time"

	"github.com/concurrencydb/concurrencydb/persist"
)

// Cond is the precondition of a compare-and-set write or delete.
type Cond int

// Conditions. CondVersion with Version 0 means "only if absent".
const (
	CondNone    Cond = iota // unconditional
	CondVersion             // only if the current version equals Version (0: absent)
	CondAbsent              // only if the key does not exist (If-None-Match: *)
	CondPresent             // only if the key exists (If-Match: *)
)

// Precondition is a condition on a key's current version.
type Precondition struct {
	Cond    Cond
	Version uint64
}

// check returns a VersionError when the key (live: whether it exists,
// current: its version) fails p.
func (p Precondition) check(live bool, current uint64) error {
	if !live {
		current = 0
	}
	ok := true
	switch p.Cond {
	case CondVersion:
		ok = current == p.Version
	case CondAbsent:
		ok = !live
	case CondPresent:
		ok = live
	}
	if !ok {
		return &VersionError{Current: current}
	}
	return nil
}

// KV is a key's value with its metadata.
//
// NB: Value may share memory with the store's cache: callers must not
// modify it.
type KV struct {
	Value    []byte
	Version  uint64 // mod revision
	Created  uint64 // create revision
	ExpireAt int64  // unix ms; 0 = no expiry
	TTLMs    int64  // ms left at the read's clock reading; -1 = no expiry
	Type     persist.Type
}

// KVSetOptions qualify KVSet.
type KVSetOptions struct {
	If Precondition
	// HasTTL: the write carries a TTL, which must then be > 0 (and at
	// most MaxDuration). Without one the key has no expiry (an earlier
	// TTL is cleared, like SET).
	HasTTL bool
	TTL    time.Duration
}

// ParseSeconds parses a duration given in seconds, fractions allowed
// ("0.25"), as both front-ends accept them (one parser, STYLE 7). Negative,
// NaN and infinite values are ErrInvalid (so is a literal beyond float64's
// range, 1e309); a finite value beyond what a Duration holds is the
// longest Duration, so that the caller's maximum
// says what is allowed ("at most 24h"); a positive value below one
// nanosecond is 1 ns, so that it is not mistaken for zero. Range rules
// (zero, maximum) are checked where the duration is used.
func ParseSeconds(name string, b []byte) (time.Duration, error) {
	f, ok := ParseFloat(b)
	if !ok || f < 0 || math.IsInf(f, 0) {
		return 0, invalidf("%s must be a number of seconds, got %q", name, b)
	}
	if f >= float64(math.MaxInt64)/float64(time.Second) {
		return math.MaxInt64, nil
	}
	d := time.Duration(f * float64(time.Second))
	if d == 0 && f > 0 {
		d = 1
	}
	return d, nil
}

// checkDuration validates a lock, mutex or TTL duration against max. NB:
// name is what both front-ends call it (HTTP's dur is RESP's seconds).
func checkDuration(name string, d, max time.Duration) error {
	if d <= 0 {
		return invalidf("%s must be greater than 0", name)
	}
	if d > max {
		return invalidf("%s must be at most %v", name, max)
	}
	return nil
}

// deadline is now plus d in unix ms, at least 1 ms ahead (T1).
func deadline(now int64, d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return now + ms
}

// KVSet stores value at acc/id if opts.If holds and returns the new version.
func (s *Store) KVSet(ctx context.Context, acc, id string, value []byte, opts KVSetOptions) (uint64, error) {
	if len(value) > s.cfg.MaxValueBytes {
		return 0, ErrTooLarge
	}
	if opts.HasTTL {
		if err := checkDuration("ttl", opts.TTL, s.cfg.MaxDuration); err != nil {
			return 0, err
		}
	}
	var ver uint64
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		live := e.live(t.now)
		if live && e.rec.Type != persist.TypeString {
			return ErrWrongType
		}
		if err := opts.If.check(live, e.rec.Mod); err != nil {
			return err
		}
		rec := persist.Record{Type: persist.TypeString, Value: value}
		if live {
			rec.Create = e.rec.Create
		}
		if opts.HasTTL {
			rec.ExpireAt = deadline(t.now, opts.TTL)
		}
		ver = t.put(k, e, rec).Mod
		return nil
	})
	if err != nil {
		return 0, err
	}
	return ver, nil
}

// KVGet returns the value at acc/id; ErrNotFound when absent or expired.
// A sequence reads as its decimal value.
func (s *Store) KVGet(ctx context.Context, acc, id string) (KV, error) {
	var kv KV
	err := s.viewKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return ErrNotFound
		}
		kv = KV{Value: displayValue(&e.rec), Version: e.rec.Mod, Created: e.rec.Create, ExpireAt: e.rec.ExpireAt, TTLMs: -1, Type: e.rec.Type}
		if e.rec.ExpireAt != 0 {
			kv.TTLMs = e.rec.ExpireAt - t.now
		}
		return nil
	})
	return kv, err
}

// KVDelete deletes acc/id if cond holds. Without a condition an absent key
// is ErrNotFound; with one, an absent key fails the condition
// (VersionError), unless the condition is CondAbsent/version 0. A sequence
// is ErrWrongType: the kv API does not reset sequences. It reports whether
// a key was deleted.
func (s *Store) KVDelete(ctx context.Context, acc, id string, cond Precondition) (deleted bool, err error) {
	err = s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		live := e.live(t.now)
		if live && e.rec.Type != persist.TypeString {
			return ErrWrongType
		}
		if err := cond.check(live, e.rec.Mod); err != nil {
			return err
		}
		if !live {
			if cond.Cond == CondNone {
				return ErrNotFound
			}
			return nil
		}
		t.del(k, e)
		deleted = true
		return nil
	})
	return deleted, err
}
