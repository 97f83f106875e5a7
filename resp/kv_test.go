package resp

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
)

func TestKVCompareAndSet(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if err := c.Do(bg, "KV.GET", "k").Err(); err != redis.Nil {
		t.Fatalf("KV.GET absent: %v, want nil", err)
	}
	v1, err := c.Do(bg, "KV.SET", "k", "a", "VER", "0").Int64()
	must(t, err)
	if v1 <= 0 {
		t.Fatalf("KV.SET VER 0 = %d", v1)
	}
	wantErr(t, c.Do(bg, "KV.SET", "k", "b", "VER", "0").Err(), "VERSION ")
	got, err := c.Do(bg, "KV.GET", "k").Slice()
	must(t, err)
	if len(got) != 2 || got[0] != "a" || got[1] != v1 {
		t.Fatalf("KV.GET = %#v, want [a %d]", got, v1)
	}
	v2, err := c.Do(bg, "KV.SET", "k", "b", "VER", v1).Int64()
	must(t, err)
	if v2 <= v1 {
		t.Fatalf("versions not increasing: %d then %d", v1, v2)
	}
	err = c.Do(bg, "KV.SET", "k", "c", "VER", v1).Err()
	wantErr(t, err, "VERSION ")
	if want := "current version is"; !contains(err.Error(), want) {
		t.Fatalf("VERSION error %q does not name the current version", err)
	}
	wantErr(t, c.Do(bg, "KV.DEL", "k", "VER", v1).Err(), "VERSION ")
	if n, _ := c.Do(bg, "KV.DEL", "k", "VER", v2).Int(); n != 1 {
		t.Fatal("KV.DEL with the current version did not delete")
	}
	if n, _ := c.Do(bg, "KV.DEL", "k").Int(); n != 0 {
		t.Fatal("KV.DEL absent did not answer 0")
	}
	// TTL
	must(t, c.Do(bg, "KV.SET", "t", "v", "TTL", "30").Err())
	if ttl := c.TTL(bg, "t").Val(); ttl.Seconds() != 30 {
		t.Fatalf("KV.SET TTL 30 → TTL %v", ttl)
	}
	wantErr(t, c.Do(bg, "KV.SET", "t", "v", "TTL", "0").Err(), "ERR ttl must be greater than 0")
	wantErr(t, c.Do(bg, "KV.SET", "t", "v", "VER").Err(), "ERR syntax error")
	wantErr(t, c.Do(bg, "KV.SET", "t", "v", "VER", "-1").Err(), "ERR value is not an integer")
}

// KV.SET keeps a copy of the value: the connection's read buffer is reused
// for the next commands, and must not leak into a stored value.
func TestKVSetValueDoesNotAliasTheReadBuffer(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	must(t, c.Do(bg, "KV.SET", "k", "first-value").Err())
	for range 50 {
		must(t, c.Do(bg, "KV.SET", "other", "zzzzzzzzzzzzzzzzzzzzzzzz").Err())
	}
	kv, err := e.store.KVGet(bg, "0", "k")
	must(t, err)
	if string(kv.Value) != "first-value" {
		t.Fatalf("stored value changed to %q", kv.Value)
	}
}

// The same data over core (HTTP's path) and RESP: a value written with
// KVSet in account acme is GET {acme}:x over RESP, and the other way round.
func TestAccountKeysAddressTheSameDataAsCore_R3(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	_, err := e.store.KVSet(bg, "acme", "x", []byte("from-core"), core.KVSetOptions{})
	must(t, err)
	if v := c.Get(bg, "{acme}:x").Val(); v != "from-core" {
		t.Fatalf("GET {acme}:x = %q", v)
	}
	if n := c.Exists(bg, "x").Val(); n != 0 {
		t.Fatal("the bare key x found account acme's key from account 0")
	}
	must(t, c.Set(bg, "{acme}:y", "from-resp", 0).Err())
	kv, err := e.store.KVGet(bg, "acme", "y")
	must(t, err)
	if string(kv.Value) != "from-resp" {
		t.Fatalf("core sees %q", kv.Value)
	}
	c.Do(bg, "SEQ.NEXT", "{acme}:seq", "COUNT", "3")
	if n, err := e.store.SeqGet(bg, "acme", "seq"); err != nil || n != 3 {
		t.Fatalf("core SeqGet = %d, %v", n, err)
	}
	if _, err := e.store.CtrAdd(bg, "acme", "ctr", 9); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Do(bg, "CTR.GET", "{acme}:ctr").Int(); n != 9 {
		t.Fatalf("CTR.GET {acme}:ctr = %d", n)
	}
	// SELECT makes bare keys address the account.
	c2 := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	must(t, c2.Do(bg, "SELECT", "acme").Err())
	if v := c2.Get(bg, "x").Val(); v != "from-core" {
		t.Fatalf("after SELECT acme, GET x = %q", v)
	}
	// A numeric database (go-redis DB option, SELECT n) is the account "n".
	c3 := e.client(func(o *redis.Options) { o.DB = 5 })
	must(t, c3.Set(bg, "x", "in-5", 0).Err())
	if v, ok, err := e.store.Get(bg, "5", "x"); err != nil || !ok || string(v) != "in-5" {
		t.Fatalf("DB 5 wrote %q, %v, %v in account 5", v, ok, err)
	}
	// Keys of two accounts in one command are refused.
	wantErr(t, c.MGet(bg, "{acme}:x", "{other}:x").Err(), "CROSSSLOT")
	wantErr(t, c.Del(bg, "{acme}:x", "x").Err(), "CROSSSLOT")
	// Not account keys: empty tag, missing colon.
	must(t, c.Set(bg, "{}:z", "1", 0).Err())
	must(t, c.Set(bg, "{acme}z", "1", 0).Err())
	if n, err := e.store.Exists(bg, "0", []string{"{}:z", "{acme}z"}); err != nil || n != 2 {
		t.Fatalf("non-account keys not in the current account: %d, %v", n, err)
	}
	wantErr(t, c.Do(bg, "SELECT", "a{b").Err(), "ERR account name must not contain")
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
