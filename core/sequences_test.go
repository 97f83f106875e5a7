package core

import (
	"errors"
	"math"
	"testing"
	"time"
)

// TestSeqNext checks SeqNext's result and the sequence's value afterwards
// (0: absent). A failed call changes nothing.
func TestSeqNext(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *testStore)
		count   uint64
		want    uint64
		wantErr error
		after   uint64
	}{
		{name: "first value is 1", count: 1, want: 1, after: 1},
		{name: "first block returns its highest value", count: 10, want: 10, after: 10},
		{name: "count 0 is invalid", count: 0, wantErr: ErrInvalid},
		{name: "count 1e6 is allowed", count: MaxSeqCount, want: MaxSeqCount, after: MaxSeqCount},
		{name: "count 1e6+1 is invalid", count: MaxSeqCount + 1, wantErr: ErrInvalid},
		{
			name:  "continues from the current value",
			setup: func(t *testing.T, s *testStore) { mustSeq(t, s, "s", 5) },
			count: 3, want: 8, after: 8,
		},
		{
			name:  "invalid count leaves the value",
			setup: func(t *testing.T, s *testStore) { mustSeq(t, s, "s", 5) },
			count: 0, wantErr: ErrInvalid, after: 5,
		},
		{
			name: "overflow of int64 is refused and changes nothing (D3)",
			setup: func(t *testing.T, s *testStore) {
				if _, err := s.seqAdd(ctxT(t), "a", "s", math.MaxInt64-1); err != nil {
					t.Fatal(err)
				}
			},
			count: 2, wantErr: ErrOverflow, after: math.MaxInt64 - 1,
		},
		{
			name: "reaching exactly MaxInt64 is allowed",
			setup: func(t *testing.T, s *testStore) {
				if _, err := s.seqAdd(ctxT(t), "a", "s", math.MaxInt64-1); err != nil {
					t.Fatal(err)
				}
			},
			count: 1, want: math.MaxInt64, after: math.MaxInt64,
		},
		{
			name: "starts again at 1 after a reset",
			setup: func(t *testing.T, s *testStore) {
				mustSeq(t, s, "s", 5)
				if err := s.SeqReset(ctxT(t), "a", "s"); err != nil {
					t.Fatal(err)
				}
			},
			count: 1, want: 1, after: 1,
		},
		{
			name:  "a string value is the wrong type",
			setup: func(t *testing.T, s *testStore) { mustSet(t, s, "s", "12") },
			count: 1, wantErr: ErrWrongType,
		},
		{
			name: "an expired string is absent: the sequence starts fresh",
			setup: func(t *testing.T, s *testStore) {
				if _, err := s.KVSet(ctxT(t), "a", "s", []byte("x"), KVSetOptions{HasTTL: true, TTL: time.Second}); err != nil {
					t.Fatal(err)
				}
				s.cfg.Clock.(*fakeClock).Advance(time.Second)
			},
			count: 1, want: 1, after: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			if tt.setup != nil {
				tt.setup(t, s)
			}
			got, err := s.SeqNext(ctxT(t), "a", "s", tt.count)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("SeqNext(%d) = (%d, %v), want (%d, %v)", tt.count, got, err, tt.want, tt.wantErr)
			}
			v, err := s.SeqGet(ctxT(t), "a", "s")
			switch {
			case tt.after == 0 && errors.Is(tt.wantErr, ErrWrongType):
			case tt.after == 0 && !errors.Is(err, ErrNotFound):
				t.Fatalf("SeqGet after = (%d, %v), want ErrNotFound", v, err)
			case tt.after != 0 && (err != nil || v != tt.after):
				t.Fatalf("SeqGet after = (%d, %v), want %d", v, err, tt.after)
			}
		})
	}
}

func TestSeqGetAndReset(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	if _, err := s.SeqGet(ctx, "a", "s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SeqGet of a never used sequence = %v, want ErrNotFound", err)
	}
	if err := s.SeqReset(ctx, "a", "s"); err != nil {
		t.Fatalf("SeqReset of an absent sequence = %v, want nil", err)
	}
	mustSet(t, s, "str", "x")
	if _, err := s.SeqGet(ctx, "a", "str"); !errors.Is(err, ErrWrongType) {
		t.Fatalf("SeqGet of a string = %v, want ErrWrongType", err)
	}
	if err := s.SeqReset(ctx, "a", "str"); !errors.Is(err, ErrWrongType) {
		t.Fatalf("SeqReset of a string = %v, want ErrWrongType", err)
	}
	if kv, err := s.KVGet(ctx, "a", "str"); err != nil || string(kv.Value) != "x" {
		t.Fatalf("string after refused SeqReset = (%q, %v)", kv.Value, err)
	}
	mustSeq(t, s, "s", 3)
	if err := s.SeqReset(ctx, "a", "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SeqGet(ctx, "a", "s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SeqGet after reset = %v, want ErrNotFound", err)
	}
}

// TestSequenceReadsAsDecimalAndKeepsCreateRevision_D3: a sequence reads
// through KVGet as its decimal value; its version rises with every SeqNext
// while its create revision stays.
func TestSequenceReadsAsDecimalAndKeepsCreateRevision_D3(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	mustSeq(t, s, "s", 41)
	kv1, err := s.KVGet(ctx, "a", "s")
	if err != nil || string(kv1.Value) != "41" {
		t.Fatalf("KVGet of sequence = (%q, %v), want 41", kv1.Value, err)
	}
	mustSeq(t, s, "s", 1)
	kv2, err := s.KVGet(ctx, "a", "s")
	if err != nil || string(kv2.Value) != "42" || kv2.Version <= kv1.Version || kv2.Created != kv1.Created {
		t.Fatalf("after SeqNext: %+v, before: %+v", kv2, kv1)
	}
}

// TestSequencesOfAccountsAreApart: the same id in two accounts is two keys.
func TestSequencesOfAccountsAreApart(t *testing.T) {
	ctx := ctxT(t)
	s, _ := newStore(t)
	if _, err := s.SeqNext(ctx, "ab", "c", 5); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SeqNext(ctx, "a", "bc", 1); err != nil || v != 1 {
		t.Fatalf("SeqNext in another account = (%d, %v), want 1", v, err)
	}
	if _, err := s.SeqNext(ctx, "", "x", 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty account = %v, want ErrInvalid", err)
	}
}

func mustSeq(t *testing.T, s *testStore, id string, n uint64) uint64 {
	t.Helper()
	v, err := s.SeqNext(ctxT(t), "a", id, n)
	if err != nil {
		t.Fatalf("SeqNext(%s, %d): %v", id, n, err)
	}
	return v
}

func mustSet(t *testing.T, s *testStore, id, v string) uint64 {
	t.Helper()
	ver, err := s.KVSet(ctxT(t), "a", id, []byte(v), KVSetOptions{})
	if err != nil {
		t.Fatalf("KVSet(%s): %v", id, err)
	}
	return ver
}
