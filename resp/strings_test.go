package resp

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
)

func TestGoRedisFallsBackToRESP2AndRoundTripsStrings(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if got, err := c.Ping(bg).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	must(t, c.Set(bg, "a", "1", 0).Err())
	if got, err := c.Get(bg, "a").Result(); err != nil || got != "1" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if _, err := c.Get(bg, "missing").Result(); err != redis.Nil {
		t.Fatalf("GET missing: err = %v, want redis.Nil", err)
	}
}

func TestSetOptionsFollowRedis(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	// NX / XX
	if ok, _ := c.SetNX(bg, "k", "v1", 0).Result(); !ok {
		t.Fatal("SET NX on absent key did not set")
	}
	if ok, _ := c.SetNX(bg, "k", "v2", 0).Result(); ok {
		t.Fatal("SET NX on present key set")
	}
	if ok, _ := c.SetXX(bg, "nokey", "v", 0).Result(); ok {
		t.Fatal("SET XX on absent key set")
	}
	if ok, _ := c.SetXX(bg, "k", "v3", 0).Result(); !ok {
		t.Fatal("SET XX on present key did not set")
	}
	// GET returns the old value.
	if old, err := c.SetArgs(bg, "k", "v4", redis.SetArgs{Get: true}).Result(); err != nil || old != "v3" {
		t.Fatalf("SET GET = %q, %v", old, err)
	}
	if _, err := c.SetArgs(bg, "new", "v", redis.SetArgs{Get: true}).Result(); err != redis.Nil {
		t.Fatalf("SET GET on absent key: %v, want nil", err)
	}
	// EX / PX / EXAT / PXAT and KEEPTTL.
	must(t, c.Set(bg, "ex", "v", 100*time.Second).Err())
	if ttl := c.TTL(bg, "ex").Val(); ttl != 100*time.Second {
		t.Fatalf("TTL after EX 100 = %v", ttl)
	}
	must(t, c.Set(bg, "px", "v", 1500*time.Millisecond).Err())
	if pttl := c.PTTL(bg, "px").Val(); pttl <= 1000*time.Millisecond || pttl > 1500*time.Millisecond {
		t.Fatalf("PTTL after PX 1500 = %v", pttl)
	}
	at := time.Now().Add(time.Hour).Truncate(time.Second)
	must(t, c.SetArgs(bg, "exat", "v", redis.SetArgs{ExpireAt: at}).Err())
	if got := c.ExpireTime(bg, "exat").Val(); got != time.Duration(at.Unix())*time.Second {
		t.Fatalf("EXPIRETIME after EXAT = %v, want %v", got, at.Unix())
	}
	must(t, c.Do(bg, "SET", "pxat", "v", "PXAT", at.UnixMilli()).Err())
	if got := c.PExpireTime(bg, "pxat").Val(); got != time.Duration(at.UnixMilli())*time.Millisecond {
		t.Fatalf("PEXPIRETIME after PXAT = %v", got)
	}
	must(t, c.SetArgs(bg, "ex", "v2", redis.SetArgs{KeepTTL: true}).Err())
	if ttl := c.TTL(bg, "ex").Val(); ttl <= 0 {
		t.Fatalf("KEEPTTL lost the TTL: %v", ttl)
	}
	must(t, c.Set(bg, "ex", "v3", 0).Err())
	if ttl := c.TTL(bg, "ex").Val(); ttl != -1 {
		t.Fatalf("plain SET kept the TTL: %v", ttl)
	}
	// A deadline in the past stores nothing visible.
	must(t, c.Do(bg, "SET", "past", "v", "PXAT", 1000).Err())
	if n := c.Exists(bg, "past").Val(); n != 0 {
		t.Fatal("SET PXAT in the past left a visible key")
	}
	// Errors, with Redis's texts.
	wantErr(t, c.Do(bg, "SET", "k", "v", "EX", "0").Err(), "ERR invalid expire time in 'set' command")
	wantErr(t, c.Do(bg, "SET", "k", "v", "EX", "-5").Err(), "ERR invalid expire time in 'set' command")
	wantErr(t, c.Do(bg, "SET", "k", "v", "EX", "x").Err(), "ERR value is not an integer or out of range")
	wantErr(t, c.Do(bg, "SET", "k", "v", "NX", "XX").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "k", "v", "EX", "1", "PX", "1").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "k", "v", "KEEPTTL", "EX", "1").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "k", "v", "BOGUS").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "k").Err(), "ERR wrong number of arguments for 'set' command")

	// As Redis, a repeated option is no error; the last argument wins.
	must(t, c.Do(bg, "SET", "rep", "a", "NX", "NX", "ex", "100", "EX", "20").Err())
	if ttl := c.TTL(bg, "rep").Val(); ttl <= 10*time.Second || ttl > 20*time.Second {
		t.Fatalf("SET EX 100 EX 20: TTL %v, want the last one's 20 s", ttl)
	}
	if got := c.Do(bg, "SET", "rep", "b", "GET", "GET", "XX", "xx", "KEEPTTL", "KEEPTTL").Val(); got != "a" {
		t.Fatalf("SET GET GET = %v, want the old value a", got)
	}
	if v, ttl := c.Get(bg, "rep").Val(), c.TTL(bg, "rep").Val(); v != "b" || ttl <= 10*time.Second {
		t.Fatalf("after SET XX XX KEEPTTL KEEPTTL: %q TTL %v", v, ttl)
	}
	if err := c.Do(bg, "SET", "rep", "c", "NX", "NX").Err(); err != redis.Nil {
		t.Fatalf("SET NX NX on a present key: %v, want nil", err)
	}
	wantErr(t, c.Do(bg, "SET", "rep", "d", "PX", "1", "EX", "1").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "rep", "d", "EX", "1", "KEEPTTL").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "rep", "d", "XX", "NX").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "rep", "d", "IFEQ", "b", "IFEQ", "b").Err(), "ERR syntax error")
	// As Redis, options are read before amounts: a syntax error wins.
	wantErr(t, c.Do(bg, "SET", "rep", "d", "PX", "EX", "x").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "SET", "rep", "d", "PXAT", "0", "GET", "KEEPTTL").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "EXPIRE", "rep", "x", "NX", "XX").Err(), "ERR NX and XX, GT or LT")
	if err := c.Do(bg, "GETEX", "absent", "EX", "abc").Err(); err != redis.Nil {
		t.Fatalf("GETEX of an absent key with a bad amount: %v, want nil as Redis", err)
	}
	wantErr(t, c.Do(bg, "GETEX", "rep", "EX", "abc").Err(), "ERR value is not an integer")
	if v := c.Get(bg, "rep").Val(); v != "b" {
		t.Fatalf("refused SETs changed the value to %q", v)
	}
}

func TestSetIfEqAndDelExReleaseOnlyTheOwnersLock(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.Set(bg, "lk", "owner-a", 0).Err())
	if err := c.Do(bg, "SET", "lk", "owner-b", "IFEQ", "someone").Err(); err != redis.Nil {
		t.Fatalf("SET IFEQ with the wrong value: %v, want nil", err)
	}
	if err := c.Do(bg, "SET", "absent", "x", "IFEQ", "x").Err(); err != redis.Nil {
		t.Fatalf("SET IFEQ on an absent key: %v, want nil (never creates)", err)
	}
	must(t, c.Do(bg, "SET", "lk", "owner-a", "IFEQ", "owner-a", "PX", "5000").Err())
	if pttl := c.PTTL(bg, "lk").Val(); pttl <= 0 {
		t.Fatalf("SET IFEQ PX did not extend: PTTL %v", pttl)
	}
	if n, _ := c.Do(bg, "DELEX", "lk", "IFEQ", "owner-b").Int(); n != 0 {
		t.Fatal("DELEX IFEQ with another owner deleted the lock")
	}
	if n, _ := c.Do(bg, "DELEX", "lk", "IFNE", "owner-a").Int(); n != 0 {
		t.Fatal("DELEX IFNE with the owner's value deleted the lock")
	}
	if n, _ := c.Do(bg, "DELEX", "lk", "IFEQ", "owner-a").Int(); n != 1 {
		t.Fatal("DELEX IFEQ by the owner did not delete")
	}
	if n, _ := c.Do(bg, "DELEX", "lk").Int(); n != 0 {
		t.Fatal("DELEX of an absent key answered 1")
	}
	must(t, c.Set(bg, "plain", "x", 0).Err())
	if n, _ := c.Do(bg, "DELEX", "plain").Int(); n != 1 {
		t.Fatal("DELEX without condition did not delete")
	}
	wantErr(t, c.Do(bg, "DELEX", "plain", "IFXX", "v").Err(), "ERR syntax error")
}

func TestStringCommandsFollowRedis(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	// SETNX / SETEX / PSETEX / GETSET / GETDEL
	if ok := c.Do(bg, "SETNX", "a", "1").Val(); ok != int64(1) {
		t.Fatalf("SETNX absent = %v", ok)
	}
	if ok := c.Do(bg, "SETNX", "a", "2").Val(); ok != int64(0) {
		t.Fatalf("SETNX present = %v", ok)
	}
	must(t, c.SetEx(bg, "se", "v", 10*time.Second).Err())
	if ttl := c.TTL(bg, "se").Val(); ttl != 10*time.Second {
		t.Fatalf("SETEX TTL = %v", ttl)
	}
	must(t, c.Do(bg, "PSETEX", "pse", "2000", "v").Err())
	if v := c.Get(bg, "pse").Val(); v != "v" {
		t.Fatalf("PSETEX value = %q", v)
	}
	wantErr(t, c.Do(bg, "SETEX", "se", "0", "v").Err(), "ERR invalid expire time in 'setex' command")
	if old := c.GetSet(bg, "a", "3").Val(); old != "1" {
		t.Fatalf("GETSET old = %q", old)
	}
	if v := c.GetDel(bg, "a").Val(); v != "3" {
		t.Fatalf("GETDEL = %q", v)
	}
	if err := c.GetDel(bg, "a").Err(); err != redis.Nil {
		t.Fatalf("GETDEL after GETDEL: %v", err)
	}
	// GETEX
	must(t, c.Set(bg, "gx", "v", 0).Err())
	if v := c.GetEx(bg, "gx", 50*time.Second).Val(); v != "v" {
		t.Fatalf("GETEX = %q", v)
	}
	if ttl := c.TTL(bg, "gx").Val(); ttl != 50*time.Second {
		t.Fatalf("GETEX EX TTL = %v", ttl)
	}
	must(t, c.Do(bg, "GETEX", "gx", "PERSIST").Err())
	if ttl := c.TTL(bg, "gx").Val(); ttl != -1 {
		t.Fatalf("GETEX PERSIST TTL = %v", ttl)
	}
	wantErr(t, c.Do(bg, "GETEX", "gx", "EX", "1", "PERSIST").Err(), "ERR syntax error")
	// As Redis (and SET): a repeated option, the last argument winning.
	must(t, c.Do(bg, "GETEX", "gx", "EX", "100", "ex", "20").Err())
	if ttl := c.TTL(bg, "gx").Val(); ttl != 20*time.Second {
		t.Fatalf("GETEX EX 100 EX 20: TTL %v", ttl)
	}
	must(t, c.Do(bg, "GETEX", "gx", "PERSIST", "PERSIST").Err())
	if ttl := c.TTL(bg, "gx").Val(); ttl != -1 {
		t.Fatalf("GETEX PERSIST PERSIST TTL = %v", ttl)
	}
	// MSET / MGET / MSETNX
	must(t, c.MSet(bg, "m1", "a", "m2", "b").Err())
	vals := c.MGet(bg, "m1", "nope", "m2").Val()
	if len(vals) != 3 || vals[0] != "a" || vals[1] != nil || vals[2] != "b" {
		t.Fatalf("MGET = %#v", vals)
	}
	if ok := c.MSetNX(bg, "m1", "x", "m3", "y").Val(); ok {
		t.Fatal("MSETNX with an existing key set")
	}
	if c.Exists(bg, "m3").Val() != 0 {
		t.Fatal("MSETNX partly applied")
	}
	if ok := c.MSetNX(bg, "m3", "x", "m4", "y").Val(); !ok {
		t.Fatal("MSETNX with absent keys did not set")
	}
	wantErr(t, c.Do(bg, "MSET", "a", "1", "b").Err(), "ERR wrong number of arguments for 'mset' command")
	// APPEND / STRLEN / GETRANGE / SETRANGE
	if n := c.Append(bg, "s", "Hello").Val(); n != 5 {
		t.Fatalf("APPEND new = %d", n)
	}
	if n := c.Append(bg, "s", " World").Val(); n != 11 {
		t.Fatalf("APPEND = %d", n)
	}
	if n := c.StrLen(bg, "s").Val(); n != 11 {
		t.Fatalf("STRLEN = %d", n)
	}
	if n := c.StrLen(bg, "nope").Val(); n != 0 {
		t.Fatalf("STRLEN absent = %d", n)
	}
	for _, tc := range []struct {
		start, end int64
		want       string
	}{{0, 3, "Hell"}, {-3, -1, "rld"}, {0, -1, "Hello World"}, {10, 100, "d"}, {5, 2, ""}, {-1, -5, ""}} {
		if got := c.GetRange(bg, "s", tc.start, tc.end).Val(); got != tc.want {
			t.Errorf("GETRANGE %d %d = %q, want %q", tc.start, tc.end, got, tc.want)
		}
	}
	if n := c.SetRange(bg, "s", 6, "Redis").Val(); n != 11 {
		t.Fatalf("SETRANGE = %d", n)
	}
	if v := c.Get(bg, "s").Val(); v != "Hello Redis" {
		t.Fatalf("after SETRANGE = %q", v)
	}
	if n := c.SetRange(bg, "pad", 3, "x").Val(); n != 4 {
		t.Fatalf("SETRANGE padding = %d", n)
	}
	if v := c.Get(bg, "pad").Val(); v != "\x00\x00\x00x" {
		t.Fatalf("SETRANGE pads with zero bytes: %q", v)
	}
	if n := c.SetRange(bg, "empty", 5, "").Val(); n != 0 || c.Exists(bg, "empty").Val() != 0 {
		t.Fatal("SETRANGE with an empty value created the key")
	}
	wantErr(t, c.SetRange(bg, "s", -1, "x").Err(), "ERR offset is out of range")
	// INCRBYFLOAT
	must(t, c.Set(bg, "f", "10.50", 0).Err())
	if v := c.IncrByFloat(bg, "f", 0.1).Val(); v != 10.6 {
		t.Fatalf("INCRBYFLOAT = %v", v)
	}
	if v, _ := c.Do(bg, "INCRBYFLOAT", "f", "-5").Text(); v != "5.6" {
		t.Fatalf("INCRBYFLOAT -5 = %q", v)
	}
	must(t, c.Set(bg, "f2", "5.0e3", 0).Err())
	if v, _ := c.Do(bg, "INCRBYFLOAT", "f2", "2.0e2").Text(); v != "5200" {
		t.Fatalf("INCRBYFLOAT 5.0e3+2.0e2 = %q", v)
	}
	must(t, c.Set(bg, "notf", "abc", 0).Err())
	wantErr(t, c.IncrByFloat(bg, "notf", 1).Err(), "ERR value is not a valid float")
	wantErr(t, c.Do(bg, "INCRBYFLOAT", "f", "abc").Err(), "ERR value is not a valid float")
	// A long double's arithmetic, as Redis on x86-64 (core's test has more).
	must(t, c.Set(bg, "tenth", "0.1", 0).Err())
	if v, _ := c.Do(bg, "INCRBYFLOAT", "tenth", "0.2").Text(); v != "0.3" {
		t.Fatalf("INCRBYFLOAT 0.1+0.2 = %q, want Redis's 0.3", v)
	}
	wantErr(t, c.Do(bg, "INCRBYFLOAT", "tenth", "inf").Err(), "ERR increment would produce NaN or Infinity")
}

func TestValueOverMaxValueBytesIsRefusedAndConnectionKeepsWorking(t *testing.T) {
	e := newEnv(t, withCore(func(cc *core.Config) { cc.MaxValueBytes = 1024 }))
	c := e.client()
	big := strings.Repeat("x", 1025)
	// Over the argument limit: refused before any handler runs.
	wantErr(t, c.Set(bg, "k", big, 0).Err(), "ERR argument of 1025 bytes is larger than max_value_bytes")
	if n := c.Exists(bg, "k").Val(); n != 0 {
		t.Fatal("refused SET stored something")
	}
	wantErr(t, c.MSet(bg, "a", "1", "b", big).Err(), "ERR argument of 1025 bytes")
	if n := c.Exists(bg, "a").Val(); n != 0 {
		t.Fatal("MSET with one oversized value was partly applied")
	}
	must(t, c.Set(bg, "k", "small", 0).Err())
	wantErr(t, c.Append(bg, "k", strings.Repeat("z", 1020)).Err(), "ERR string exceeds maximum allowed size")
	if v := c.Get(bg, "k").Val(); v != "small" {
		t.Fatalf("refused APPEND changed the value: %q", v)
	}
	wantErr(t, c.SetRange(bg, "k", 1024, "x").Err(), "ERR string exceeds maximum allowed size")
}
