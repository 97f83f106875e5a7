package persist

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestDataKeyRoundTripAndAccountsApart_P1(t *testing.T) {
	tests := []struct{ acc, id string }{
		{"a", "bc"},
		{"ab", "c"},
		{"0", ""},
		{"acme", "user:1"},
		{strings.Repeat("x", MaxNameLen), "k"},
		{"a", "\x00\xff"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		k := DataKey(tt.acc, tt.id)
		if seen[string(k)] {
			t.Errorf("DataKey(%q, %q) = %x collides with another key", tt.acc, tt.id, k)
		}
		seen[string(k)] = true
		acc, id, ok := SplitDataKey(k)
		if !ok || acc != tt.acc || id != tt.id {
			t.Errorf("SplitDataKey(DataKey(%q, %q)) = (%q, %q, %v)", tt.acc, tt.id, acc, id, ok)
		}
		p := AccountPrefix(tt.acc)
		if !bytes.HasPrefix(k, p) || !bytes.HasPrefix(k, DataPrefix()) {
			t.Errorf("DataKey(%q, %q) = %x lacks its account prefix %x", tt.acc, tt.id, k, p)
		}
		if end := PrefixEnd(p); bytes.Compare(k, end) >= 0 {
			t.Errorf("DataKey(%q, %q) = %x not below PrefixEnd %x", tt.acc, tt.id, k, end)
		}
	}
	// An account's range holds no key of another account.
	if bytes.HasPrefix(DataKey("ab", "c"), AccountPrefix("a")) {
		t.Error("account \"a\"'s prefix covers a key of account \"ab\"")
	}
}

func TestSplitDataKeyRejectsOtherKeys(t *testing.T) {
	for _, k := range [][]byte{nil, {prefixData}, {prefixData, 5, 'a'}, metaFormat, expiryKey(1, DataKey("a", "b"))} {
		if _, _, ok := SplitDataKey(k); ok {
			t.Errorf("SplitDataKey(%x) ok, want not a data key", k)
		}
	}
}

func TestDataKeyPanicsOnLongAccount_P1(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("DataKey with a 256-byte account did not panic")
		}
	}()
	DataKey(strings.Repeat("x", MaxNameLen+1), "k")
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte{1}, []byte{2}},
		{[]byte{1, 2, 3}, []byte{1, 2, 4}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{0xff, 0xff}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := PrefixEnd(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}

// TestExpiryKeysSortByTime: the reaper scans the index in time order, so
// expiry keys must sort by deadline first, whatever the data key.
func TestExpiryKeysSortByTime(t *testing.T) {
	times := []int64{0, 1, 255, 256, 1 << 40, 1893553445000}
	var keys [][]byte
	for i := len(times) - 1; i >= 0; i-- {
		keys = append(keys, expiryKey(times[i], DataKey("zz", "zz")))
		keys = append(keys, expiryKey(times[i], DataKey("a", "")))
	}
	sort.Slice(keys, func(i, j int) bool { return bytes.Compare(keys[i], keys[j]) < 0 })
	for i := 1; i < len(keys); i++ {
		a := int64(beUint64(keys[i-1][1:9]))
		b := int64(beUint64(keys[i][1:9]))
		if a > b {
			t.Fatalf("expiry keys out of time order: %d before %d", a, b)
		}
	}
	if keys[0][0] != prefixExpiry {
		t.Fatalf("expiry key prefix %x, want %x", keys[0][0], prefixExpiry)
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// TestEncodingsGolden_P1 pins the on-disk encoding of keys and records:
// data written by an earlier build must read back the same, so a change
// here is a format change (bump FormatVersion and migrate, P4).
func TestEncodingsGolden_P1(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
	}{
		{"prefix.meta", []byte{prefixMeta}},
		{"prefix.data", []byte{prefixData}},
		{"prefix.expiry", []byte{prefixExpiry}},
		{"meta.format", metaFormat},
		{"meta.revision", metaRevision},
		{"meta.epoch", metaEpoch},
		{"meta.walcheckpoint", metaWALCheckpoint},
		{"walrecord.7.batch", appendRecord(nil, 7, []byte("batch"))},
		{"datakey.acme.user:1", DataKey("acme", "user:1")},
		{"datakey.0.empty", DataKey("0", "")},
		{"expirykey.1893553445000.acme.lock", expiryKey(1893553445000, DataKey("acme", "lock"))},
		{"record.string", AppendRecord(nil, &Record{Type: TypeString, Create: 5, Mod: 300, Value: []byte("hello")})},
		{"record.string.ttl", AppendRecord(nil, &Record{Type: TypeString, Create: 1, Mod: 1, ExpireAt: 1893553445000, Value: []byte("owner-1")})},
		{"record.string.empty", AppendRecord(nil, &Record{Type: TypeString, Create: 7, Mod: 9})},
		{"record.sequence", AppendRecord(nil, &Record{Type: TypeSequence, Create: 2, Mod: 1 << 40, Value: []byte{0, 0, 0, 0, 0, 0, 0x01, 0x00}})},
	}
	var got strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&got, "%s %s\n", c.name, hex.EncodeToString(c.b))
	}
	path := filepath.Join("testdata", "encodings")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v\ngot:\n%s", err, got.String())
	}
	if got.String() != string(want) {
		t.Fatalf("encodings changed (P1, P4); got:\n%s\nwant:\n%s", got.String(), want)
	}
	if FormatVersion != 2 {
		t.Fatalf("FormatVersion %d: regenerate testdata/encodings for the new format", FormatVersion)
	}
}
