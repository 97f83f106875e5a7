package persist

import (
	"encoding/binary"
	"errors"
)

// Type is the type of the value a key holds.
type Type byte

// Value types. Stored on disk: never renumber.
const (
	TypeString   Type = 1 // bytes; integers are strings that parse as int64
	TypeSequence Type = 2 // uint64, never decreases while the key exists
)

// Record is what a data key stores: the value, its type, its revisions and
// its absolute expiry.
type Record struct {
	Type     Type
	Create   uint64 // revision of the write that created the key (fencing token)
	Mod      uint64 // revision of the last write (the key's version)
	ExpireAt int64  // unix milliseconds; 0 = never
	Value    []byte // for TypeSequence: 8 bytes big-endian
}

const recordVersion byte = 1

// errCorrupt is returned for a record this build cannot decode.
var errCorrupt = errors.New("persist: corrupt record")

// AppendRecord appends the encoding of r to dst:
// version, type, uvarint create, uvarint mod, varint expireAt, value.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, recordVersion, byte(r.Type))
	dst = binary.AppendUvarint(dst, r.Create)
	dst = binary.AppendUvarint(dst, r.Mod)
	dst = binary.AppendVarint(dst, r.ExpireAt)
	return append(dst, r.Value...)
}

// DecodeRecord decodes b. The returned Value aliases b.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if len(b) < 2 || b[0] != recordVersion {
		return r, errCorrupt
	}
	r.Type = Type(b[1])
	b = b[2:]
	var n int
	if r.Create, n = binary.Uvarint(b); n <= 0 {
		return r, errCorrupt
	}
	b = b[n:]
	if r.Mod, n = binary.Uvarint(b); n <= 0 {
		return r, errCorrupt
	}
	b = b[n:]
	if r.ExpireAt, n = binary.Varint(b); n <= 0 {
		return r, errCorrupt
	}
	r.Value = b[n:]
	return r, nil
}
