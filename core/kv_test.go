package core

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// TestKVSetPreconditions checks KVSet under every condition, on an absent
// key and on a key holding "old" at version cur. A refused write is a
// *VersionError carrying the current version, and changes nothing.
func TestKVSetPreconditions(t *testing.T) {
	tests := []struct {
		name     string
		present  bool
		cond     Cond
		version  uint64 // for CondVersion
		useCur   bool   // use the current version instead
		wantErr  bool
		wantCurr bool // the VersionError carries the current version (else 0)
	}{
		{name: "none on absent", cond: CondNone},
		{name: "none on present", present: true, cond: CondNone},
		{name: "version 0 creates an absent key", cond: CondVersion, version: 0},
		{name: "version 0 refuses a present key", present: true, cond: CondVersion, version: 0, wantErr: true, wantCurr: true},
		{name: "matching version", present: true, cond: CondVersion, useCur: true},
		{name: "mismatched version", present: true, cond: CondVersion, version: 999, wantErr: true, wantCurr: true},
		{name: "version on absent key", cond: CondVersion, version: 5, wantErr: true},
		{name: "absent on absent", cond: CondAbsent},
		{name: "absent on present", present: true, cond: CondAbsent, wantErr: true, wantCurr: true},
		{name: "present on present", present: true, cond: CondPresent},
		{name: "present on absent", cond: CondPresent, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			s, _ := newStore(t)
			var current uint64
			if tt.present {
				current = mustSet(t, s, "k", "old")
			}
			p := Precondition{Cond: tt.cond, Version: tt.version}
			if tt.useCur {
				p.Version = current
			}
			ver, err := s.KVSet(ctx, "a", "k", []byte("new"), KVSetOptions{If: p})
			kv, gerr := s.KVGet(ctx, "a", "k")
			if !tt.wantErr {
				if err != nil || ver <= current {
					t.Fatalf("KVSet = (%d, %v), want a version above %d", ver, err, current)
				}
				if gerr != nil || string(kv.Value) != "new" || kv.Version != ver {
					t.Fatalf("after: (%q v%d, %v), want new v%d", kv.Value, kv.Version, gerr, ver)
				}
				return
			}
			var ve *VersionError
			if !errors.As(err, &ve) || !errors.Is(err, ErrVersionMismatch) {
				t.Fatalf("KVSet = (%d, %v), want a *VersionError", ver, err)
			}
			want := uint64(0)
			if tt.wantCurr {
				want = current
			}
			if ve.Current != want {
				t.Fatalf("VersionError.Current = %d, want %d", ve.Current, want)
			}
			if tt.present && (gerr != nil || string(kv.Value) != "old" || kv.Version != current) {
				t.Fatalf("refused write changed the key: (%q v%d, %v)", kv.Value, kv.Version, gerr)
			}
			if !tt.present && !errors.Is(gerr, ErrNotFound) {
				t.Fatalf("refused write created the key: (%q, %v)", kv.Value, gerr)
			}
		})
	}
}

// TestKVVersionsAreUniqueAcrossDeleteAndRecreate_D3: a key's version rises
// with every write, its create revision stays until it is deleted, and a
// re-created key gets versions above any it had.
func TestKVVersionsAreUniqueAcrossDeleteAndRecreate_D3(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	v1 := mustSet(t, s, "k", "1")
	v2 := mustSet(t, s, "k", "2")
	kv, _ := s.KVGet(ctx, "a", "k")
	if v2 <= v1 || kv.Created != v1 || kv.Version != v2 {
		t.Fatalf("versions %d then %d, KVGet %+v: want rising versions, created %d", v1, v2, kv, v1)
	}
	if _, err := s.KVDelete(ctx, "a", "k", Precondition{}); err != nil {
		t.Fatal(err)
	}
	v3 := mustSet(t, s, "k", "3")
	kv, _ = s.KVGet(ctx, "a", "k")
	if v3 <= v2 || kv.Created != v3 {
		t.Fatalf("re-created key: version %d created %d, want both above %d", v3, kv.Created, v2)
	}
	// A stale compare-and-set token from before the delete must fail.
	if _, err := s.KVSet(ctx, "a", "k", []byte("x"), KVSetOptions{If: Precondition{Cond: CondVersion, Version: v2}}); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("CAS with a version from before the delete = %v, want ErrVersionMismatch", err)
	}
}

func TestKVDelete(t *testing.T) {
	tests := []struct {
		name    string
		present bool
		seq     bool
		cond    Precondition
		useCur  bool
		wantErr error
		gone    bool
	}{
		{name: "present, no condition", present: true, gone: true},
		{name: "absent, no condition is not found", wantErr: ErrNotFound, gone: true},
		{name: "present, matching version", present: true, cond: Precondition{Cond: CondVersion}, useCur: true, gone: true},
		{name: "present, wrong version", present: true, cond: Precondition{Cond: CondVersion, Version: 999}, wantErr: ErrVersionMismatch},
		{name: "absent, with a version is a mismatch", cond: Precondition{Cond: CondVersion, Version: 3}, wantErr: ErrVersionMismatch, gone: true},
		{name: "absent, version 0 holds", cond: Precondition{Cond: CondVersion, Version: 0}, gone: true},
		{name: "present, version 0 is a mismatch", present: true, cond: Precondition{Cond: CondVersion, Version: 0}, wantErr: ErrVersionMismatch},
		{name: "present, CondPresent", present: true, cond: Precondition{Cond: CondPresent}, gone: true},
		{name: "absent, CondPresent", cond: Precondition{Cond: CondPresent}, wantErr: ErrVersionMismatch, gone: true},
		{name: "sequence is the wrong type", seq: true, wantErr: ErrWrongType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			s, _ := newStore(t)
			var cur uint64
			switch {
			case tt.present:
				cur = mustSet(t, s, "k", "v")
			case tt.seq:
				mustSeq(t, s, "k", 1)
			}
			cond := tt.cond
			if tt.useCur {
				cond.Version = cur
			}
			deleted, err := s.KVDelete(ctx, "a", "k", cond)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("KVDelete = %v, want %v", err, tt.wantErr)
			}
			if want := tt.present && tt.gone; deleted != want {
				t.Fatalf("KVDelete reported deleted=%v, want %v", deleted, want)
			}
			var ve *VersionError
			if errors.As(err, &ve) && ve.Current != cur {
				t.Fatalf("VersionError.Current = %d, want %d", ve.Current, cur)
			}
			_, gerr := s.KVGet(ctx, "a", "k")
			if gone := errors.Is(gerr, ErrNotFound); gone != tt.gone {
				t.Fatalf("after KVDelete: KVGet = %v, want gone=%v", gerr, tt.gone)
			}
		})
	}
}

// TestKVTTL_T1_D4: a TTL is an absolute deadline read from the injected
// clock; the key is invisible from the deadline on; a write without TTL
// clears it; an expired key is absent for every condition.
func TestKVTTL_T1_D4(t *testing.T) {
	ctx := ctxT(t)
	s, clock := newStore(t)
	start := clock.Now().UnixMilli()
	if _, err := s.KVSet(ctx, "a", "k", []byte("v"), KVSetOptions{HasTTL: true, TTL: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	kv, err := s.KVGet(ctx, "a", "k")
	if err != nil || kv.ExpireAt != start+1500 {
		t.Fatalf("ExpireAt = %d (%v), want %d", kv.ExpireAt, err, start+1500)
	}
	clock.Advance(1499 * time.Millisecond)
	if _, err := s.KVGet(ctx, "a", "k"); err != nil {
		t.Fatalf("1 ms before the deadline: %v", err)
	}
	clock.Advance(time.Millisecond)
	if _, err := s.KVGet(ctx, "a", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("at the deadline: %v, want ErrNotFound", err)
	}
	// An expired key is absent: version 0 creates it, a delete is not found.
	if _, err := s.KVDelete(ctx, "a", "k", Precondition{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("KVDelete of an expired key = %v, want ErrNotFound", err)
	}
	if _, err := s.KVSet(ctx, "a", "k", []byte("w"), KVSetOptions{If: Precondition{Cond: CondVersion, Version: 0}, HasTTL: true, TTL: time.Minute}); err != nil {
		t.Fatalf("create-only write over an expired key: %v", err)
	}
	kv, err = s.KVGet(ctx, "a", "k")
	if err != nil || kv.ExpireAt == 0 || kv.Created != kv.Version {
		t.Fatalf("re-created key %+v (%v): want a TTL and a new create revision", kv, err)
	}
	// A write without TTL clears the TTL.
	mustSet(t, s, "k", "x")
	clock.Advance(2 * time.Minute)
	if kv, err := s.KVGet(ctx, "a", "k"); err != nil || kv.ExpireAt != 0 || string(kv.Value) != "x" {
		t.Fatalf("after a write without TTL: (%+v, %v), want x without expiry", kv, err)
	}
}

func TestKVSetRefusals(t *testing.T) {
	tests := []struct {
		name    string
		acc, id string
		value   []byte
		ttl     time.Duration
		zeroTTL bool // a TTL given as 0 (not "no TTL")
		wantErr error
	}{
		{name: "negative ttl", acc: "a", id: "k", ttl: -time.Second, wantErr: ErrInvalid},
		{name: "a given ttl of 0", acc: "a", id: "k", ttl: 0, zeroTTL: true, wantErr: ErrInvalid},
		{name: "ttl above max", acc: "a", id: "k", ttl: 25 * time.Hour, wantErr: ErrInvalid},
		{name: "value too large", acc: "a", id: "k", value: make([]byte, 1<<20+1), wantErr: ErrTooLarge},
		{name: "empty account", acc: "", id: "k", wantErr: ErrInvalid},
		{name: "account of 256 bytes", acc: strings.Repeat("a", 256), id: "k", wantErr: ErrInvalid},
		{name: "key above max", acc: "a", id: strings.Repeat("k", 513), wantErr: ErrInvalid},
		{name: "value of exactly max", acc: "a", id: "k", value: make([]byte, 1<<20)},
		{name: "account of 255 bytes", acc: strings.Repeat("a", 255), id: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			s, _ := newStore(t)
			_, err := s.KVSet(ctx, tt.acc, tt.id, tt.value, KVSetOptions{HasTTL: tt.ttl != 0 || tt.zeroTTL, TTL: tt.ttl})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("KVSet = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			kv, err := s.KVGet(ctx, tt.acc, tt.id)
			if err != nil || !bytes.Equal(kv.Value, tt.value) {
				t.Fatalf("KVGet = (%d bytes, %v)", len(kv.Value), err)
			}
		})
	}
}

// TestKVOnSequenceIsWrongType: the kv API never overwrites or deletes a
// sequence (it would move it backwards, D3) but reads it as a number.
func TestKVOnSequenceIsWrongType_D3(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	mustSeq(t, s, "s", 7)
	if _, err := s.KVSet(ctx, "a", "s", []byte("1"), KVSetOptions{}); !errors.Is(err, ErrWrongType) {
		t.Fatalf("KVSet on a sequence = %v, want ErrWrongType", err)
	}
	if _, err := s.KVDelete(ctx, "a", "s", Precondition{}); !errors.Is(err, ErrWrongType) {
		t.Fatalf("KVDelete on a sequence = %v, want ErrWrongType", err)
	}
	if v, err := s.SeqNext(ctx, "a", "s", 1); err != nil || v != 8 {
		t.Fatalf("sequence after refused kv writes = (%d, %v), want 8", v, err)
	}
}

// TestKVValueIsNotAliased: the store keeps its own copy of a written value,
// so a caller reusing its buffer (as RESP does) cannot change stored data.
func TestKVValueIsNotAliased(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	buf := []byte("abc")
	if _, err := s.KVSet(ctx, "a", "k", buf, KVSetOptions{}); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'X'
	kv, err := s.KVGet(ctx, "a", "k")
	if err != nil || string(kv.Value) != "abc" {
		t.Fatalf("after the caller changed its buffer: (%q, %v), want abc", kv.Value, err)
	}
}

// TestAccountNamesReservingBracesAreInvalid: an account RESP's {acc}:key
// form could never reach is refused by core, for every protocol.
func TestAccountNamesReservingBracesAreInvalid(t *testing.T) {
	s, _ := newStore(t)
	for _, acc := range []string{"a{b", "}", "{x}"} {
		if _, err := s.KVSet(ctxT(t), acc, "k", []byte("v"), KVSetOptions{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("KVSet in account %q: %v, want ErrInvalid", acc, err)
		}
		if _, err := s.MutexLock(ctxT(t), acc, "m", time.Second, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("MutexLock in account %q: %v, want ErrInvalid", acc, err)
		}
	}
}

// ParseSeconds: a finite amount too large for a Duration is the longest
// one, so the caller's maximum names the limit ("at most 24h") instead of
// calling a number no number; what is no number stays an error.
func TestParseSecondsSaturates(t *testing.T) {
	for in, want := range map[string]time.Duration{"1e308": math.MaxInt64, "9223372037": math.MaxInt64, "0.25": 250 * time.Millisecond, "1e-12": 1} {
		if d, err := ParseSeconds("ttl", []byte(in)); err != nil || d != want {
			t.Errorf("ParseSeconds(%s) = (%v, %v), want %v", in, d, err, want)
		}
	}
	for _, in := range []string{"-1", "nan", "inf", "1e309", "x", ""} {
		if _, err := ParseSeconds("ttl", []byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSeconds(%q) = %v, want ErrInvalid", in, err)
		}
	}
	s, _ := newStore(t)
	_, err := s.KVSet(ctxT(t), "a", "k", []byte("v"), KVSetOptions{HasTTL: true, TTL: math.MaxInt64})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("KVSet with a TTL of 1e308 s = %v, want the max_duration error", err)
	}
}
