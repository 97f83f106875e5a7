package core

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/concurrencydb/concurrencydb/persist"
)

// ring is the record ring: the compact cache that committed records
// evicted from the record cache (Store.mu.mem) spill into, so that a key
// that no longer fits there is read back without a Pebble read.
//
// Why a second cache: an entry of mem is Go objects — the entry, its record,
// its key and value, a map slot — about 136 bytes beyond its key and value,
// all of which the garbage collector scans and GOGC lets grow by half
// again. The ring holds the same record as a few dozen bytes of encoding
// (persist.AppendRecord) in memory outside Go's heap, which the collector
// neither scans nor paces by, so a byte budget holds three or four times as
// many small records (counters, sequences, short values). A Pebble read of
// a key outside every cache costs microseconds on the event loop (a block
// read, a decompression, a checksum); a ring hit costs a hash, two or three
// cache lines and a decode. Measured: a read of a key beyond a 4 MiB cache
// took 1.6 µs from the ring against 3.4 µs from Pebble
// (BenchmarkReadBeyondTheCache); durable INCRs after 500,000 other keys
// went from 0.78× to 0.83× Redis-always and 17.1 to 15.2 µs of server CPU
// each with a 40 MiB ring next to the 16 MiB cache (bench/ab.sh, PREFILL=1
// CHURN=5, one build, two configs).
//
// Absences are records too ("no such key"), so a key read while missing is
// not looked up in Pebble again; a stream of reads of distinct missing keys
// does churn the ring with them (a trade-off, not a bug: they go first
// once the ring is full, as the oldest unread).
//
// Layout: data is ringSegments segments of segSize bytes. Entries are
// appended to the current segment; an entry is 1 | uvarint(len key) |
// uvarint(len record+1, 0 = "no such key") | key | record, never
// straddling segments, and a 0 byte ends a segment's entries. The index is
// buckets of ringWays slots, each a hash tag (0 = empty; its top bit is the
// reference bit, set by a hit) and an entry's offset in data; a key's hash
// picks two buckets, and a slot in one of them points at the key's latest
// entry. A put appends, then points the key's slot (or a free one) at the
// new entry; the entry it pointed at before is garbage.
//
// Cleaning, as in a log-structured file system: when the current segment
// is full, another is cleaned: its live entries are copied to the start of
// the spare segment, which becomes the current one, and the cleaned
// segment becomes the spare. While the live records fill at most
// ringKeepLive of the log, the segment cleaned is the one with the fewest
// live bytes (segLive), and every live entry is kept, so the ring holds all
// of them whatever the churn of rewritten ones. Beyond that it is the
// oldest segment, and only the entries read since they were last kept stay
// (the reference bit: a second chance, as in CLOCK), so the ring evicts
// the oldest unread records first. A turn never keeps more than
// segSize-max bytes, so it always makes room for an entry.
//
// Invariants (the record cache relies on them; see C2 in doc.go):
//   - G1: a lookup returns the latest record put for that exact key, or
//     misses: a slot points at the key's latest entry (a put repoints it,
//     cleaning moves it along), the key bytes are compared, the tag only
//     filters.
//   - G2: a drop makes every later lookup of the key miss until the next
//     put of it.
//   - G3: it holds no Go pointer, and its log and index are mapped once,
//     at newRing, outside the Go heap (freed by free): its size is fixed,
//     and the collector neither scans it nor counts it.
//   - G4: every used slot points at an intact entry of its key: a segment
//     is only written again after cleaning moved or unlinked every entry a
//     slot points at in it.
//
// It is not safe for concurrent use: the Store calls it under the apply
// lock only.
type ring struct {
	data    []byte
	tags    []uint32
	pos     []uint64
	segLive []uint32 // per segment: bytes of the entries slots point at
	segTurn []uint64 // per segment: the turn it became the current one
	turn    uint64   // cleaning turns so far
	cur     uint64   // the segment appended to
	off     uint64   // where in it the next entry goes
	spare   uint64   // the empty segment the next cleaning copies into
	segSize uint64
	nb      uint64 // buckets
	max     int    // largest entry kept
	live    uint64 // bytes of the entries slots point at
	seed    maphash.Seed
	mem     []byte // the mapping all of the above live in
	enc     []byte // record encoding scratch
}

const (
	ringWays = 8 // slots per bucket: probes stay within two cache lines
	// ringSlotBudget sizes the index: one slot (12 bytes) per 48 bytes of
	// budget leaves 36 bytes of log per slot, about one small record each
	// (a counter or a short value under a 20-byte key).
	ringSlotBudget = 48
	// ringSegments is how many segments the log has: a cleaning turn
	// walks one (about 1/256 of the entries: well under a millisecond).
	ringSegments = 256
	// ringKeepLive (in 1/16ths of the log) is how full of live records the
	// log may be before cleaning keeps only the referenced ones: the rest
	// of the log is garbage waiting to be cleaned, and the fuller of live
	// records it is, the more each turn copies for the room it makes.
	ringKeepLive = 13
	refBit       = 1 << 31
	entryMark    = 1
)

// ringTagMask keeps a tag's bits; tests narrow it to force tag collisions,
// which only the key comparison may resolve (G1).
var ringTagMask uint32 = refBit - 1

// newRing maps a ring of about budget bytes (nil when budget is too small
// to be worth it).
func newRing(budget int) (*ring, error) {
	if budget < 1<<20 {
		return nil, nil
	}
	buckets := uint64(budget / (ringWays * ringSlotBudget))
	slots := int(buckets) * ringWays
	idx := slots * (4 + 8)
	segSize := (budget - idx) / ringSegments
	mem, err := unix.Mmap(-1, 0, budget, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("record ring: map %d bytes: %w", budget, err)
	}
	r := &ring{mem: mem, nb: buckets, seed: maphash.MakeSeed(), segSize: uint64(segSize), spare: ringSegments - 1}
	r.segLive = make([]uint32, ringSegments)
	r.segTurn = make([]uint64, ringSegments)
	// pos first: mmap is page-aligned, so the uint64s are aligned.
	r.pos = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), slots)
	r.tags = unsafe.Slice((*uint32)(unsafe.Pointer(&mem[slots*8])), slots)
	r.data = mem[idx : idx+segSize*ringSegments : idx+segSize*ringSegments]
	r.max = min(segSize/8, 64<<10)
	return r, nil
}

// free unmaps the ring; it must not be used afterwards.
func (r *ring) free() {
	if r == nil {
		return
	}
	_ = unix.Munmap(r.mem)
	*r = ring{}
}

// hash returns k's two buckets (the starts of their slots) and its tag.
// Two choices keep buckets from overflowing while the index has room: a
// new key takes a free slot in either.
func (r *ring) hash(k []byte) (b1, b2 uint64, tag uint32) {
	h := maphash.Bytes(r.seed, k)
	tag = uint32(h>>32) & ringTagMask
	if tag == 0 {
		tag = 1
	}
	// Lemire's range reduction, of the low half and of the tag remixed.
	b1 = ((h & 0xffffffff) * r.nb >> 32) * ringWays
	b2 = (uint64(uint32(h>>32)*0x9e3779b1) * r.nb >> 32) * ringWays
	return b1, b2, tag
}

// at decodes the entry at offset p, which must be one; size is its length.
func (r *ring) at(p uint64) (key, rec []byte, exists bool, size int) {
	b := r.data[p:]
	kl, n := binary.Uvarint(b[1:])
	hl := 1 + n
	rl, n := binary.Uvarint(b[hl:])
	hl += n
	key = b[hl : hl+int(kl)]
	size = hl + int(kl)
	if rl == 0 {
		return key, nil, false, size
	}
	size += int(rl) - 1
	return key, b[hl+int(kl) : size], true, size
}

// find returns k's slot, or -1.
func (r *ring) find(k []byte, b1, b2 uint64, tag uint32) int {
	if i := r.findIn(k, b1, tag); i >= 0 || b2 == b1 {
		return i
	}
	return r.findIn(k, b2, tag)
}

func (r *ring) findIn(k []byte, bucket uint64, tag uint32) int {
	for i := bucket; i < bucket+ringWays; i++ {
		if r.tags[i]&^refBit == tag {
			if key, _, _, _ := r.at(r.pos[i]); bytes.Equal(key, k) {
				return int(i)
			}
		}
	}
	return -1
}

// get returns k's record (the value aliases the ring: copy it before the
// next put) and whether k exists; ok is false on a miss.
func (r *ring) get(k []byte) (rec persist.Record, exists, ok bool) {
	if r == nil {
		return rec, false, false
	}
	b1, b2, tag := r.hash(k)
	i := r.find(k, b1, b2, tag)
	if i < 0 {
		return rec, false, false
	}
	r.tags[i] |= refBit
	_, b, exists, _ := r.at(r.pos[i])
	if !exists {
		return rec, false, true
	}
	rec, err := persist.DecodeRecord(b)
	if err != nil {
		// Cannot happen (put encoded it); a miss reads Pebble instead.
		return rec, false, false
	}
	return rec, true, true
}

// put records rec (exists: false for "no such key") as k's latest.
func (r *ring) put(k []byte, rec *persist.Record, exists bool) {
	if r == nil {
		return
	}
	b1, b2, tag := r.hash(k)
	if exists && len(k)+len(rec.Value) > r.max {
		// Too large to keep (checked before encoding: a large value would
		// otherwise be copied for nothing, and stay in enc).
		r.drop(k) // G2: the older record must not answer
		return
	}
	r.enc = r.enc[:0]
	rl := uint64(0)
	if exists {
		r.enc = persist.AppendRecord(r.enc, rec)
		rl = uint64(len(r.enc)) + 1
	}
	n := 1 + uvarintLen(uint64(len(k))) + uvarintLen(rl) + len(k) + len(r.enc)
	if i := r.find(k, b1, b2, tag); i >= 0 {
		if _, old, oldExists, _ := r.at(r.pos[i]); oldExists == exists && bytes.Equal(old, r.enc) {
			return // read back and evicted unchanged: it is still there
		}
		if n > r.max {
			r.unlink(i) // G2: the older record must not answer
			return
		}
	} else if n > r.max {
		return
	}
	r.room(n)
	p := r.cur*r.segSize + r.off
	b := r.data[p:][:0:n]
	b = append(b, entryMark)
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = binary.AppendUvarint(b, rl)
	b = append(b, k...)
	_ = append(b, r.enc...)
	r.off += uint64(n)
	r.live += uint64(n)
	r.segLive[r.cur] += uint32(n)
	// Found again: cleaning may have moved or evicted k's older entry.
	i := r.find(k, b1, b2, tag)
	if i >= 0 {
		r.unlink(i)
	} else {
		i = r.victim(b1, b2)
	}
	r.tags[i], r.pos[i] = tag, p
}

// drop forgets k (G2).
func (r *ring) drop(k []byte) {
	if r == nil {
		return
	}
	b1, b2, tag := r.hash(k)
	if i := r.find(k, b1, b2, tag); i >= 0 {
		r.unlink(i)
	}
}

// unlink empties slot i, whose entry becomes garbage.
func (r *ring) unlink(i int) {
	_, _, _, size := r.at(r.pos[i])
	r.live -= uint64(size)
	r.segLive[r.pos[i]/r.segSize] -= uint32(size)
	r.tags[i] = 0
}

// victim picks a slot for a new key: a free one in the emptier of its
// buckets; else one freed by moving a key to a free slot in its other
// bucket; else one not read since it was put, if any (unlinked).
func (r *ring) victim(b1, b2 uint64) int {
	f1, f2 := r.freeSlot(b1), r.freeSlot(b2)
	switch {
	case f1 >= 0 && (f2 < 0 || r.load(b1) <= r.load(b2)):
		return f1
	case f2 >= 0:
		return f2
	}
	best := int(b1)
	for _, bucket := range [2]uint64{b1, b2} {
		for i := bucket; i < bucket+ringWays; i++ {
			key, _, _, _ := r.at(r.pos[i])
			o1, o2, _ := r.hash(key)
			other := o1
			if other == bucket {
				other = o2
			}
			if j := r.freeSlot(other); j >= 0 {
				r.tags[j], r.pos[j] = r.tags[i], r.pos[i]
				return int(i)
			}
			if r.tags[best]&refBit != 0 && r.tags[i]&refBit == 0 {
				best = int(i)
			}
		}
	}
	r.unlink(best)
	return best
}

// freeSlot returns a free slot of bucket, or -1.
func (r *ring) freeSlot(bucket uint64) int {
	for i := bucket; i < bucket+ringWays; i++ {
		if r.tags[i] == 0 {
			return int(i)
		}
	}
	return -1
}

// load counts bucket's used slots.
func (r *ring) load(bucket uint64) int {
	n := 0
	for i := bucket; i < bucket+ringWays; i++ {
		if r.tags[i] != 0 {
			n++
		}
	}
	return n
}

// room makes room for n bytes in the current segment, cleaning another
// one into the spare when it is full.
func (r *ring) room(n int) {
	for r.off+uint64(n) > r.segSize {
		if r.off < r.segSize {
			r.data[r.cur*r.segSize+r.off] = 0 // ends the segment's entries
		}
		r.clean()
	}
}

// clean copies the live entries of the segment with the fewest into the
// spare, which becomes the current segment (see ring).
func (r *ring) clean() {
	keepAll := r.live <= uint64(len(r.data))/16*ringKeepLive
	victim := r.spare
	for s := range uint64(ringSegments) {
		if s == r.cur || s == r.spare {
			continue
		}
		if victim == r.spare ||
			keepAll && r.segLive[s] < r.segLive[victim] ||
			!keepAll && r.segTurn[s] < r.segTurn[victim] {
			victim = s
		}
	}
	limit := r.segSize - uint64(r.max)
	dst, to := r.spare*r.segSize, uint64(0)
	start := victim * r.segSize
	for p := start; p < start+r.segSize && r.data[p] == entryMark; {
		key, _, _, n := r.at(p)
		i := r.slotOf(key, p)
		switch {
		case i < 0:
			// garbage
		case (keepAll || r.tags[i]&refBit != 0) && to+uint64(n) <= limit:
			copy(r.data[dst+to:], r.data[p:p+uint64(n)])
			r.pos[i] = dst + to
			r.tags[i] &^= refBit
			to += uint64(n)
		default:
			r.unlink(i)
		}
		p += uint64(n)
	}
	r.turn++
	r.segLive[r.spare], r.segTurn[r.spare] = uint32(to), r.turn
	r.segLive[victim] = 0
	r.cur, r.off, r.spare = r.spare, to, victim
}

// slotOf returns the slot that points at position p, the entry of key, or
// -1 when none does (the entry is garbage).
func (r *ring) slotOf(key []byte, p uint64) int {
	b1, b2, tag := r.hash(key)
	for _, bucket := range [2]uint64{b1, b2} {
		for i := bucket; i < bucket+ringWays; i++ {
			if r.pos[i] == p && r.tags[i]&^refBit == tag {
				return int(i)
			}
		}
	}
	return -1
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
