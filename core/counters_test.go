package core

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"
)

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"-1", -1, true},
		{"41", 41, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"", 0, false},
		{"-", 0, false},
		{"-0", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"abc", 0, false},
		{"123456789012345678901", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseInt([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("ParseInt(%q) = (%d, %v), want (%d, %v)", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestCtrAdd checks CtrAdd's result and the stored value afterwards
// ("": absent). A refused add (overflow, wrong type) changes nothing.
func TestCtrAdd(t *testing.T) {
	tests := []struct {
		name    string
		initial string // stored with KVSet first; "" = absent
		seq     bool   // the key is a sequence instead
		delta   int64
		want    int64
		wantErr error
		after   string
	}{
		{name: "absent counts as 0", delta: 1, want: 1, after: "1"},
		{name: "negative delta", delta: -5, want: -5, after: "-5"},
		{name: "zero delta", initial: "7", delta: 0, want: 7, after: "7"},
		{name: "integer string is a counter", initial: "41", delta: 1, want: 42, after: "42"},
		{name: "up to MaxInt64", initial: strconv.FormatInt(math.MaxInt64-1, 10), delta: 1, want: math.MaxInt64, after: strconv.FormatInt(math.MaxInt64, 10)},
		{name: "overflow up changes nothing", initial: strconv.FormatInt(math.MaxInt64, 10), delta: 1, wantErr: ErrOverflow, after: strconv.FormatInt(math.MaxInt64, 10)},
		{name: "overflow up by a large delta", initial: "1", delta: math.MaxInt64, wantErr: ErrOverflow, after: "1"},
		{name: "down to MinInt64", initial: "0", delta: math.MinInt64, want: math.MinInt64, after: strconv.FormatInt(math.MinInt64, 10)},
		{name: "overflow down changes nothing", initial: strconv.FormatInt(math.MinInt64, 10), delta: -1, wantErr: ErrOverflow, after: strconv.FormatInt(math.MinInt64, 10)},
		{name: "overflow down by MinInt64", initial: "-1", delta: math.MinInt64, wantErr: ErrOverflow, after: "-1"},
		{name: "MaxInt64 plus MinInt64", initial: strconv.FormatInt(math.MaxInt64, 10), delta: math.MinInt64, want: -1, after: "-1"},
		{name: "non-integer is refused", initial: "abc", delta: 1, wantErr: ErrNotInteger, after: "abc"},
		{name: "leading zero is not an integer", initial: "01", delta: 1, wantErr: ErrNotInteger, after: "01"},
		{name: "float is not an integer", initial: "1.5", delta: 1, wantErr: ErrNotInteger, after: "1.5"},
		{name: "sequence is the wrong type", seq: true, delta: 1, wantErr: ErrWrongType, after: "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			s, _ := newStore(t)
			var verBefore uint64
			switch {
			case tt.seq:
				mustSeq(t, s, "c", 3)
			case tt.initial != "":
				mustSet(t, s, "c", tt.initial)
			}
			if kv, err := s.KVGet(ctx, "a", "c"); err == nil {
				verBefore = kv.Version
			}
			got, err := s.CtrAdd(ctx, "a", "c", tt.delta)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("CtrAdd(%d) = (%d, %v), want (%d, %v)", tt.delta, got, err, tt.want, tt.wantErr)
			}
			kv, err := s.KVGet(ctx, "a", "c")
			if tt.after == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("after: (%q, %v), want absent", kv.Value, err)
				}
				return
			}
			if err != nil || string(kv.Value) != tt.after {
				t.Fatalf("after: (%q, %v), want %q", kv.Value, err, tt.after)
			}
			if tt.wantErr != nil && kv.Version != verBefore {
				t.Fatalf("refused CtrAdd changed the version %d → %d", verBefore, kv.Version)
			}
		})
	}
}

func TestCtrGetAndDelete(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	mustSet(t, s, "int", "-12")
	mustSet(t, s, "str", "x")
	mustSeq(t, s, "seq", 2)
	getTests := []struct {
		id      string
		want    int64
		wantErr error
	}{
		{"int", -12, nil},
		{"absent", 0, ErrNotFound},
		{"str", 0, ErrNotInteger},
		{"seq", 0, ErrWrongType},
	}
	for _, tt := range getTests {
		if got, err := s.CtrGet(ctx, "a", tt.id); got != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("CtrGet(%s) = (%d, %v), want (%d, %v)", tt.id, got, err, tt.want, tt.wantErr)
		}
	}
	delTests := []struct {
		id      string
		wantErr error
		gone    bool
	}{
		{"absent", nil, true},
		{"str", ErrNotInteger, false},
		{"seq", ErrWrongType, false},
		{"int", nil, true},
	}
	for _, tt := range delTests {
		if err := s.CtrDelete(ctx, "a", tt.id); !errors.Is(err, tt.wantErr) {
			t.Errorf("CtrDelete(%s) = %v, want %v", tt.id, err, tt.wantErr)
		}
		_, err := s.KVGet(ctx, "a", tt.id)
		if gone := errors.Is(err, ErrNotFound); gone != tt.gone {
			t.Errorf("after CtrDelete(%s): KVGet err %v, want gone=%v", tt.id, err, tt.gone)
		}
	}
}

// TestCounterKeepsTTL_T1: an increment keeps the key's absolute deadline
// (Redis INCRBY); once it passes, the counter is gone and starts over
// without a TTL.
func TestCounterKeepsTTL_T1(t *testing.T) {
	ctx := ctxT(t)
	s, clock := newStore(t)
	if _, err := s.KVSet(ctx, "a", "c", []byte("5"), KVSetOptions{HasTTL: true, TTL: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	deadline := clock.Now().Add(10 * time.Second).UnixMilli()
	clock.Advance(4 * time.Second)
	if v, err := s.CtrAdd(ctx, "a", "c", 2); err != nil || v != 7 {
		t.Fatalf("CtrAdd = (%d, %v), want 7", v, err)
	}
	kv, err := s.KVGet(ctx, "a", "c")
	if err != nil || kv.ExpireAt != deadline {
		t.Fatalf("after CtrAdd: expiry %d (%v), want %d", kv.ExpireAt, err, deadline)
	}
	clock.Advance(6 * time.Second)
	if _, err := s.CtrGet(ctx, "a", "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("CtrGet after the deadline = %v, want ErrNotFound", err)
	}
	if v, err := s.CtrAdd(ctx, "a", "c", 1); err != nil || v != 1 {
		t.Fatalf("CtrAdd on an expired counter = (%d, %v), want 1", v, err)
	}
	if kv, err := s.KVGet(ctx, "a", "c"); err != nil || kv.ExpireAt != 0 {
		t.Fatalf("re-created counter has expiry %d (%v), want none", kv.ExpireAt, err)
	}
}

// ParseInt is Redis's string2ll: no sign but '-', no leading zeros, no -0,
// int64 range; the short-number path and strconv's agree at the edges.
func TestParseIntFollowsRedisString2ll(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "-1": -1, "9223372036854775807": 9223372036854775807, "-9223372036854775808": -9223372036854775808, "999999999999999999": 999999999999999999, "-999999999999999999": -999999999999999999, "123": 123} {
		if n, ok := ParseInt([]byte(s)); !ok || n != want {
			t.Errorf("%s: %d %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-", "-0", "01", "+1", "9223372036854775808", "-9223372036854775809", "1a", "99999999999999999999"} {
		if _, ok := ParseInt([]byte(s)); ok {
			t.Errorf("%q accepted", s)
		}
	}
}
