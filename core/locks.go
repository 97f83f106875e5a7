package core

import (
	"context"
	"time"

	"github.com/concurrencydb/concurrencydb/persist"
)

// A persistent lock is a string key whose value is the owner id, with an
// absolute expiry: exactly what `SET key owner NX PX ms` writes, so Redis
// lock libraries, the RESP LOCK.* commands and the HTTP lock API act on the
// same locks. A key holding any value but a sequence is a held lock. The key's create
// revision is the fencing token: a new holder always gets a higher one (D3),
// an extension by the holder keeps it.
//
// notALock: a sequence is never a lock: every lock call on one is
// ErrWrongType. NB: reported as a lock held by its value, an acquire by
// "10" of a sequence at 10 was refused as held by "10", and a release of
// the same key was WRONGTYPE (found by review). A plain value, a counter
// included, is a held lock, as SET NX finds it.

// LockInfo describes a held lock.
type LockInfo struct {
	Owner       string
	Token       uint64 // create revision of the key
	RemainingMs int64  // -1 when the key has no expiry
}

func lockInfo(r *persist.Record, now int64) LockInfo {
	info := LockInfo{Owner: string(displayValue(r)), Token: r.Create, RemainingMs: -1}
	if r.ExpireAt != 0 {
		info.RemainingMs = r.ExpireAt - now
	}
	return info
}

// LockAcquire takes the lock acc/id for owner for dur, or extends it when
// owner already holds it. Held by another owner: a *LockedError.
func (s *Store) LockAcquire(ctx context.Context, acc, id, owner string, dur time.Duration) (LockInfo, error) {
	if owner == "" {
		return LockInfo{}, invalidf("owner is required")
	}
	if len(owner) > s.cfg.MaxValueBytes {
		return LockInfo{}, ErrTooLarge
	}
	if err := checkDuration("the lock duration", dur, s.cfg.MaxDuration); err != nil {
		return LockInfo{}, err
	}
	var info LockInfo
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		rec := persist.Record{Type: persist.TypeString, Value: []byte(owner), ExpireAt: deadline(t.now, dur)}
		if e.live(t.now) {
			if e.rec.Type != persist.TypeString {
				return ErrWrongType // see notALock
			}
			if string(e.rec.Value) != owner {
				li := lockInfo(&e.rec, t.now)
				return &LockedError{Owner: li.Owner, RemainingMs: li.RemainingMs}
			}
			rec.Create = e.rec.Create // extension keeps the fencing token
		}
		rec = t.put(k, e, rec)
		info = lockInfo(&rec, t.now)
		return nil
	})
	return info, err
}

// LockGet returns the holder of acc/id; ErrNotFound when free.
func (s *Store) LockGet(ctx context.Context, acc, id string) (LockInfo, error) {
	var info LockInfo
	err := s.viewKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return ErrNotFound
		}
		if e.rec.Type != persist.TypeString {
			return ErrWrongType // see notALock
		}
		info = lockInfo(&e.rec, t.now)
		return nil
	})
	return info, err
}

// LockRelease releases acc/id if owner holds it and reports whether it was
// held. Held by another owner: a *LockedError, nothing changes. An empty
// owner is ErrInvalid (LockForceRelease is the operator's release). A
// sequence is ErrWrongType.
//
// NB: a plain overwrite (SET without NX, KVSet) of a lock key is not an
// acquisition: like etcd's put, it keeps the create revision, so it keeps
// the token. Acquisitions (LockAcquire, SET NX) only succeed on an absent
// key and always get a new, higher token.
func (s *Store) LockRelease(ctx context.Context, acc, id, owner string) (bool, error) {
	if owner == "" {
		return false, invalidf("owner is required")
	}
	return s.lockRelease(ctx, acc, id, owner)
}

// LockForceRelease releases acc/id whoever holds it (an operator action)
// and reports whether it was held. A sequence is ErrWrongType.
func (s *Store) LockForceRelease(ctx context.Context, acc, id string) (bool, error) {
	return s.lockRelease(ctx, acc, id, "")
}

// lockRelease releases for owner, or for anyone when owner is "".
func (s *Store) lockRelease(ctx context.Context, acc, id, owner string) (bool, error) {
	released := false
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return nil
		}
		if e.rec.Type != persist.TypeString {
			// A sequence is never a lock's key; force-release must not
			// reset it (D3).
			return ErrWrongType
		}
		if owner != "" && string(e.rec.Value) != owner {
			li := lockInfo(&e.rec, t.now)
			return &LockedError{Owner: li.Owner, RemainingMs: li.RemainingMs}
		}
		t.del(k, e)
		released = true
		return nil
	})
	return released, err
}
