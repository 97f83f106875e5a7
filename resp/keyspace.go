package resp

import (
	"container/list"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	"github.com/concurrencydb/concurrencydb/core"
)

// The keyspace and TTL commands (core/keyspace.go).

func cmdDel(x *call) {
	acc, ids, ok := x.keysOf(x.span(1, 1))
	if !ok {
		return
	}
	n, err := x.store().Del(x.ctx(), acc, ids)
	x.intReply(int64(n), err)
}

func cmdExists(x *call) {
	acc, ids, ok := x.keysOf(x.span(1, 1))
	if !ok {
		return
	}
	n, err := x.store().Exists(x.ctx(), acc, ids)
	x.intReply(int64(n), err)
}

func cmdType(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	t, err := x.store().Type(x.ctx(), acc, id)
	if err != nil {
		x.err(err)
		return
	}
	x.status(t)
}

// cmdExpire serves EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
func cmdExpire(x *call) {
	// NB: the options first, then the amount, as Redis reads them.
	cond := core.ExpireAlways
	for i := 3; i < len(x.args); i++ {
		switch {
		case x.is(i, "NX"):
			cond |= core.ExpireIfNoTTL
		case x.is(i, "XX"):
			cond |= core.ExpireIfTTL
		case x.is(i, "GT"):
			cond |= core.ExpireIfGreater
		case x.is(i, "LT"):
			cond |= core.ExpireIfLess
		default:
			x.errorText("ERR Unsupported option " + string(truncate(x.args[i], 128)))
			return
		}
	}
	// As Redis: repeats are no error; XX goes with GT or LT.
	switch {
	case cond&core.ExpireIfNoTTL != 0 && cond != core.ExpireIfNoTTL:
		x.errorText("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	case cond&core.ExpireIfGreater != 0 && cond&core.ExpireIfLess != 0:
		x.errorText("ERR GT and LT options at the same time are not compatible")
		return
	}
	n, ok := x.intArg(2)
	if !ok {
		return
	}
	unit, mode, _ := expiryUnit(nil, x.name) // the table routes only these four here
	// NB: an amount toMs refuses is invalid even for an absent key, which
	// any other amount answers 0, as in Redis.
	ms, ok := toMs(n, unit, mode)
	if !ok {
		x.err(core.ErrInvalidExpire)
		return
	}
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	if mode == core.ExpiryAt && ms <= 0 {
		ms = 1 // a deadline in the past: the key is deleted
	}
	done, err := x.store().Expire(x.ctx(), acc, id, core.Expiry{Mode: mode, Ms: ms}, cond)
	x.intReply(int64(boolInt(done)), err)
}

// cmdTTL serves TTL, PTTL, EXPIRETIME and PEXPIRETIME; seconds are rounded
// to the nearest, as Redis does ((ms+500)/1000).
func cmdTTL(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	at, left, err := x.store().KeyExpiry(x.ctx(), acc, id)
	if err != nil {
		x.err(err)
		return
	}
	v := left
	if x.name == "expiretime" || x.name == "pexpiretime" {
		v = at
	}
	if v >= 0 && (x.name == "ttl" || x.name == "expiretime") {
		v = (v + 500) / 1000
	}
	x.int(v)
}

func cmdPersist(x *call) {
	acc, id, ok := x.key(1)
	if !ok {
		return
	}
	done, err := x.store().Persist(x.ctx(), acc, id)
	x.intReply(int64(boolInt(done)), err)
}

func cmdKeys(x *call) {
	ids, err := x.store().Keys(x.ctx(), x.c.account(), string(x.args[1]))
	if err != nil {
		x.err(err)
		return
	}
	x.keyNames(x.c.account(), ids)
}

// cmdScan iterates the current account. Redis clients expect a numeric
// cursor, so the position (the last key looked at; keys are ordered, so a
// key that exists throughout is returned exactly once) is kept in a
// server-wide table under a number (cursorTable), which also carries the
// position's first bytes: a cursor the table no longer holds (from before
// a restart, or of a scan that 16,384 others went on since) resumes from
// the first key with those bytes, so it returns some keys again, as a Redis
// cursor may, but never skips one and never fails, as a Redis cursor
// never does.
func cmdScan(x *call) {
	cur, ok := parseCursor(x.args[1])
	if !ok {
		x.errorText("ERR invalid cursor")
		return
	}
	acc := x.c.account()
	var opts core.ScanOptions
	for i := 2; i < len(x.args); i += 2 {
		if i+1 >= len(x.args) {
			x.syntaxErr()
			return
		}
		switch {
		case x.is(i, "MATCH"):
			opts.Match = string(x.args[i+1])
		case x.is(i, "COUNT"):
			n, ok := x.intArg(i + 1)
			if !ok {
				return
			}
			if n < 1 {
				x.syntaxErr()
				return
			}
			opts.Count = int(min(n, 100000))
		case x.is(i, "TYPE"):
			opts.Type = strings.ToLower(string(x.args[i+1])) // as Redis: any case
		default:
			x.syntaxErr()
			return
		}
	}
	var prev uint64 // cur, when its entry is this account's
	if cur != 0 {
		opts.Resume = true
		if pos, ok := x.s.cursors.get(cur); ok && pos.acc == acc {
			opts.After, prev = pos.after, cur
		} else {
			// NB: after the prefix, not from it: an id equal to it is not
			// above the position, so it was returned before.
			opts.After = cursorPrefix(cur)
		}
	}
	ids, next, more, err := x.store().Scan(x.ctx(), acc, opts)
	if err != nil {
		x.err(err)
		return
	}
	nextCur := uint64(0)
	if more {
		nextCur = x.s.cursors.put(scanPos{acc: acc, after: next}, prev, cur != 0)
	} else if prev != 0 {
		x.s.cursors.done(prev) // the scan is over
	}
	x.array(2)
	x.bulkString(strconv.FormatUint(nextCur, 10))
	x.keyNames(acc, ids)
}

// keyNames replies ids of acc (KEYS, SCAN; RANDOMKEY's one) as names that
// lead back to them: an id that reads as a tagged key (another account's: "{b}:x") is
// tagged with its own account ("{a}:{b}:x"), so that a client passing a
// listed name to DEL deletes the key it was shown, not another account's.
func (x *call) keyNames(acc string, ids []string) {
	x.array(len(ids))
	for _, id := range ids {
		x.bulkString(nameOf(acc, id))
	}
}

// nameOf is the name that leads back to id of acc (see keyNames).
func nameOf(acc, id string) string {
	if _, _, tagged := splitKey([]byte(id)); tagged {
		return "{" + acc + "}:" + id
	}
	return id
}

func cmdRename(x *call) {
	acc, ids, ok := x.keysOf([]int{1, 2})
	if !ok {
		return
	}
	nx := x.name == "renamenx"
	moved, err := x.store().Rename(x.ctx(), acc, ids[0], ids[1], nx)
	switch {
	case err != nil:
		x.err(err)
	case nx:
		x.int(int64(boolInt(moved)))
	default:
		x.ok()
	}
}

func cmdRandomKey(x *call) {
	acc := x.c.account()
	id, ok, err := x.store().RandomKey(x.ctx(), acc)
	x.value([]byte(nameOf(acc, id)), ok, err)
}

type scanPos struct{ acc, after string }

// cursorTable maps SCAN cursor numbers to positions. A scan holds at
// most two entries: its newest cursor's, and the one it was continued
// from, kept so that a cursor used again (a retry after a lost reply, a
// page read twice) resumes where it did the first time; a call drops the
// entry from two calls back. Beyond size entries, those of scans' first
// calls go first (a "does anything match?" SCAN 0 that is never
// continued leaves one), least recently issued first, then those of
// continued scans. So a slow scan loses its position only when size other
// scans are being continued at once, or, on its first page, to size
// newer first calls; never after many calls of a fast scan, which held an
// entry per call, and could make a slow scan over keys sharing their
// first bytes start over at every call, for ever (found by review).
type cursorTable struct {
	size int
	mu   struct {
		sync.Mutex
		m map[uint64]*list.Element // of *cursorEntry
		// Least recently issued first: entries of scans' first calls,
		// and of continued scans.
		fresh, going list.List
	}
}

type cursorEntry struct {
	id, prev uint64 // prev: the cursor this one continued (0: a first call)
	pos      scanPos
	fresh    bool
}

func (t *cursorTable) init(size int) {
	t.size = size
	t.mu.m = make(map[uint64]*list.Element, size)
	t.mu.fresh.Init()
	t.mu.going.Init()
}

// removeLocked forgets cursor id.
func (t *cursorTable) removeLocked(id uint64) {
	el, ok := t.mu.m[id]
	if !ok {
		return
	}
	if el.Value.(*cursorEntry).fresh {
		t.mu.fresh.Remove(el)
	} else {
		t.mu.going.Remove(el)
	}
	delete(t.mu.m, id)
}

// A cursor is 63 bits (clients that read it as a signed 64-bit number
// work): the first cursorPrefixBytes of the position, then
// cursorSerialBits picked at random among those not in the table. Random,
// not counted: numbers counted from 1 again after a restart named other
// scans' positions, so an old cursor silently skipped keys (found by
// review). An old cursor that happens to name a newer entry for the same
// first bytes still can: at most one chance in 2^31 / size = 131,072.
const (
	cursorPrefixBytes = 4
	cursorSerialBits  = 63 - 8*cursorPrefixBytes
)

// cursorPrefix is the start of the position cursor cur was issued for:
// no id at it is above it (its zero padding is dropped).
func cursorPrefix(cur uint64) string {
	var b [cursorPrefixBytes]byte
	p := (cur &^ (1 << 63)) >> cursorSerialBits
	for i := range b {
		b[cursorPrefixBytes-1-i] = byte(p >> (8 * i))
	}
	return strings.TrimRight(string(b[:]), "\x00")
}

// put issues a cursor for position p, continuing the scan whose cursor
// was prev (0: none in the table for p's account), whose own previous
// entry goes; continued: the scan's first call it is not (a scan resumed
// from a lost cursor is continued, with no prev).
func (t *cursorTable) put(p scanPos, prev uint64, continued bool) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.mu.m[prev]; ok && prev != 0 {
		t.removeLocked(el.Value.(*cursorEntry).prev)
	}
	var prefix uint64
	for i := range cursorPrefixBytes {
		prefix <<= 8
		if i < len(p.after) {
			prefix |= uint64(p.after[i])
		}
	}
	var id uint64
	for {
		id = prefix<<cursorSerialBits | (1 + rand.Uint64N(1<<cursorSerialBits-1))
		if _, taken := t.mu.m[id]; !taken {
			break
		}
	}
	for len(t.mu.m) >= t.size {
		oldest := t.mu.fresh.Front()
		if oldest == nil {
			oldest = t.mu.going.Front()
		}
		t.removeLocked(oldest.Value.(*cursorEntry).id)
	}
	e := &cursorEntry{id: id, prev: prev, pos: p, fresh: !continued}
	if e.fresh {
		t.mu.m[id] = t.mu.fresh.PushBack(e)
	} else {
		t.mu.m[id] = t.mu.going.PushBack(e)
	}
	return id
}

// done ends the scan whose last cursor was id: the entry id continued
// goes; id's stays, so that its last page can be asked for again, but
// among the first evicted (a finished scan's entry must not push out a
// live one's; found by review).
func (t *cursorTable) done(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	el, ok := t.mu.m[id]
	if !ok {
		return
	}
	e := el.Value.(*cursorEntry)
	t.removeLocked(e.prev)
	if !e.fresh {
		t.mu.going.Remove(el)
		e.fresh = true
		t.mu.m[id] = t.mu.fresh.PushBack(e)
	}
}

func (t *cursorTable) get(id uint64) (scanPos, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el, ok := t.mu.m[id]; ok {
		return el.Value.(*cursorEntry).pos, true
	}
	return scanPos{}, false
}

// parseCursor reads a SCAN cursor as Redis does, with C's strtoul: an
// optional sign ("-1" is 2^64-1, which clients send to mean "the end"),
// decimal digits, nothing around them; "" is 0. Out of range fails.
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := b[0] == '-'
	if b[0] == '-' || b[0] == '+' {
		b = b[1:]
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil { // ParseUint takes no second sign
		return 0, false
	}
	if neg {
		n = -n // strtoul's negation, modulo 2^64
	}
	return n, true
}
