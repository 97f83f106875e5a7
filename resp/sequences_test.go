package resp

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestSeqCommands(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if err := c.Do(bg, "SEQ.GET", "s").Err(); err != redis.Nil {
		t.Fatalf("SEQ.GET absent: %v, want nil", err)
	}
	if n, _ := c.Do(bg, "SEQ.NEXT", "s").Int64(); n != 1 {
		t.Fatalf("first SEQ.NEXT = %d", n)
	}
	if n, _ := c.Do(bg, "SEQ.NEXT", "s", "COUNT", "10").Int64(); n != 11 {
		t.Fatalf("SEQ.NEXT COUNT 10 = %d, want the highest of the block (11)", n)
	}
	if n, _ := c.Do(bg, "SEQ.GET", "s").Int64(); n != 11 {
		t.Fatalf("SEQ.GET = %d", n)
	}
	if v, _ := c.Do(bg, "SEQ.RESET", "s").Text(); v != "OK" {
		t.Fatalf("SEQ.RESET = %q", v)
	}
	if n, _ := c.Do(bg, "SEQ.NEXT", "s").Int64(); n != 1 {
		t.Fatalf("SEQ.NEXT after reset = %d", n)
	}
	wantErr(t, c.Do(bg, "SEQ.NEXT", "s", "COUNT", "0").Err(), "ERR count must be")
	wantErr(t, c.Do(bg, "SEQ.NEXT", "s", "COUNT", "-1").Err(), "ERR value is not an integer")
	wantErr(t, c.Do(bg, "SEQ.NEXT", "s", "BOGUS", "1").Err(), "ERR syntax error")
	must(t, c.Set(bg, "str", "x", 0).Err())
	wantErr(t, c.Do(bg, "SEQ.NEXT", "str").Err(), "WRONGTYPE")
}

// A sequence never goes backwards (D3): INCR/INCRBY n>=1 advance it, reads
// see its decimal value, deletes reset it, and everything that could move
// it back or make it expire answers WRONGTYPE and changes nothing.
func TestSequenceNeverGoesBackwardsThroughRedisCommands_D3(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.Do(bg, "SEQ.NEXT", "s", "COUNT", "5")
	if n := c.Incr(bg, "s").Val(); n != 6 {
		t.Fatalf("INCR on a sequence = %d, want 6", n)
	}
	if n := c.IncrBy(bg, "s", 4).Val(); n != 10 {
		t.Fatalf("INCRBY 4 on a sequence = %d", n)
	}
	// INCRBY 0 would answer 10 again, a value already handed out (found
	// by review).
	wantErr(t, c.IncrBy(bg, "s", 0).Err(), "WRONGTYPE")
	if v := c.Get(bg, "s").Val(); v != "10" {
		t.Fatalf("GET of a sequence = %q", v)
	}
	if v := c.MGet(bg, "s").Val(); len(v) != 1 || v[0] != "10" {
		t.Fatalf("MGET of a sequence = %v", v)
	}
	if n := c.StrLen(bg, "s").Val(); n != 2 {
		t.Fatalf("STRLEN of a sequence = %d", n)
	}
	if typ := c.Type(bg, "s").Val(); typ != "sequence" {
		t.Fatalf("TYPE = %q", typ)
	}
	must(t, c.Set(bg, "other", "1", 0).Err())
	for name, err := range map[string]error{
		"DECR":          c.Decr(bg, "s").Err(),
		"DECRBY":        c.DecrBy(bg, "s", 1).Err(),
		"DECRBY -5":     c.DecrBy(bg, "s", -5).Err(), // a decrement never moves one, forward neither (found by review)
		"INCRBY -1":     c.IncrBy(bg, "s", -1).Err(),
		"INCRBYFLOAT":   c.IncrByFloat(bg, "s", 1).Err(),
		"SET":           c.Set(bg, "s", "1", 0).Err(),
		"GETSET":        c.GetSet(bg, "s", "1").Err(),
		"MSET":          c.MSet(bg, "s", "1").Err(),
		"APPEND":        c.Append(bg, "s", "0").Err(),
		"SETRANGE":      c.SetRange(bg, "s", 0, "0").Err(),
		"EXPIRE":        c.Expire(bg, "s", time.Hour).Err(),
		"PEXPIRE":       c.PExpire(bg, "s", time.Hour).Err(),
		"EXPIREAT":      c.ExpireAt(bg, "s", time.Now().Add(time.Hour)).Err(),
		"PEXPIREAT":     c.PExpireAt(bg, "s", time.Now().Add(time.Hour)).Err(),
		"GETEX EX":      c.GetEx(bg, "s", time.Hour).Err(),
		"RENAME onto":   c.Rename(bg, "other", "s").Err(),
		"DELEX IFEQ":    c.Do(bg, "DELEX", "s", "IFEQ", "10").Err(),
		"CTR.ADD":       c.Do(bg, "CTR.ADD", "s", "-1").Err(),
		"KV.SET":        c.Do(bg, "KV.SET", "s", "1").Err(),
		"SET PX (lock)": c.Do(bg, "SET", "s", "owner", "PX", "1000").Err(),
	} {
		if err == nil || err.Error()[:9] != "WRONGTYPE" {
			t.Errorf("%s on a sequence: %v, want WRONGTYPE", name, err)
		}
	}
	// NX: the key exists, so nothing is written, whatever it holds and
	// wherever it stands among MSETNX's keys, as in Redis (found by review:
	// WRONGTYPE, or 0, by argument order).
	if ok, err := c.SetNX(bg, "s", "1", 0).Result(); ok || err != nil {
		t.Errorf("SET NX on a sequence: %v, %v; want not written", ok, err)
	}
	for _, args := range [][]any{{"MSETNX", "s", "1", "fresh", "1"}, {"MSETNX", "fresh", "1", "s", "1"}} {
		if n, err := c.Do(bg, args...).Int(); n != 0 || err != nil {
			t.Errorf("%v: %d, %v; want 0", args, n, err)
		}
	}
	if v := c.Get(bg, "s").Val(); v != "10" {
		t.Fatalf("refused commands changed the sequence: %q", v)
	}
	if ttl := c.TTL(bg, "s").Val(); ttl != -1 {
		t.Fatalf("sequence got a TTL: %v", ttl)
	}
	// DEL / UNLINK / GETDEL reset it.
	if n := c.Del(bg, "s").Val(); n != 1 {
		t.Fatal("DEL did not delete the sequence")
	}
	if n, _ := c.Do(bg, "SEQ.NEXT", "s").Int64(); n != 1 {
		t.Fatalf("SEQ.NEXT after DEL = %d", n)
	}
	c.Unlink(bg, "s")
	if n := c.Exists(bg, "s").Val(); n != 0 {
		t.Fatal("UNLINK did not delete the sequence")
	}
	// Renaming a sequence away keeps its value at the new name.
	c.Do(bg, "SEQ.NEXT", "s", "COUNT", "7")
	must(t, c.Rename(bg, "s", "s2").Err())
	if n, _ := c.Do(bg, "SEQ.GET", "s2").Int64(); n != 7 {
		t.Fatalf("renamed sequence = %d", n)
	}
}

// RENAMENX onto a sequence answers 0 and changes nothing, as onto any
// existing key: NX never replaces, so it cannot move the sequence back
// (found by review: it answered WRONGTYPE).
func TestRenameNXOntoASequenceAnswersZero(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.Do(bg, "SEQ.NEXT", "s", "COUNT", "10").Err())
	must(t, c.Set(bg, "str", "hi", 0).Err())
	if ok, err := c.RenameNX(bg, "str", "s").Result(); ok || err != nil {
		t.Fatalf("RENAMENX onto a sequence = %v, %v; want 0", ok, err)
	}
	if s, str := c.Get(bg, "s").Val(), c.Get(bg, "str").Val(); s != "10" || str != "hi" {
		t.Fatalf("after a refused RENAMENX: s = %q, str = %q", s, str)
	}
	wantErr(t, c.Rename(bg, "str", "s").Err(), "WRONGTYPE")
}
