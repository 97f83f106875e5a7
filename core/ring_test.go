package core

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/concurrencydb/concurrencydb/persist"
)

func newTestRing(t *testing.T, budget int) *ring {
	t.Helper()
	r, err := newRing(budget)
	if err != nil || r == nil {
		t.Fatalf("newRing(%d) = %v, %v", budget, r, err)
	}
	t.Cleanup(r.free)
	return r
}

func TestRingReturnsWhatWasPutForTheKey_G1(t *testing.T) {
	r := newTestRing(t, 1<<20)
	rec := persist.Record{Type: persist.TypeString, Create: 3, Mod: 9, ExpireAt: 12345, Value: []byte("hello")}
	r.put([]byte("a"), &rec, true)
	r.put([]byte("gone"), nil, false)

	got, exists, ok := r.get([]byte("a"))
	if !ok || !exists || got.Type != rec.Type || got.Create != 3 || got.Mod != 9 || got.ExpireAt != 12345 || string(got.Value) != "hello" {
		t.Fatalf("get(a) = %+v exists=%v ok=%v", got, exists, ok)
	}
	if _, exists, ok := r.get([]byte("gone")); !ok || exists {
		t.Fatalf("get(gone) = exists %v ok %v, want a cached absence", exists, ok)
	}
	if _, _, ok := r.get([]byte("never")); ok {
		t.Fatal("get(never) hit")
	}
	if _, _, ok := r.get([]byte("a\x00")); ok {
		t.Fatal("a key that only shares a prefix hit")
	}
	// A record too large to keep replaces nothing: the older one is gone,
	// and the large value was not copied into the ring's scratch.
	big := persist.Record{Type: persist.TypeString, Create: 3, Mod: 10, Value: make([]byte, 1<<20)}
	r.put([]byte("a"), &big, true)
	if _, _, ok := r.get([]byte("a")); ok {
		t.Fatal("a's older record answers after a record too large to keep")
	}
	if cap(r.enc) > r.max {
		t.Fatalf("the scratch buffer grew to %d bytes", cap(r.enc))
	}
}

// checkRing verifies the ring's bookkeeping: every used slot points at an
// entry of its own key (G4), in one of the key's buckets, outside the spare
// segment, and live and segLive add up their sizes.
func checkRing(t *testing.T, r *ring) {
	t.Helper()
	var live uint64
	segLive := make([]uint32, ringSegments)
	seen := map[string]int{}
	for i, tag := range r.tags {
		if tag == 0 {
			continue
		}
		p := r.pos[i]
		seg := p / r.segSize
		if seg == r.spare || (seg == r.cur && p >= seg*r.segSize+r.off) || r.data[p] != entryMark {
			t.Fatalf("slot %d points at %d: spare %d, current %d at %d", i, p, r.spare, r.cur, r.off)
		}
		key, _, _, n := r.at(p)
		b1, b2, ktag := r.hash(key)
		in := func(b uint64) bool { return int(b) <= i && i < int(b)+ringWays }
		if !in(b1) && !in(b2) || ktag != tag&^refBit {
			t.Fatalf("slot %d holds key %q of buckets %d and %d", i, key, b1, b2)
		}
		if j, dup := seen[string(key)]; dup {
			t.Fatalf("key %q has two slots, %d and %d", key, j, i)
		}
		seen[string(key)] = i
		live += uint64(n)
		segLive[seg] += uint32(n)
	}
	if live != r.live {
		t.Fatalf("live = %d, linked entries add up to %d", r.live, live)
	}
	if !slices.Equal(segLive, r.segLive) {
		t.Fatalf("segLive = %v, linked entries add up to %v", r.segLive, segLive)
	}
}

// A ring small enough to wrap many times and to fill its buckets: against
// a model of the latest put per key, every lookup misses or returns exactly
// that record — never an older one, never another key's (G1, G2) — with a
// live set that fits and with one far larger than the ring.
func TestRingNeverReturnsAStaleOrForeignRecord_G1_G2(t *testing.T) {
	for _, keys := range []int{3000, 60000} {
		t.Run(strconv.Itoa(keys), func(t *testing.T) { ringAgainstModel(t, keys) })
	}
	// Tags of two bits: most keys in a bucket share their tag, so only
	// comparing the keys keeps one key's record from answering another.
	t.Run("colliding-tags", func(t *testing.T) {
		defer func(m uint32) { ringTagMask = m }(ringTagMask)
		ringTagMask = 3
		ringAgainstModel(t, 3000)
	})
}

func ringAgainstModel(t *testing.T, keys int) {
	r := newTestRing(t, 1<<20)
	rng := rand.New(rand.NewPCG(1, uint64(keys)))
	type want struct {
		mod    uint64
		exists bool
		known  bool
	}
	model := map[string]want{}
	hits, lookups := 0, 0
	for i := range 200_000 {
		if i%20000 == 0 {
			checkRing(t, r)
		}
		k := []byte(fmt.Sprintf("k%d", rng.IntN(keys)))
		switch op := rng.IntN(10); {
		case op < 5:
			exists := rng.IntN(8) != 0
			rec := persist.Record{Type: persist.TypeString, Create: 1, Mod: uint64(i + 1), Value: bytes.Repeat([]byte{'v'}, rng.IntN(40))}
			if rng.IntN(500) == 0 {
				rec.Value = make([]byte, r.max+1) // too large: must drop the old one
				r.put(k, &rec, true)
				model[string(k)] = want{}
				continue
			}
			r.put(k, &rec, exists)
			model[string(k)] = want{mod: rec.Mod, exists: exists, known: true}
		case op < 6:
			r.drop(k)
			model[string(k)] = want{}
		default:
			lookups++
			got, exists, ok := r.get(k)
			w := model[string(k)]
			if !ok {
				continue
			}
			hits++
			if !w.known || exists != w.exists || (exists && got.Mod != w.mod) {
				t.Fatalf("op %d: get(%s) = mod %d exists %v, want known=%v mod %d exists %v", i, k, got.Mod, exists, w.known, w.mod, w.exists)
			}
		}
	}
	checkRing(t, r)
	if hits < lookups/10 {
		t.Fatalf("%d hits in %d lookups", hits, lookups)
	}
}

// Records rewritten over and over leave garbage in the log; reclaiming
// skips it and keeps every live record, so a live set that fits is never
// lost to the churn of another one.
func TestRingKeepsEveryLiveRecordThatFitsThroughChurn(t *testing.T) {
	r := newTestRing(t, 2<<20)
	rec := func(i, v int) persist.Record {
		return persist.Record{Type: persist.TypeString, Create: 1, Mod: uint64(v), Value: []byte("12345678")}
	}
	const stable, hot = 20_000, 1_000 // ~0.9 MiB of live records in ~1.6 MiB of log
	for i := range stable {
		x := rec(i, i+1)
		r.put(fmt.Appendf(nil, "stable:%08d", i), &x, true)
	}
	for v := range 400_000 { // ~16 MiB of rewrites: the log turns ten times
		x := rec(v%hot, stable+v+1)
		r.put(fmt.Appendf(nil, "hot:%08d", v%hot), &x, true)
	}
	checkRing(t, r)
	for i := range stable {
		got, exists, ok := r.get(fmt.Appendf(nil, "stable:%08d", i))
		if !ok || !exists || got.Mod != uint64(i+1) {
			t.Fatalf("stable record %d: mod %d exists %v ok %v", i, got.Mod, exists, ok)
		}
	}
}

// The ring is worth its memory: the most recent records that fit are found.
func TestRingKeepsTheRecentRecordsThatFit(t *testing.T) {
	r := newTestRing(t, 4<<20)
	const n = 200_000
	for i := range n {
		rec := persist.Record{Type: persist.TypeString, Create: uint64(i + 1), Mod: uint64(i + 1), Value: []byte("12345678")}
		r.put(fmt.Appendf(nil, "\x00acct\x00counter:%012d", i), &rec, true)
	}
	// 4 MiB hold about 75k of these (~45 bytes of log and a 12-byte slot
	// each): the last 50k must nearly all be there.
	miss := 0
	for i := n - 50_000; i < n; i++ {
		got, exists, ok := r.get(fmt.Appendf(nil, "\x00acct\x00counter:%012d", i))
		if !ok {
			miss++
			continue
		}
		if !exists || got.Mod != uint64(i+1) {
			t.Fatalf("key %d: mod %d exists %v", i, got.Mod, exists)
		}
	}
	if miss > 50_000/20 {
		t.Fatalf("%d of the last 50,000 records missed", miss)
	}
	if _, _, ok := r.get(fmt.Appendf(nil, "\x00acct\x00counter:%012d", 0)); ok {
		t.Fatal("the first record survived 200,000 later ones in 4 MiB")
	}
}
