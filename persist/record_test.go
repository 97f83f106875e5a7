package persist

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	recs := []Record{
		{Type: TypeString, Create: 1, Mod: 1},
		{Type: TypeString, Create: 5, Mod: 300, Value: []byte("hello")},
		{Type: TypeString, Create: math.MaxUint64, Mod: math.MaxUint64, ExpireAt: math.MaxInt64, Value: []byte{0, 1, 2}},
		{Type: TypeString, Create: 3, Mod: 4, ExpireAt: -1},
		{Type: TypeSequence, Create: 2, Mod: 9, Value: []byte{0, 0, 0, 0, 0, 0, 0, 42}},
	}
	for _, r := range recs {
		b := AppendRecord([]byte("prefix"), &r)
		got, err := DecodeRecord(b[len("prefix"):])
		if err != nil {
			t.Fatalf("DecodeRecord(%+v): %v", r, err)
		}
		if got.Type != r.Type || got.Create != r.Create || got.Mod != r.Mod || got.ExpireAt != r.ExpireAt || !bytes.Equal(got.Value, r.Value) {
			t.Fatalf("round trip of %+v = %+v", r, got)
		}
	}
}

func TestDecodeRecordRejectsCorrupt(t *testing.T) {
	good := AppendRecord(nil, &Record{Type: TypeString, Create: 300, Mod: 300, ExpireAt: 1})
	tests := map[string][]byte{
		"empty":         nil,
		"version only":  {recordVersion},
		"wrong version": append([]byte{recordVersion + 1}, good[1:]...),
		"no create":     good[:2],
		"cut create":    good[:3],
		"no mod":        good[:4],
		"no expiry":     good[:6],
	}
	for name, b := range tests {
		if _, err := DecodeRecord(b); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: DecodeRecord(%x) = %v, want errCorrupt", name, b, err)
		}
	}
}
