package core

import (
	"context"
	"math"
	"strconv"

	"github.com/concurrencydb/concurrencydb/persist"
)

// ParseInt parses v as Redis does (string2ll) for values and arguments: an
// optional '-', then decimal digits without leading zeros, within int64. No
// spaces, no '+'. Both front-ends and the counters use this one parser.
func ParseInt(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 20 {
		return 0, false
	}
	digits := v
	if v[0] == '-' {
		digits = v[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && len(v) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0') // cannot overflow in 18 digits
	}
	if len(digits) <= 18 { // the common case, without strconv (the RESP frame guard reads every length here)
		if v[0] == '-' {
			n = -n
		}
		return n, true
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// counterValue reads a live record as a counter.
func counterValue(r *persist.Record) (int64, error) {
	if r.Type != persist.TypeString {
		return 0, ErrWrongType
	}
	n, ok := ParseInt(r.Value)
	if !ok {
		return 0, ErrNotInteger
	}
	return n, nil
}

// CtrAdd adds delta to the counter acc/id (absent counts as 0) and returns
// the new value. Overflow is ErrOverflow and changes nothing. The key keeps
// its TTL, like Redis INCRBY. On a sequence it is ErrWrongType (sequences
// only move forward, through SeqNext); resp's INCR routes sequences itself.
func (s *Store) CtrAdd(ctx context.Context, acc, id string, delta int64) (int64, error) {
	var v int64
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		var err error
		v, err = t.ctrAdd(k, e, delta)
		return err
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// ctrAdd adds delta to the integer string at k (current entry e; absent
// counts as 0), keeping its TTL and create revision, and returns the new
// value. Overflow is ErrOverflow and writes nothing.
func (t *txn) ctrAdd(k []byte, e *entry, delta int64) (int64, error) {
	var v int64
	rec := persist.Record{Type: persist.TypeString}
	if e.live(t.now) {
		var err error
		if v, err = counterValue(&e.rec); err != nil {
			return 0, err
		}
		rec.Create, rec.ExpireAt = e.rec.Create, e.rec.ExpireAt
	}
	if (delta > 0 && v > math.MaxInt64-delta) || (delta < 0 && v < math.MinInt64-delta) {
		return 0, ErrOverflow
	}
	v += delta
	rec.Value = strconv.AppendInt(nil, v, 10)
	t.put(k, e, rec)
	return v, nil
}

// CtrGet returns the counter's value; ErrNotFound when absent.
func (s *Store) CtrGet(ctx context.Context, acc, id string) (int64, error) {
	var v int64
	err := s.viewKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return ErrNotFound
		}
		var err error
		v, err = counterValue(&e.rec)
		return err
	})
	return v, err
}

// CtrDelete deletes a counter; absent is success. A sequence or a
// non-integer value is refused, so the counter API cannot delete them by
// mistake.
func (s *Store) CtrDelete(ctx context.Context, acc, id string) error {
	return s.deleteTyped(ctx, acc, id, func(r *persist.Record) error {
		_, err := counterValue(r)
		return err
	})
}
