package persist

import (
	"encoding/binary"
	"fmt"
)

// Key prefixes (P1). Never reuse or renumber a byte: data on disk depends on it.
const (
	prefixMeta   byte = 0x00 // metaKey(name) → meta values (format, revision, epoch)
	prefixData   byte = 0x01 // DataKey(acc, id) → encoded Record
	prefixExpiry byte = 0x02 // expiryKey(at, dataKey) → empty; index for reclaiming expired keys
)

// Meta key names.
var (
	metaFormat   = metaKey("format")
	metaRevision = metaKey("revision")
	metaEpoch    = metaKey("epoch")
	// Log files below this number are in Pebble's tables (wal.go, W3).
	metaWALCheckpoint = metaKey("walcheckpoint")
)

// FormatVersion is the on-disk format this build reads and writes (P4).
// Format 1 logged through Pebble's WAL, which Pebble still replays at
// open; format 2 logs through wal.go. A format-1 directory is upgraded on
// open; a build that reads only format 1 refuses a format-2 directory,
// whose log it would not replay.
const FormatVersion = 2

// MaxNameLen bounds account names and ids: an account's length is stored in
// one byte of every data key.
const MaxNameLen = 255

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// DataKey encodes the key of id in account acc: prefix, len(acc), acc, id.
// The length byte keeps accounts apart ("a"+"bc" ≠ "ab"+"c") and makes every
// account a contiguous key range (AccountPrefix).
func DataKey(acc, id string) []byte {
	if len(acc) > MaxNameLen {
		panic(fmt.Sprintf("persist: P1 violated: account name of %d bytes", len(acc)))
	}
	k := make([]byte, 0, 2+len(acc)+len(id))
	k = append(k, prefixData, byte(len(acc)))
	k = append(k, acc...)
	return append(k, id...)
}

// AccountPrefix is the common prefix of every data key of account acc.
func AccountPrefix(acc string) []byte {
	k := make([]byte, 0, 2+len(acc))
	k = append(k, prefixData, byte(len(acc)))
	return append(k, acc...)
}

// DataPrefix is the common prefix of every data key of every account.
func DataPrefix() []byte { return []byte{prefixData} }

// SplitDataKey is the inverse of DataKey.
func SplitDataKey(k []byte) (acc, id string, ok bool) {
	if len(k) < 2 || k[0] != prefixData || len(k) < 2+int(k[1]) {
		return "", "", false
	}
	n := int(k[1])
	return string(k[2 : 2+n]), string(k[2+n:]), true
}

// expiryKey indexes dataKey under its absolute expiry time (unix ms) so the
// reaper can find expired keys by scanning a prefix in time order.
func expiryKey(at int64, dataKey []byte) []byte {
	k := make([]byte, 9, 9+len(dataKey))
	k[0] = prefixExpiry
	binary.BigEndian.PutUint64(k[1:], uint64(at))
	return append(k, dataKey...)
}

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
