package core

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/concurrencydb/concurrencydb/persist"
)

// MaxSeqCount bounds how many values one SeqNext may reserve.
const MaxSeqCount = 1_000_000

func seqValue(r *persist.Record) uint64 {
	if len(r.Value) != 8 {
		panic("core: D3 violated: sequence record without an 8-byte value")
	}
	return binary.BigEndian.Uint64(r.Value)
}

// displayValue is a record's value as GET shows it: a sequence reads as its
// decimal value.
func displayValue(r *persist.Record) []byte {
	if r.Type == persist.TypeSequence {
		return strconv.AppendUint(nil, seqValue(r), 10)
	}
	return r.Value
}

// SeqNext advances the sequence acc/id by count (1 to MaxSeqCount) and
// returns the new value, the highest of the reserved block. A sequence
// starts at 0, so the first SeqNext returns count. It never goes backwards
// (D3): only SeqReset (a delete) starts it again.
func (s *Store) SeqNext(ctx context.Context, acc, id string, count uint64) (uint64, error) {
	if count < 1 || count > MaxSeqCount {
		return 0, invalidf("count must be 1 to %d", MaxSeqCount)
	}
	return s.seqAdd(ctx, acc, id, count)
}

// seqAdd is SeqNext without the block-size bound (INCRBY on a sequence).
func (s *Store) seqAdd(ctx context.Context, acc, id string, n uint64) (uint64, error) {
	var v uint64
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		var err error
		v, err = t.seqAdd(k, e, n)
		return err
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// seqAdd advances the sequence at k (current entry e; absent counts as 0)
// by n and returns the new value. It never moves a sequence back (D3).
func (t *txn) seqAdd(k []byte, e *entry, n uint64) (uint64, error) {
	var v uint64
	rec := persist.Record{Type: persist.TypeSequence}
	if e.live(t.now) {
		if e.rec.Type != persist.TypeSequence {
			return 0, ErrWrongType
		}
		v = seqValue(&e.rec)
		rec.Create = e.rec.Create
	}
	if v > math.MaxInt64-n {
		return 0, ErrOverflow
	}
	v += n
	rec.Value = binary.BigEndian.AppendUint64(nil, v)
	t.put(k, e, rec)
	return v, nil
}

// SeqGet returns the current value of a sequence; ErrNotFound if it was
// never advanced or was reset.
func (s *Store) SeqGet(ctx context.Context, acc, id string) (uint64, error) {
	var v uint64
	err := s.viewKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return ErrNotFound
		}
		if e.rec.Type != persist.TypeSequence {
			return ErrWrongType
		}
		v = seqValue(&e.rec)
		return nil
	})
	return v, err
}

// SeqReset deletes a sequence, so the next SeqNext returns 1. Resetting an
// absent sequence succeeds; a key of another type is ErrWrongType.
func (s *Store) SeqReset(ctx context.Context, acc, id string) error {
	return s.deleteTyped(ctx, acc, id, func(r *persist.Record) error {
		if r.Type != persist.TypeSequence {
			return ErrWrongType
		}
		return nil
	})
}

// deleteTyped deletes acc/id if check accepts its record; absent is success.
func (s *Store) deleteTyped(ctx context.Context, acc, id string, check func(*persist.Record) error) error {
	return s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return nil
		}
		if err := check(&e.rec); err != nil {
			return err
		}
		t.del(k, e)
		return nil
	})
}
