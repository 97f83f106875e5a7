package core

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestSubstrClampsLikeRedisGetRange(t *testing.T) {
	v := []byte("This is a string")
	for _, tc := range []struct {
		start, end int64
		want       string
	}{
		{0, 3, "This"}, {-3, -1, "ing"}, {0, -1, "This is a string"}, {10, 100, "string"},
		{5, 2, ""}, {-1, -5, ""}, {-100, 3, "This"}, {16, 20, ""}, {0, 0, "T"},
	} {
		if got := string(substr(v, tc.start, tc.end)); got != tc.want {
			t.Errorf("substr(%d, %d) = %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
	if got := substr(nil, 0, -1); len(got) != 0 {
		t.Errorf("substr of empty = %q", got)
	}
}

func TestSetConditionsAndTTL_T1(t *testing.T) {
	s := ksStore(t)
	set := func(v string, o SetOptions) SetResult {
		t.Helper()
		r, err := s.Set(ksbg, "a", "k", []byte(v), o)
		ksMust(t, err)
		return r
	}
	if r := set("1", SetOptions{Cond: SetIfPresent}); r.Written {
		t.Fatal("XX on absent wrote")
	}
	if r := set("1", SetOptions{Cond: SetIfAbsent, Expiry: Expiry{Mode: ExpiryIn, Ms: 60000}}); !r.Written || r.OldExists {
		t.Fatalf("NX on absent: %+v", r)
	}
	if r := set("2", SetOptions{Cond: SetIfAbsent}); r.Written || string(r.Old) != "1" {
		t.Fatalf("NX on present: %+v", r)
	}
	if r := set("2", SetOptions{Cond: SetIfEqual, Match: []byte("x")}); r.Written {
		t.Fatal("IFEQ mismatch wrote")
	}
	if r := set("2", SetOptions{Cond: SetIfEqual, Match: []byte("1"), Expiry: Expiry{Mode: ExpiryKeep}}); !r.Written {
		t.Fatal("IFEQ match did not write")
	}
	if _, left, _ := s.KeyExpiry(ksbg, "a", "k"); left <= 0 {
		t.Fatal("KEEPTTL lost the TTL")
	}
	if r := set("3", SetOptions{Cond: SetIfNotEqual, Match: []byte("2")}); r.Written {
		t.Fatal("IFNE with the current value wrote")
	}
	if r := set("3", SetOptions{}); !r.Written {
		t.Fatal("plain set")
	}
	if at, _, _ := s.KeyExpiry(ksbg, "a", "k"); at != NoExpiry {
		t.Fatal("plain SET kept the TTL")
	}
	if _, err := s.Set(ksbg, "a", "k", []byte("v"), SetOptions{Expiry: Expiry{Mode: ExpiryIn, Ms: 0}}); !errors.Is(err, ErrInvalidExpire) {
		t.Fatalf("EX 0: %v", err)
	}
	// The caller's buffer is not kept: neither a small value (copied into
	// its entry) nor a larger one (cloned).
	for _, orig := range []string{"original", strings.Repeat("original", 5)} {
		buf := []byte(orig)
		_, err := s.Set(ksbg, "a", "alias", buf, SetOptions{})
		ksMust(t, err)
		copy(buf, strings.Repeat("X", len(buf)))
		if v, _, _ := s.Get(ksbg, "a", "alias"); string(v) != orig {
			t.Fatalf("stored value aliases the caller's buffer: %q", v)
		}
	}
}

// On a sequence, IncrBy with delta ≥ 0 advances it and everything that
// could move it back or expire it is ErrWrongType (D3).
func TestStringWritesNeverMoveASequenceBack_D3(t *testing.T) {
	s := ksStore(t)
	_, err := s.SeqNext(ksbg, "a", "s", 10)
	ksMust(t, err)
	if v, err := s.IncrBy(ksbg, "a", "s", 5); err != nil || v != 15 {
		t.Fatalf("IncrBy 5 on a sequence = %d, %v", v, err)
	}
	if v, _ := s.SeqGet(ksbg, "a", "s"); v != 15 {
		t.Fatalf("SeqGet after IncrBy = %d", v)
	}
	for name, err := range map[string]error{
		"IncrBy -1": func() error { _, err := s.IncrBy(ksbg, "a", "s", -1); return err }(),
		"Set":       func() error { _, err := s.Set(ksbg, "a", "s", []byte("1"), SetOptions{}); return err }(),
		"MSet": func() error {
			_, err := s.MSet(ksbg, "a", []KeyValue{{"x", nil}, {"s", []byte("1")}}, false)
			return err
		}(),
		"Append":   func() error { _, err := s.Append(ksbg, "a", "s", []byte("0")); return err }(),
		"SetRange": func() error { _, err := s.SetRange(ksbg, "a", "s", 0, []byte("0")); return err }(),
		"GetEx":    func() error { _, _, err := s.GetEx(ksbg, "a", "s", Expiry{Mode: ExpiryIn, Ms: 1000}); return err }(),
		"Float":    func() error { _, err := s.IncrByFloat(ksbg, "a", "s", []byte("1")); return err }(),
		"DelEx":    func() error { _, err := s.DelEx(ksbg, "a", "s", SetIfEqual, []byte("15")); return err }(),
	} {
		if !errors.Is(err, ErrWrongType) {
			t.Errorf("%s on a sequence: %v, want ErrWrongType", name, err)
		}
	}
	if n, _ := s.Exists(ksbg, "a", []string{"x"}); n != 0 {
		t.Fatal("refused MSet wrote its other key")
	}
	if v, _ := s.SeqGet(ksbg, "a", "s"); v != 15 {
		t.Fatalf("sequence moved to %d", v)
	}
	s.Set(ksbg, "a", "max", []byte(strconv.FormatInt(math.MaxInt64, 10)), SetOptions{})
	if _, err := s.IncrBy(ksbg, "a", "max", 1); !errors.Is(err, ErrOverflow) {
		t.Fatalf("IncrBy overflow: %v", err)
	}
	// GetDel and Del reset it.
	if v, ok, err := s.GetDel(ksbg, "a", "s"); err != nil || !ok || string(v) != "15" {
		t.Fatalf("GetDel of a sequence = %q, %v, %v", v, ok, err)
	}
	if v, _ := s.SeqNext(ksbg, "a", "s", 1); v != 1 {
		t.Fatalf("SeqNext after GetDel = %d", v)
	}
}

func TestAppendSetRangeAndFloatsRespectMaxValueBytes(t *testing.T) {
	s := ksStore(t)
	max := s.Config().MaxValueBytes
	ksSet(t, s, "a", "k", "abc")
	if _, err := s.Append(ksbg, "a", "k", make([]byte, max)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append over the limit: %v", err)
	}
	if _, err := s.SetRange(ksbg, "a", "k", int64(max), []byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetRange over the limit: %v", err)
	}
	// An offset whose sum with the length wraps around (it panicked the
	// server under the apply lock), on a present and an absent key.
	for _, id := range []string{"k", "absent"} {
		if _, err := s.SetRange(ksbg, "a", id, math.MaxInt64, []byte("x")); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("SetRange at offset MaxInt64 of %s: %v", id, err)
		}
	}
	if v, _, _ := s.Get(ksbg, "a", "k"); string(v) != "abc" {
		t.Fatalf("refused writes changed the value: %q", v)
	}
	ksSet(t, s, "a", "f", "1.5")
	if v, err := s.IncrByFloat(ksbg, "a", "f", []byte("0.25")); err != nil || string(v) != "1.75" {
		t.Fatalf("IncrByFloat = %q, %v", v, err)
	}
	if _, err := s.IncrByFloat(ksbg, "a", "f", []byte("inf")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("IncrByFloat to infinity: %v", err)
	}
	ksSet(t, s, "a", "nf", "abc")
	if _, err := s.IncrByFloat(ksbg, "a", "nf", []byte("1")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("IncrByFloat on a non-float: %v", err)
	}
}

// INCRBYFLOAT answers what Redis 7.0.15 on x86-64 answered to the same
// commands (redis-cli, recorded on this machine): long double arithmetic
// printed as "%.17Lf" trimmed, not float64's shortest form.
func TestIncrByFloatMatchesRedisDigitForDigit(t *testing.T) {
	s := ksStore(t)
	for i, c := range []struct{ start, incr, want, err string }{
		{"0.1", "0.2", "0.3", ""}, // float64: 0.30000000000000004
		{"10.50", "0.1", "10.6", ""},
		{"", "3.0e3", "3000", ""},
		{"", "1.23456789012345678901234", "1.23456789012345679", ""},
		{"", "1e-30", "0", ""},  // "%.17Lf" rounds it away
		{"", "-1e-20", "0", ""}, // not "-0"
		{"", "0x1p3", "8", ""},
		{"0x10", "1", "17", ""}, // strtold's hex without an exponent
		{"", "-0x1.8", "-1.5", ""},
		{"", "0x", "", "value is not a valid float"},
		{"", "+1.5", "1.5", ""},
		{"", ".5", "0.5", ""},
		{"", "5.", "5", ""},
		{"1e308", "1e308", "199999999999999999993371759311691291321", ""}, // a long double's, prefix
		{"", "1e400", "100000000000000000002818806839", ""},
		{"", "inf", "", "increment would produce NaN or Infinity"},
		{"", "infinity", "", "increment would produce NaN or Infinity"},
		{"", "1e5000", "", "value is not a valid float"},  // strtold's ERANGE
		{"", "1e-5000", "", "value is not a valid float"}, // underflow to 0
		{"", "1_0", "", "value is not a valid float"},
		{"", " 1", "", "value is not a valid float"},
		{"", "1 ", "", "value is not a valid float"},
		{"", "nan", "", "value is not a valid float"},
		{"abc", "1", "", "value is not a valid float"},
	} {
		id := fmt.Sprintf("f%d", i)
		if c.start != "" {
			ksSet(t, s, "a", id, c.start)
		}
		v, err := s.IncrByFloat(ksbg, "a", id, []byte(c.incr))
		switch {
		case c.err != "":
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q + %q: %q, %v; want the error %q", c.start, c.incr, v, err, c.err)
			}
		case err != nil || !strings.HasPrefix(string(v), c.want):
			t.Errorf("%q + %q = %q, %v; want %q", c.start, c.incr, v, err, c.want)
		}
	}
	// 1e4931 twice: Redis printed 4932 digits, starting 2000000000000000000012.
	ksSet(t, s, "a", "huge", "1e4931")
	v, err := s.IncrByFloat(ksbg, "a", "huge", []byte("1e4931"))
	if err != nil || len(v) != 4932 || !strings.HasPrefix(string(v), "2000000000000000000012037898775") {
		t.Fatalf("1e4931 + 1e4931 = %.40q (%d bytes), %v", v, len(v), err)
	}
	if _, err := s.IncrByFloat(ksbg, "a", "huge", []byte("1e4932")); err == nil || !strings.Contains(err.Error(), "NaN or Infinity") {
		t.Fatalf("past a long double's range: %v", err)
	}
	ksSet(t, s, "a", "over", "1.2e4932")
	if _, err := s.IncrByFloat(ksbg, "a", "over", []byte("0")); err == nil || !strings.Contains(err.Error(), "not a valid float") {
		t.Fatalf("a stored value past a long double's range: %v", err)
	}
}
