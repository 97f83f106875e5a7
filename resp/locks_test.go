package resp

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// LOCK.ACQUIRE's token is the key's create revision: unchanged when the
// holder extends, higher for every new holder (D3).
func TestLockFencingTokenRisesForEveryNewHolder_D3(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	t1, err := c.Do(bg, "LOCK.ACQUIRE", "L", "alice", "30").Int64()
	must(t, err)
	if err := c.Do(bg, "LOCK.ACQUIRE", "L", "bob", "30").Err(); err != redis.Nil {
		t.Fatalf("LOCK.ACQUIRE held by another: %v, want nil", err)
	}
	t1b, err := c.Do(bg, "LOCK.ACQUIRE", "L", "alice", "60").Int64()
	must(t, err)
	if t1b != t1 {
		t.Fatalf("extension changed the token: %d → %d", t1, t1b)
	}
	got, err := c.Do(bg, "LOCK.GET", "L").Slice()
	must(t, err)
	if len(got) != 3 || got[0] != "alice" || got[1].(int64) <= 30000 || got[2] != t1 {
		t.Fatalf("LOCK.GET = %#v", got)
	}
	wantErr(t, c.Do(bg, "LOCK.RELEASE", "L", "bob").Err(), "LOCKED ")
	if n, _ := c.Do(bg, "LOCK.RELEASE", "L", "alice").Int(); n != 1 {
		t.Fatal("LOCK.RELEASE by the owner did not answer 1")
	}
	if n, _ := c.Do(bg, "LOCK.RELEASE", "L", "alice").Int(); n != 0 {
		t.Fatal("LOCK.RELEASE of a free lock did not answer 0")
	}
	if err := c.Do(bg, "LOCK.GET", "L").Err(); err != redis.Nil {
		t.Fatalf("LOCK.GET free: %v, want nil", err)
	}
	t2, err := c.Do(bg, "LOCK.ACQUIRE", "L", "bob", "30").Int64()
	must(t, err)
	if t2 <= t1 {
		t.Fatalf("new holder's token %d not above %d", t2, t1)
	}
	wantErr(t, c.Do(bg, "LOCK.ACQUIRE", "L", "bob", "-1").Err(), "ERR lock duration")
	wantErr(t, c.Do(bg, "LOCK.ACQUIRE", "L", "bob", "0").Err(), "ERR the lock duration must be greater than 0")
}

// A persistent lock is the string key holding its owner: the Redis lock
// idiom (SET NX PX, GET, PTTL, DELEX IFEQ) and LOCK.* see the same lock.
func TestRedisLockIdiomAndLockCommandsShareTheLock(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if ok := c.SetNX(bg, "res", "owner-1", 10*time.Second).Val(); !ok {
		t.Fatal("SET NX PX did not acquire")
	}
	if err := c.Do(bg, "LOCK.ACQUIRE", "res", "owner-2", "10").Err(); err != redis.Nil {
		t.Fatalf("LOCK.ACQUIRE over a SET NX lock: %v, want nil", err)
	}
	got, err := c.Do(bg, "LOCK.GET", "res").Slice()
	must(t, err)
	if got[0] != "owner-1" {
		t.Fatalf("LOCK.GET owner = %v", got[0])
	}
	wantErr(t, c.Do(bg, "LOCK.RELEASE", "res", "owner-2").Err(), "LOCKED ")
	if n, _ := c.Do(bg, "DELEX", "res", "IFEQ", "owner-1").Int(); n != 1 {
		t.Fatal("DELEX IFEQ owner did not release")
	}
	tok, err := c.Do(bg, "LOCK.ACQUIRE", "res", "owner-2", "10").Int64()
	must(t, err)
	if v := c.Get(bg, "res").Val(); v != "owner-2" {
		t.Fatalf("GET of a LOCK.ACQUIRE lock = %q", v)
	}
	if pttl := c.PTTL(bg, "res").Val(); pttl <= 0 || pttl > 10*time.Second {
		t.Fatalf("PTTL of a lock = %v", pttl)
	}
	if ok := c.SetNX(bg, "res", "owner-3", time.Second).Val(); ok {
		t.Fatal("SET NX acquired a held lock")
	}
	if tok <= 0 {
		t.Fatal("no token")
	}
}

// The HTTP lock API (core.Store.LockAcquire) and the RESP lock commands
// act on the same lock, both ways.
func TestLocksAreSharedWithCore(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	info, err := e.store.LockAcquire(bg, "acme", "job", "worker-1", 30*time.Second)
	must(t, err)
	got, err := c.Do(bg, "LOCK.GET", "{acme}:job").Slice()
	must(t, err)
	if got[0] != "worker-1" || got[2] != int64(info.Token) {
		t.Fatalf("LOCK.GET of a core lock = %#v, token %d", got, info.Token)
	}
	if v := c.Get(bg, "{acme}:job").Val(); v != "worker-1" {
		t.Fatalf("GET of a core lock = %q", v)
	}
	if ok := c.SetNX(bg, "{acme}:job", "worker-2", time.Second).Val(); ok {
		t.Fatal("SET NX took a lock held through core")
	}
	if n, _ := c.Do(bg, "DELEX", "{acme}:job", "IFEQ", "worker-1").Int(); n != 1 {
		t.Fatal("DELEX IFEQ did not release the core lock")
	}
	must(t, c.SetArgs(bg, "{acme}:job", "worker-3", redis.SetArgs{Mode: "NX", TTL: 30 * time.Second}).Err())
	li, err := e.store.LockGet(bg, "acme", "job")
	must(t, err)
	if li.Owner != "worker-3" || li.Token <= info.Token || li.RemainingMs <= 0 {
		t.Fatalf("core LockGet of a SET NX PX lock = %+v", li)
	}
	if _, err := e.store.LockRelease(bg, "acme", "job", "worker-1"); err == nil {
		t.Fatal("core released a lock held by another owner")
	}
}
