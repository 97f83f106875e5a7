package resp

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestDelExistsTypeFollowRedis(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.MSet(bg, "a", "1", "b", "2").Err())
	if n := c.Exists(bg, "a", "a", "b", "nope").Val(); n != 3 {
		t.Fatalf("EXISTS a a b nope = %d, want 3", n)
	}
	if typ := c.Type(bg, "a").Val(); typ != "string" {
		t.Fatalf("TYPE string = %q", typ)
	}
	if typ := c.Type(bg, "nope").Val(); typ != "none" {
		t.Fatalf("TYPE absent = %q", typ)
	}
	if n := c.Del(bg, "a", "a", "nope").Val(); n != 1 {
		t.Fatalf("DEL a a nope = %d, want 1", n)
	}
	if n := c.Unlink(bg, "b").Val(); n != 1 {
		t.Fatalf("UNLINK = %d", n)
	}
	if n := c.Exists(bg, "a", "b").Val(); n != 0 {
		t.Fatal("keys survive DEL/UNLINK")
	}
}

func TestExpireFamilyFollowsRedis(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.Set(bg, "k", "v", 0).Err())
	if ok := c.Expire(bg, "nope", time.Minute).Val(); ok {
		t.Fatal("EXPIRE on an absent key answered 1")
	}
	if ttl := c.TTL(bg, "nope").Val(); ttl != -2 {
		t.Fatalf("TTL absent = %v", ttl)
	}
	if ttl := c.TTL(bg, "k").Val(); ttl != -1 {
		t.Fatalf("TTL without expiry = %v", ttl)
	}
	if ok := c.ExpireXX(bg, "k", time.Minute).Val(); ok {
		t.Fatal("EXPIRE XX without a TTL set one")
	}
	if ok := c.ExpireNX(bg, "k", time.Minute).Val(); !ok {
		t.Fatal("EXPIRE NX without a TTL did not set one")
	}
	if ok := c.ExpireNX(bg, "k", time.Hour).Val(); ok {
		t.Fatal("EXPIRE NX with a TTL changed it")
	}
	if ok := c.ExpireGT(bg, "k", 30*time.Second).Val(); ok {
		t.Fatal("EXPIRE GT with a smaller TTL changed it")
	}
	if ok := c.ExpireGT(bg, "k", 2*time.Minute).Val(); !ok {
		t.Fatal("EXPIRE GT with a larger TTL did not change it")
	}
	if ok := c.ExpireLT(bg, "k", time.Hour).Val(); ok {
		t.Fatal("EXPIRE LT with a larger TTL changed it")
	}
	if ok := c.ExpireLT(bg, "k", 90*time.Second).Val(); !ok {
		t.Fatal("EXPIRE LT with a smaller TTL did not change it")
	}
	if ttl := c.TTL(bg, "k").Val(); ttl != 90*time.Second {
		t.Fatalf("TTL = %v, want 90s", ttl)
	}
	wantErr(t, c.Do(bg, "EXPIRE", "k", "10", "NX", "XX").Err(), "ERR NX and XX")
	wantErr(t, c.Do(bg, "EXPIRE", "k", "10", "GT", "LT").Err(), "ERR GT and LT options at the same time are not compatible")
	// As Redis: XX goes with GT or LT (both must hold), a repeat is no error.
	if n := c.Do(bg, "EXPIRE", "k", "60", "XX", "LT").Val(); n != int64(1) {
		t.Fatalf("EXPIRE XX LT with a smaller TTL = %v", n)
	}
	if n := c.Do(bg, "EXPIRE", "k", "80", "XX", "xx", "GT", "GT").Val(); n != int64(1) {
		t.Fatalf("EXPIRE XX XX GT GT with a larger TTL = %v", n)
	}
	must(t, c.Set(bg, "nottl", "v", 0).Err())
	if n := c.Do(bg, "EXPIRE", "nottl", "60", "XX", "LT").Val(); n != int64(0) || c.TTL(bg, "nottl").Val() != -1 {
		t.Fatalf("EXPIRE XX LT on a key without TTL = %v", n)
	}
	must(t, c.Expire(bg, "k", 90*time.Second).Err())
	wantErr(t, c.Do(bg, "EXPIRE", "k", "10", "BOGUS").Err(), "ERR Unsupported option BOGUS")
	wantErr(t, c.Do(bg, "EXPIRE", "k", "x").Err(), "ERR value is not an integer")
	wantErr(t, c.Do(bg, "EXPIRE", "k", "9223372036854775807").Err(), "ERR invalid expire time in 'expire' command")
	// As Redis (also checked side by side in redisdiff_test.go, which needs
	// redis-server): an amount that overflows once now is added is invalid
	// even for an absent key; any other amount on an absent key, or with a
	// condition that fails, answers 0 before the max_duration check.
	wantErr(t, c.Do(bg, "PEXPIRE", "absent", "9223372036854775807").Err(), "ERR invalid expire time in 'pexpire' command")
	wantErr(t, c.Do(bg, "SET", "k2", "v", "PX", "9223372036854775807").Err(), "ERR invalid expire time in 'set' command")
	if n := c.Do(bg, "EXPIRE", "absent", "86401").Val(); n != int64(0) {
		t.Fatalf("EXPIRE of an absent key over max_duration = %v, want 0", n)
	}
	if n := c.Do(bg, "EXPIRE", "k", "86401", "NX").Val(); n != int64(0) {
		t.Fatalf("EXPIRE NX over max_duration on a key with a TTL = %v, want 0", n)
	}
	if v, err := c.Do(bg, "SET", "k", "w", "NX", "EX", "86401").Result(); err != redis.Nil {
		t.Fatalf("SET NX over max_duration on an existing key = %v, %v; want nil", v, err)
	}
	// PEXPIRE / PTTL / PEXPIREAT / EXPIRETIME
	if ok := c.PExpire(bg, "k", 1500*time.Millisecond).Val(); !ok {
		t.Fatal("PEXPIRE")
	}
	if pttl := c.PTTL(bg, "k").Val(); pttl <= time.Second || pttl > 1500*time.Millisecond {
		t.Fatalf("PTTL = %v", pttl)
	}
	// TTL rounds to the nearest second, as Redis does: 1.9s → 2, not 1.
	must(t, c.PExpire(bg, "k", 1900*time.Millisecond).Err())
	if ttl, _ := c.Do(bg, "TTL", "k").Int64(); ttl != 2 {
		t.Fatalf("TTL of ~1.9s = %d, want 2 (rounded)", ttl)
	}
	at := time.Now().Add(time.Hour)
	if ok := c.PExpireAt(bg, "k", at).Val(); !ok {
		t.Fatal("PEXPIREAT")
	}
	if got := c.PExpireTime(bg, "k").Val(); got != time.Duration(at.UnixMilli())*time.Millisecond {
		t.Fatalf("PEXPIRETIME = %v, want %v", got, at.UnixMilli())
	}
	if got, _ := c.Do(bg, "EXPIRETIME", "k").Int64(); got != (at.UnixMilli()+500)/1000 {
		t.Fatalf("EXPIRETIME = %d, want %d", got, (at.UnixMilli()+500)/1000)
	}
	if got, _ := c.Do(bg, "EXPIRETIME", "nope").Int64(); got != -2 {
		t.Fatalf("EXPIRETIME absent = %d", got)
	}
	// PERSIST
	if ok := c.Persist(bg, "k").Val(); !ok {
		t.Fatal("PERSIST with a TTL answered 0")
	}
	if ok := c.Persist(bg, "k").Val(); ok {
		t.Fatal("PERSIST without a TTL answered 1")
	}
	// EXPIREAT in the past and a negative EXPIRE delete the key.
	if ok := c.ExpireAt(bg, "k", time.Unix(1, 0)).Val(); !ok {
		t.Fatal("EXPIREAT in the past answered 0")
	}
	if n := c.Exists(bg, "k").Val(); n != 0 {
		t.Fatal("EXPIREAT in the past left the key")
	}
	must(t, c.Set(bg, "k2", "v", 0).Err())
	must(t, c.Do(bg, "EXPIRE", "k2", "-1").Err())
	if n := c.Exists(bg, "k2").Val(); n != 0 {
		t.Fatal("EXPIRE -1 left the key")
	}
	// A short TTL makes the key invisible at its deadline (D4).
	must(t, c.Set(bg, "short", "v", 30*time.Millisecond).Err())
	eventually(t, "short key expired", func() bool { return c.Exists(bg, "short").Val() == 0 })
}

func TestKeysScanRenameRandomKeyAndFlush(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.MSet(bg, "user:1", "a", "user:2", "b", "order:1", "c", "h?llo", "d").Err())
	must(t, c.Set(bg, "{acme}:user:9", "other account", 0).Err())
	keys := c.Keys(bg, "user:*").Val()
	sort.Strings(keys)
	if !slices.Equal(keys, []string{"user:1", "user:2"}) {
		t.Fatalf("KEYS user:* = %v", keys)
	}
	// The empty key: KEYS * lists it, no other pattern matches it (Redis).
	must(t, c.Set(bg, "", "e", 0).Err())
	if keys := c.Keys(bg, "*").Val(); !slices.Contains(keys, "") {
		t.Fatalf("KEYS * lacks the empty key: %q", keys)
	}
	if keys := c.Keys(bg, "**").Val(); slices.Contains(keys, "") {
		t.Fatalf("KEYS ** lists the empty key: %q", keys)
	}
	must(t, c.Del(bg, "").Err())
	if keys := c.Keys(bg, `h\?llo`).Val(); !slices.Equal(keys, []string{"h?llo"}) {
		t.Fatalf(`KEYS h\?llo = %v`, keys)
	}
	if keys := c.Keys(bg, "[ou]*:[12]").Val(); len(keys) != 3 {
		t.Fatalf("KEYS [ou]*:[12] = %v", keys)
	}
	if n := c.DBSize(bg).Val(); n != 4 {
		t.Fatalf("DBSIZE = %d, want 4 (account 0 only)", n)
	}
	// SCAN with MATCH, COUNT and TYPE.
	var all []string
	cur := uint64(0)
	for {
		ks, next, err := c.Scan(bg, cur, "", 1).Result()
		must(t, err)
		all = append(all, ks...)
		if next == 0 {
			break
		}
		cur = next
	}
	sort.Strings(all)
	if !slices.Equal(all, []string{"h?llo", "order:1", "user:1", "user:2"}) {
		t.Fatalf("SCAN = %v", all)
	}
	ks, _, err := c.Scan(bg, 0, "user:*", 100).Result()
	must(t, err)
	if len(ks) != 2 {
		t.Fatalf("SCAN MATCH user:* = %v", ks)
	}
	c.Do(bg, "SEQ.NEXT", "seq")
	ks, _, err = c.ScanType(bg, 0, "", 100, "sequence").Result()
	must(t, err)
	if !slices.Equal(ks, []string{"seq"}) {
		t.Fatalf("SCAN TYPE sequence = %v", ks)
	}
	// TYPE in any case, as Redis.
	if keys, _ := c.Do(bg, "SCAN", "0", "TYPE", "STRING", "COUNT", "1000").Slice(); len(keys) != 2 || len(keys[1].([]any)) == 0 {
		t.Fatalf("SCAN TYPE STRING = %v", keys)
	}
	must(t, c.Do(bg, "SCAN", "12345678").Err()) // as Redis: any number is a cursor
	// "-1" too, read as C's strtoul reads it (2^64-1): past every key.
	if r, err := c.Do(bg, "SCAN", "-1").Slice(); err != nil || len(r) != 2 || r[0] != "0" || len(r[1].([]any)) != 0 {
		t.Fatalf("SCAN -1 = %v, %v; want 0 and no keys", r, err)
	}
	wantErr(t, c.Do(bg, "SCAN", "x").Err(), "ERR invalid cursor")
	wantErr(t, c.Do(bg, "SCAN", "0", "COUNT", "0").Err(), "ERR syntax error")
	// RENAME / RENAMENX
	must(t, c.Expire(bg, "order:1", time.Hour).Err())
	must(t, c.Rename(bg, "order:1", "order:2").Err())
	if v := c.Get(bg, "order:2").Val(); v != "c" {
		t.Fatalf("renamed value = %q", v)
	}
	if ttl := c.TTL(bg, "order:2").Val(); ttl <= 0 {
		t.Fatal("RENAME dropped the TTL")
	}
	wantErr(t, c.Rename(bg, "order:1", "x").Err(), "ERR no such key")
	if ok := c.RenameNX(bg, "user:1", "user:2").Val(); ok {
		t.Fatal("RENAMENX onto an existing key moved it")
	}
	if ok := c.RenameNX(bg, "user:1", "user:3").Val(); !ok {
		t.Fatal("RENAMENX onto an absent key did not move it")
	}
	// RANDOMKEY
	k := c.RandomKey(bg).Val()
	if c.Exists(bg, k).Val() != 1 {
		t.Fatalf("RANDOMKEY answered %q, which does not exist", k)
	}
	// FLUSHDB flushes the current account only; FLUSHALL all.
	must(t, c.FlushDB(bg).Err())
	if n := c.DBSize(bg).Val(); n != 0 {
		t.Fatalf("DBSIZE after FLUSHDB = %d", n)
	}
	if err := c.RandomKey(bg).Err(); err != redis.Nil {
		t.Fatalf("RANDOMKEY on an empty account: %v", err)
	}
	if v := c.Get(bg, "{acme}:user:9").Val(); v != "other account" {
		t.Fatal("FLUSHDB touched another account")
	}
	must(t, c.FlushAll(bg).Err())
	if n := c.Exists(bg, "{acme}:user:9").Val(); n != 0 {
		t.Fatal("FLUSHALL left another account's key")
	}
}

// A SCAN cursor survives concurrent writes: a key that exists for the whole
// scan is returned, whatever is inserted and deleted meanwhile.
func TestScanReturnsEveryKeyThatExistsThroughoutDespiteConcurrentWrites(t *testing.T) {
	e := newEnv(t)
	c := e.client(func(o *redis.Options) { o.PoolSize = 8 })
	var stable []string
	for i := range 300 {
		k := fmt.Sprintf("stable:%04d", i)
		stable = append(stable, k)
		must(t, c.Set(bg, k, "v", 0).Err())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("churn:%05d", i)
			c.Set(bg, k, "v", 0)
			c.Set(bg, fmt.Sprintf("a-churn:%05d", i), "v", 0)
			if i%2 == 0 {
				c.Del(bg, fmt.Sprintf("churn:%05d", i/2))
			}
		}
	}()
	seen := map[string]int{}
	cur := uint64(0)
	for {
		ks, next, err := c.Scan(bg, cur, "stable:*", 7).Result()
		must(t, err)
		for _, k := range ks {
			seen[k]++
		}
		if next == 0 {
			break
		}
		cur = next
	}
	close(stop)
	wg.Wait()
	for _, k := range stable {
		if seen[k] != 1 {
			t.Fatalf("%s returned %d times, want exactly once", k, seen[k])
		}
	}
}

// An id that reads as another account's tagged key ("{b}:x", which HTTP or
// a tagged name can create in account a) is listed by KEYS, SCAN and
// RANDOMKEY with its own account's tag, so that passing the listed name on
// (a SCAN-then-DEL cleanup) reaches the key that was listed, not account
// b's x.
func TestListedKeyNamesLeadBackToTheListedKeys(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.Set(bg, "{a}:{b}:x", "from-a", 0).Err())
	must(t, c.Set(bg, "{b}:x", "from-b", 0).Err())
	must(t, c.Do(bg, "SELECT", "a").Err())
	want := []string{"{a}:{b}:x"}
	if keys := c.Keys(bg, "*").Val(); !slices.Equal(keys, want) {
		t.Fatalf("KEYS * in account a = %q, want %q", keys, want)
	}
	if keys, _ := c.Scan(bg, 0, "", 10).Val(); !slices.Equal(keys, want) {
		t.Fatalf("SCAN in account a = %q, want %q", keys, want)
	}
	if k := c.RandomKey(bg).Val(); k != want[0] {
		t.Fatalf("RANDOMKEY in account a = %q, want %q", k, want[0])
	}
	if v := c.Get(bg, want[0]).Val(); v != "from-a" {
		t.Fatalf("GET of the listed name = %q, want from-a", v)
	}
	if n := c.Del(bg, want[0]).Val(); n != 1 {
		t.Fatalf("DEL of the listed name = %d", n)
	}
	if v := c.Get(bg, "{b}:x").Val(); v != "from-b" {
		t.Fatalf("account b's key after deleting the name listed in a: %q", v)
	}
}

// The empty key is a key, and the first in order: a SCAN that stops on it
// must not read as finished (cursor 0).
func TestScanGoesOnAfterTheEmptyKey(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.MSet(bg, "", "0", "a", "1", "b", "2", "c", "3").Err())
	var all []string
	cur := uint64(0)
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatal("SCAN COUNT 1 did not end")
		}
		ks, next, err := c.Scan(bg, cur, "", 1).Result()
		must(t, err)
		all = append(all, ks...)
		if next == 0 {
			break
		}
		cur = next
	}
	if want := []string{"", "a", "b", "c"}; !slices.Equal(all, want) {
		t.Fatalf("SCAN COUNT 1 = %q, want %q", all, want)
	}
}

// A SCAN cursor whose position the server no longer holds (from before a
// restart, or older than the table's last 16,384 entries) resumes from
// the position's first bytes, which the cursor carries: the iteration
// ends with every key that existed throughout, some of them twice, as a
// Redis cursor may, and never fails. Cursors were counted from 1 again
// after a restart, so an old one could name a new scan's position and skip
// keys silently (found by review), and a lost one answered "invalid
// cursor" where Redis never fails.
func TestAScanCursorThatOutlivesItsPositionSkipsNothing(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	var want []string
	for i := range 300 {
		k := fmt.Sprintf("user:%04d", i) // one common prefix, beyond the cursor's bytes
		want = append(want, k)
		must(t, c.Set(bg, k, "v", 0).Err())
	}
	for _, tc := range []struct {
		name  string
		lose  func()
		exact bool // the position is kept after all
	}{
		{"a restart", func() {
			ct := &e.srv.cursors
			ct.mu.Lock()
			clear(ct.mu.m)
			ct.mu.fresh.Init()
			ct.mu.going.Init()
			ct.mu.Unlock()
		}, false},
		// Scans begun and never continued ("does anything match?") go
		// first: a continued scan keeps its position.
		{"16,384 first calls by others", func() {
			o := e.client()
			for range 16384 / 64 {
				p := o.Pipeline()
				for range 64 {
					p.Scan(bg, 0, "", 1)
				}
				_, err := p.Exec(bg)
				must(t, err)
			}
		}, true},
	} {
		seen := map[string]int{}
		cur := uint64(0)
		for i := 0; ; i++ {
			if i == 20 {
				tc.lose()
			}
			ks, next, err := c.Scan(bg, cur, "", 7).Result()
			must(t, err)
			if i == 10 {
				// The same cursor again (a retry after a lost reply)
				// resumes where it did.
				again, next2, err := c.Scan(bg, cur, "", 7).Result()
				must(t, err)
				if !slices.Equal(again, ks) || next2 == 0 {
					t.Fatalf("%s: a cursor used twice gave %q, then %q", tc.name, ks, again)
				}
			}
			for _, k := range ks {
				seen[k]++
			}
			if next == 0 {
				break
			}
			if next >= 1<<63 {
				t.Fatalf("cursor %d does not fit a signed 64-bit integer", next)
			}
			cur = next
		}
		for _, k := range want {
			if seen[k] == 0 || tc.exact && seen[k] != 1 {
				t.Fatalf("%s: %q returned %d times", tc.name, k, seen[k])
			}
		}
	}
	// Positions the table holds: each key exactly once, also when a fast
	// scan makes 20,000 calls between two of this one's (each of its
	// calls drops its entry from two calls back, so it holds two).
	scanAll := func(c *redis.Client, count int64, between func()) map[string]int {
		seen := map[string]int{}
		for cur, n := uint64(0), int64(0); ; n++ {
			if n > 2*300/count {
				t.Fatalf("a scan of 300 keys, %d at a time, not done after %d calls", count, n)
			}
			ks, next, err := c.Scan(bg, cur, "", count).Result()
			must(t, err)
			for _, k := range ks {
				seen[k]++
			}
			if cur = next; cur == 0 {
				return seen
			}
			between()
		}
	}
	held := func() int {
		e.srv.cursors.mu.Lock()
		defer e.srv.cursors.mu.Unlock()
		return len(e.srv.cursors.mu.m)
	}
	before := held()
	fast := e.client()
	calls := 0
	seen := scanAll(c, 100, func() {
		for target := calls + 20000; calls < target; calls++ {
			scanAll(fast, 1, func() { calls++ })
		}
	})
	if len(seen) != len(want) {
		t.Fatalf("scan beside a fast one: %d keys, want %d", len(seen), len(want))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%q returned %d times by a scan that kept its position", k, n)
		}
	}
	if n := held(); n > before {
		t.Fatalf("%d cursors held after the scans ended, %d before them", n, before)
	}
}

// A cursor used in another account neither finds nor drops this account's
// entries, and a finished scan's entry is among the first evicted: 200
// finished scans in a table of 100 leave a scan in progress its position
// (found by review: both cost a live scan its place).
func TestOtherScansDoNotCostALiveScanItsPosition(t *testing.T) {
	e := newEnv(t)
	e.srv.cursors.init(100)
	c := e.client()
	for i := range 30 {
		must(t, c.Set(bg, fmt.Sprintf("user:%04d", i), "v", 0).Err())
		must(t, c.Set(bg, fmt.Sprintf("{other}:user:%04d", i), "v", 0).Err())
	}
	_, c1, err := c.Scan(bg, 0, "", 5).Result()
	must(t, err)
	_, c2, err := c.Scan(bg, c1, "", 5).Result()
	must(t, err)
	other := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	must(t, other.Do(bg, "SELECT", "other").Err())
	// Another account's use of the cursor, continued once.
	_, b1, err := other.Scan(bg, c2, "", 5).Result()
	must(t, err)
	must(t, other.Scan(bg, b1, "", 5).Err())
	for range 200 { // finished scans, of three pages each
		for cur := uint64(0); ; {
			_, next, err := other.Scan(bg, cur, "", 12).Result()
			must(t, err)
			if cur = next; cur == 0 {
				break
			}
		}
	}
	seen := map[string]int{}
	for cur := c2; cur != 0; {
		ks, next, err := c.Scan(bg, cur, "", 5).Result()
		must(t, err)
		for _, k := range ks {
			seen[k]++
		}
		cur = next
	}
	if len(seen) != 20 {
		t.Fatalf("after its second page, the scan returned %d keys, want the 20 left, once each: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%q returned %d times: the scan lost its position", k, n)
		}
	}
}
