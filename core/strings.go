package core

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/concurrencydb/concurrencydb/persist"
)

// The Redis string commands (Redis's t_string.c). A sequence reads as its
// decimal value wherever a string is read, but everything that could move
// it backwards or make it expire is ErrWrongType (D3): only IncrBy with a
// non-negative delta advances it, and only a delete resets it.

// SetCond is the condition of a Set or DelEx.
type SetCond uint8

// Set conditions.
const (
	SetAlways     SetCond = iota
	SetIfAbsent           // NX
	SetIfPresent          // XX
	SetIfEqual            // IFEQ: the key holds exactly Match
	SetIfNotEqual         // IFNE: the key is absent or holds something else
)

// SetOptions qualify Set (Redis SET's options).
type SetOptions struct {
	Cond   SetCond
	Match  []byte // for SetIfEqual and SetIfNotEqual
	Expiry Expiry // ExpiryClear unless EX/PX/EXAT/PXAT/KEEPTTL
}

// SetResult is what Set did and what it replaced.
type SetResult struct {
	Written   bool   // the condition held and the value was stored
	Old       []byte // the value before (display form), when OldExists
	OldExists bool
	Version   uint64 // the new version, when Written
}

func (s *Store) checkValue(v []byte) error {
	if len(v) > s.cfg.MaxValueBytes {
		return ErrTooLarge
	}
	return nil
}

// Set stores value at acc/id if opts.Cond holds. A sequence is never
// overwritten (D3): ErrWrongType. An existing string keeps its create
// revision (its lock fencing token), as with KVSet.
func (s *Store) Set(ctx context.Context, acc, id string, value []byte, opts SetOptions) (SetResult, error) {
	if err := s.checkValue(value); err != nil {
		return SetResult{}, err
	}
	// NB: no copy here: txn.put copies every value it stores, once.
	if value == nil {
		value = []byte{}
	}
	var res SetResult
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		live := e.live(t.now)
		if live {
			if e.rec.Type == persist.TypeSequence && opts.Cond != SetIfAbsent {
				return ErrWrongType // only SEQ.NEXT/INCR move it (D3)
			}
			// NB: NX on a sequence is not written, as Redis answers NX on
			// a key of any type.
			res.Old, res.OldExists = displayValue(&e.rec), true
		}
		var ok bool
		switch opts.Cond {
		case SetAlways:
			ok = true
		case SetIfAbsent:
			ok = !live
		case SetIfPresent:
			ok = live
		case SetIfEqual:
			ok = live && bytes.Equal(e.rec.Value, opts.Match)
		case SetIfNotEqual:
			ok = !live || !bytes.Equal(e.rec.Value, opts.Match)
		}
		old := int64(0)
		if live {
			old = e.rec.ExpireAt
		}
		at, err := opts.Expiry.resolve(t.now, old, s.cfg.MaxDuration)
		// NB: as Redis, a SET whose condition fails answers nil before
		// its expiry is held against max_duration; a malformed one
		// (ErrInvalidExpire) is an error either way.
		if err != nil && (ok || errors.Is(err, ErrInvalidExpire)) {
			return err
		}
		if !ok {
			return nil
		}
		rec := persist.Record{Type: persist.TypeString, Value: value, ExpireAt: at}
		if live {
			rec.Create = e.rec.Create
		}
		res.Written = true
		res.Version = t.putOrExpire(k, e, rec).Mod
		return nil
	})
	return res, err
}

// KeyValue is one pair of MSet.
type KeyValue struct {
	ID    string
	Value []byte
}

// MSet stores every pair in acc at once, clearing their TTLs; with nx only
// if none of the keys exists (it reports whether it wrote). A sequence
// among them is ErrWrongType and nothing is written.
func (s *Store) MSet(ctx context.Context, acc string, pairs []KeyValue, nx bool) (bool, error) {
	ks := make([][]byte, len(pairs))
	vals := make([][]byte, len(pairs))
	for i, p := range pairs {
		k, err := s.key(acc, p.ID)
		if err != nil {
			return false, err
		}
		if err := s.checkValue(p.Value); err != nil {
			return false, err
		}
		ks[i] = k
		vals[i] = p.Value // txn.put copies what it keeps
	}
	written := false
	err := s.runKeys(ctx, true, ks, func(t *txn) error {
		for _, k := range ks {
			e, err := t.get(k)
			if err != nil {
				return err
			}
			if !e.live(t.now) {
				continue
			}
			if nx {
				return nil // whatever the key holds, as Redis's MSETNX
			}
			if e.rec.Type == persist.TypeSequence {
				return ErrWrongType
			}
		}
		for i, k := range ks {
			e, err := t.get(k)
			if err != nil {
				return err
			}
			rec := persist.Record{Type: persist.TypeString, Value: vals[i]}
			if e.live(t.now) {
				rec.Create = e.rec.Create
			}
			t.put(k, e, rec)
		}
		written = true
		return nil
	})
	return written, err
}

// MGet returns the values of ids in acc, nil for an absent key.
func (s *Store) MGet(ctx context.Context, acc string, ids []string) ([][]byte, error) {
	ks, err := s.keys(acc, ids)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ks))
	err = s.runKeys(ctx, false, ks, func(t *txn) error {
		for i, k := range ks {
			e, err := t.get(k)
			if err != nil {
				return err
			}
			if e.live(t.now) {
				out[i] = displayValue(&e.rec)
			}
		}
		return nil
	})
	return out, err
}

// Get returns the value at acc/id and whether it exists.
func (s *Store) Get(ctx context.Context, acc, id string) ([]byte, bool, error) {
	vs, err := s.MGet(ctx, acc, []string{id})
	if err != nil {
		return nil, false, err
	}
	return vs[0], vs[0] != nil, nil
}

// GetDel returns the value at acc/id and deletes the key (a sequence is
// reset, as by DEL).
func (s *Store) GetDel(ctx context.Context, acc, id string) ([]byte, bool, error) {
	var v []byte
	found := false
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return nil
		}
		v, found = displayValue(&e.rec), true
		t.del(k, e)
		return nil
	})
	return v, found, err
}

// GetEx returns the value at acc/id and changes its TTL to x (ExpiryKeep:
// no change; ExpiryClear: PERSIST). Giving a sequence a TTL is
// ErrWrongType (D3).
func (s *Store) GetEx(ctx context.Context, acc, id string, x Expiry) ([]byte, bool, error) {
	var v []byte
	found := false
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return nil
		}
		at, err := x.resolve(t.now, e.rec.ExpireAt, s.cfg.MaxDuration)
		if err != nil {
			return err
		}
		if at != e.rec.ExpireAt && e.rec.Type == persist.TypeSequence {
			return ErrWrongType
		}
		v, found = displayValue(&e.rec), true
		if at != e.rec.ExpireAt {
			rec := e.rec
			rec.ExpireAt = at
			t.putOrExpire(k, e, rec)
		} else if (x.Mode == ExpiryIn || x.Mode == ExpiryAt) && s.mu.watch != nil {
			// Nothing to write, but Redis counts setting a deadline as a
			// change of the key (its WATCHers' EXEC fails, A2).
			s.touchLocked(k)
		}
		return nil
	})
	return v, found, err
}

// stringWrite applies fn to the current string value of acc/id ("" when
// absent) and stores the result, keeping the key's TTL and create
// revision. fn returns write false to leave the key as it is. A sequence is
// ErrWrongType.
func (s *Store) stringWrite(ctx context.Context, acc, id string, fn func(old []byte, live bool) (v []byte, write bool, err error)) error {
	return s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		live := e.live(t.now)
		var old []byte
		if live {
			if e.rec.Type != persist.TypeString {
				return ErrWrongType
			}
			old = e.rec.Value
		}
		v, write, err := fn(old, live)
		if err != nil || !write {
			return err
		}
		if err := s.checkValue(v); err != nil {
			return err
		}
		rec := persist.Record{Type: persist.TypeString, Value: v}
		if live {
			rec.Create, rec.ExpireAt = e.rec.Create, e.rec.ExpireAt
		}
		t.put(k, e, rec)
		return nil
	})
}

// Append appends v to the string at acc/id and returns the new length.
func (s *Store) Append(ctx context.Context, acc, id string, v []byte) (int, error) {
	n := 0
	err := s.stringWrite(ctx, acc, id, func(old []byte, _ bool) ([]byte, bool, error) {
		if len(old)+len(v) > s.cfg.MaxValueBytes {
			return nil, false, ErrTooLarge
		}
		nv := make([]byte, 0, len(old)+len(v))
		nv = append(append(nv, old...), v...)
		n = len(nv)
		return nv, true, nil
	})
	return n, err
}

// SetRange overwrites the string at acc/id from offset with v, padding
// with zero bytes, and returns the new length. An empty v changes nothing
// (and does not create the key).
func (s *Store) SetRange(ctx context.Context, acc, id string, offset int64, v []byte) (int, error) {
	if offset < 0 {
		return 0, invalidf("offset is out of range")
	}
	n := 0
	err := s.stringWrite(ctx, acc, id, func(old []byte, live bool) ([]byte, bool, error) {
		if len(v) == 0 {
			n = len(old)
			return nil, false, nil
		}
		// NB: not offset+len(v) > max: a huge offset wraps that sum
		// negative, and the copy below then panics under the apply lock.
		if offset > int64(s.cfg.MaxValueBytes)-int64(len(v)) {
			return nil, false, ErrTooLarge
		}
		size := max(len(old), int(offset)+len(v))
		nv := make([]byte, size)
		copy(nv, old)
		copy(nv[offset:], v)
		n = len(nv)
		return nv, true, nil
	})
	return n, err
}

// StrLen returns the length of the value at acc/id (0 when absent).
func (s *Store) StrLen(ctx context.Context, acc, id string) (int, error) {
	v, _, err := s.Get(ctx, acc, id)
	return len(v), err
}

// GetRange returns the substring [start, end] of the value at acc/id;
// negative offsets count from the end, as in Redis.
func (s *Store) GetRange(ctx context.Context, acc, id string, start, end int64) ([]byte, error) {
	v, _, err := s.Get(ctx, acc, id)
	if err != nil {
		return nil, err
	}
	return substr(v, start, end), nil
}

// substr is Redis GETRANGE's clamping of [start, end] to v.
func substr(v []byte, start, end int64) []byte {
	n := int64(len(v))
	if start < 0 && end < 0 && start > end {
		return []byte{}
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, n-1)
	if n == 0 || start > end {
		return []byte{}
	}
	return v[start : end+1]
}

// IncrBy adds delta to the integer at acc/id (absent counts as 0), keeping
// its TTL, and returns the new value: Redis INCRBY. On a sequence a
// non-negative delta advances it (it is SeqNext by delta); a negative one
// is ErrWrongType (D3). Overflow is ErrOverflow and changes nothing.
func (s *Store) IncrBy(ctx context.Context, acc, id string, delta int64) (int64, error) {
	return s.incrBy(ctx, acc, id, delta, false)
}

// DecrBy is IncrBy of -delta (Redis DECRBY), except that a sequence is
// ErrWrongType whatever delta is: a decrement never moves one, not even
// forward by a negative amount (DECRBY s -5), so DECR and DECRBY mean the
// same thing on every key.
func (s *Store) DecrBy(ctx context.Context, acc, id string, delta int64) (int64, error) {
	if delta == math.MinInt64 {
		return 0, ErrOverflow
	}
	return s.incrBy(ctx, acc, id, -delta, true)
}

func (s *Store) incrBy(ctx context.Context, acc, id string, delta int64, decr bool) (int64, error) {
	var v int64
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if e.live(t.now) && e.rec.Type == persist.TypeSequence {
			// NB: 0 too: it would answer a value already handed out, and a
			// sequence never answers one twice (found by review).
			if delta <= 0 || decr {
				return ErrWrongType
			}
			n, err := t.seqAdd(k, e, uint64(delta))
			v = int64(n)
			return err
		}
		var err error
		v, err = t.ctrAdd(k, e, delta)
		return err
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// ParseFloat parses a decimal float (durations): no spaces, no NaN, and,
// unlike Go's syntax, no underscores or hex.
func ParseFloat(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 5000 || b[0] == ' ' || b[len(b)-1] == ' ' || bytes.ContainsAny(b, "_xX") {
		return 0, false // NB: Go's syntax takes 1_0 and 0x1p3; a duration is decimal
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// INCRBYFLOAT computes as Redis does on x86-64, digit for digit: in C's
// long double, the x87 80-bit format (a 64-bit mantissa, exponents to
// ±16383), parsed with strtold and printed with "%.17Lf", trailing zeros
// trimmed. So 0.1 + 0.2 is "0.3", as there (float64 would make it
// 0.30000000000000004), 1e308 + 1e308 is a number, and 1e-30 is "0".
// big.Float at 64 bits, rounding to nearest even, is that arithmetic; the
// exponent range is checked by hand.
const (
	longDoublePrec   = 64
	longDoubleMaxExp = 16384  // |x| >= 2^16384 overflows (to ±Inf)
	longDoubleMinExp = -16444 // |x| < 2^-16445 underflows to 0
)

var errNotFloat = invalidf("value is not a valid float")

// parseLongDouble parses b as Redis's string2ld does: strtold's grammar
// (Go's float syntax: decimal, hex with a p exponent, inf), no spaces, not
// NaN, not out of range (a finite number too large or small for a long
// double is invalid; "inf" itself is valid and reported as inf).
func parseLongDouble(b []byte) (v *big.Float, inf bool, err error) {
	if len(b) == 0 || len(b) > 5000 || b[0] == ' ' || b[len(b)-1] == ' ' || bytes.IndexByte(b, '_') >= 0 {
		return nil, false, errNotFloat // NB: Go's syntax allows 1_000
	}
	s := string(b)
	if h := strings.TrimLeft(s, "+-"); len(h) > 2 && (h[:2] == "0x" || h[:2] == "0X") && !strings.ContainsAny(h, "pP") {
		s += "p0" // strtold takes 0x10 without a binary exponent; Go does not
	}
	f, perr := strconv.ParseFloat(s, 64)
	if perr != nil && !errors.Is(perr, strconv.ErrRange) || math.IsNaN(f) {
		return nil, false, errNotFloat // the syntax, checked by Go's parser
	}
	if perr == nil && math.IsInf(f, 0) {
		return nil, true, nil // "inf", "infinity" as such
	}
	v, ok := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).SetString(s)
	if !ok || v.IsInf() {
		return nil, false, errNotFloat
	}
	if exp := v.MantExp(nil); v.Sign() != 0 && (exp > longDoubleMaxExp || exp < longDoubleMinExp) {
		return nil, false, errNotFloat // strtold's ERANGE
	}
	return v, false, nil
}

// formatLongDouble prints v as Redis's "%.17Lf" with trailing zeros
// trimmed ("-0" is "0").
func formatLongDouble(v *big.Float) []byte {
	b := v.Append(nil, 'f', 17)
	b = bytes.TrimRight(b, "0")
	b = bytes.TrimSuffix(b, []byte("."))
	if string(b) == "-0" {
		b = b[1:]
	}
	return b
}

// IncrByFloat adds delta (a float as Redis reads one, parseLongDouble) to
// the number at acc/id, keeping its TTL, and returns the new value as
// stored. A sequence is ErrWrongType (it holds integers only).
func (s *Store) IncrByFloat(ctx context.Context, acc, id string, delta []byte) ([]byte, error) {
	var out []byte
	err := s.stringWrite(ctx, acc, id, func(old []byte, live bool) ([]byte, bool, error) {
		// NB: in Redis's order: the key's type, its value, the increment.
		cur, curInf := new(big.Float), false
		if live {
			var err error
			if cur, curInf, err = parseLongDouble(old); err != nil {
				return nil, false, err
			}
		}
		d, dInf, err := parseLongDouble(delta)
		if err != nil {
			return nil, false, err
		}
		if dInf || curInf {
			return nil, false, invalidf("increment would produce NaN or Infinity")
		}
		r := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).Add(cur, d)
		if r.MantExp(nil) > longDoubleMaxExp {
			return nil, false, invalidf("increment would produce NaN or Infinity")
		}
		out = formatLongDouble(r)
		return out, true, nil
	})
	return out, err
}

// DelEx deletes acc/id if cond (SetAlways, SetIfEqual or SetIfNotEqual
// against match) holds and reports whether it did: Redis 8.4's DELEX, so an
// owner releases its lock without Lua. A condition on a sequence is
// ErrWrongType.
func (s *Store) DelEx(ctx context.Context, acc, id string, cond SetCond, match []byte) (bool, error) {
	deleted := false
	err := s.updateKey(ctx, acc, id, func(t *txn, k []byte, e *entry) error {
		if !e.live(t.now) {
			return nil
		}
		switch cond {
		case SetAlways:
		case SetIfEqual, SetIfNotEqual:
			if e.rec.Type != persist.TypeString {
				return ErrWrongType
			}
			if bytes.Equal(e.rec.Value, match) != (cond == SetIfEqual) {
				return nil
			}
		default:
			return invalidf("unsupported DELEX condition")
		}
		t.del(k, e)
		deleted = true
		return nil
	})
	return deleted, err
}
