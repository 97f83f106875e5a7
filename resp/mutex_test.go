package resp

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A blocked MLOCK is granted the moment the holder unlocks (M2), to
// waiters in arrival order (M1), and blocks only its own connection.
func TestMLockHandsOverBetweenClientsInArrivalOrder_M1_M2(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	h1, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)

	type grant struct {
		who string
		h   int64
		err error
	}
	grants := make(chan grant, 2)
	for i, who := range []string{"first", "second"} {
		c := e.client(func(o *redis.Options) { o.PoolSize = 1 })
		go func() {
			h, err := c.Do(bg, "MLOCK", "m", "30", "10").Int64()
			grants <- grant{who, h, err}
		}()
		eventually(t, who+" waiting", func() bool { return e.store.MutexWaiters() == i+1 })
	}
	// The waiters block only themselves: the holder's connection works.
	must(t, holder.Ping(bg).Err())
	select {
	case g := <-grants:
		t.Fatalf("%s granted while held", g.who)
	default:
	}
	wantErr(t, holder.Do(bg, "MUNLOCK", "m", h1+1000).Err(), "NOTHELD ")
	must(t, holder.Do(bg, "MUNLOCK", "m", h1).Err())
	g := <-grants
	if g.err != nil || g.who != "first" || g.h <= h1 {
		t.Fatalf("first grant = %+v (after handle %d)", g, h1)
	}
	must(t, holder.Do(bg, "MLOCK.EXTEND", "m", g.h, "30").Err())
	wantErr(t, holder.Do(bg, "MLOCK.EXTEND", "m", h1, "30").Err(), "NOTHELD ")
	must(t, holder.Do(bg, "MUNLOCK", "m", g.h).Err())
	g = <-grants
	if g.err != nil || g.who != "second" {
		t.Fatalf("second grant = %+v", g)
	}
	must(t, holder.Do(bg, "MUNLOCK", "m", g.h).Err())
}

func TestMLockWaitTimeoutAnswersNil(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	h, err := c.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	if err := c.Do(bg, "MLOCK", "m", "30", "0").Err(); err != redis.Nil {
		t.Fatalf("MLOCK wait 0 on a held mutex: %v, want nil", err)
	}
	if err := c.Do(bg, "MLOCK", "m", "30", "0.05").Err(); err != redis.Nil {
		t.Fatalf("MLOCK wait 0.05 on a held mutex: %v, want nil", err)
	}
	if e.store.MutexWaiters() != 0 {
		t.Fatal("timed-out waiter still queued")
	}
	// Mutexes are a namespace of their own: the key m is untouched.
	if n := c.Exists(bg, "m").Val(); n != 0 {
		t.Fatal("MLOCK created a key")
	}
	// {acc}: names address the account's mutex.
	h2, err := c.Do(bg, "MLOCK", "{acme}:m", "30", "0").Int64()
	must(t, err)
	must(t, e.store.MutexUnlock("acme", "m", uint64(h2)))
	must(t, c.Do(bg, "MUNLOCK", "m", h).Err())
	wantErr(t, c.Do(bg, "MUNLOCK", "m", "0").Err(), "NOTHELD ")
	wantErr(t, c.Do(bg, "MLOCK", "m", "x", "1").Err(), "ERR mutex duration")
	wantErr(t, c.Do(bg, "MLOCK", "m", "10", "-1").Err(), "ERR wait")
}

// A client that disconnects while blocked in MLOCK leaves the queue at
// once and is never granted the mutex (R4, M1): the next waiter gets it
// the moment the holder unlocks.
func TestMLockWaiterThatDisconnectsLeavesTheQueue_R4_M1(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)

	gone := e.raw()
	gone.send("*4\r\n$5\r\nMLOCK\r\n$1\r\nm\r\n$2\r\n60\r\n$2\r\n60\r\n")
	eventually(t, "raw waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	gone.nc.Close()
	eventually(t, "disconnected waiter dequeued", func() bool { return e.store.MutexWaiters() == 0 })

	next := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	got := make(chan error, 1)
	go func() { got <- next.Do(bg, "MLOCK", "m", "30", "10").Err() }()
	eventually(t, "next waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	if err := <-got; err != nil {
		t.Fatalf("next waiter after the disconnected one: %v", err)
	}
}

// Commands pipelined behind a blocking MLOCK are not lost: the bytes read
// while watching the socket are handed back to the connection.
func TestCommandsPipelinedBehindMLockRunAfterIt(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	r := e.raw()
	r.send("MLOCK m 30 10\r\n")
	eventually(t, "raw waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	r.send("SET after 1\r\nGET after\r\n")
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	out := r.readN(3)
	lines := strings.Split(out, "\r\n")
	if !strings.HasPrefix(lines[0], ":") || lines[1] != "+OK" || lines[3] != "1" {
		t.Fatalf("replies = %q", out)
	}
	h2, _ := strconv.ParseInt(lines[0][1:], 10, 64)
	must(t, holder.Do(bg, "MUNLOCK", "m", h2).Err())
}

// MLOCK in the middle of a pipeline, granted at once or after a wait
// (parked), answers in its place: after the durable write before it (whose
// reply waits for its fsync) and before the commands after it (R1).
func TestMLockInAPipelineAnswersInOrder_R1(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("SET before 1\r\nMLOCK free 30 0\r\nGET before\r\n")
	out := r.readN(3)
	if lines := strings.Split(out, "\r\n"); len(lines) < 5 || lines[0] != "+OK" || !strings.HasPrefix(lines[1], ":") || lines[3] != "1" {
		t.Fatalf("granted at once: replies = %q, want +OK, the handle, then 1", out)
	}

	holder := e.client()
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	r.send("SET before 2\r\nMLOCK m 30 10\r\nGET before\r\n")
	if got := r.readN(1); got != "+OK\r\n" {
		t.Fatalf("reply before the parked MLOCK = %q, want +OK", got)
	}
	eventually(t, "raw waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	out = r.readN(2)
	if lines := strings.Split(out, "\r\n"); len(lines) < 4 || !strings.HasPrefix(lines[0], ":") || lines[2] != "2" {
		t.Fatalf("after the grant: replies = %q, want the handle, then 2", out)
	}
}

// Server.Close cancels blocked waiters' contexts: Close does not hang on
// an MLOCK that waits for a long time.
func TestServerCloseReleasesBlockedMLock_R4(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	must(t, holder.Do(bg, "MLOCK", "m", "30", "0").Err())
	r := e.raw()
	r.send("MLOCK m 30 3000\r\n")
	eventually(t, "raw waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	done := make(chan error, 1)
	go func() { done <- e.srv.Close() }()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a blocked MLOCK")
	}
	if n := e.store.MutexWaiters(); n != 0 {
		t.Fatalf("%d waiters left after Close", n)
	}
}

// MLOCK and the HTTP mutex API are the same mutex (core.Store.MutexLock,
// which /db/{acc}/mlock calls): one held through core blocks a RESP waiter
// until released through core, and the other way round.
func TestMLockSharesMutexesWithCore(t *testing.T) {
	e := newEnv(t)
	h, err := e.store.MutexLock(bg, "acme", "m", 30*time.Second, 0)
	must(t, err)
	c := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	got := make(chan int64, 1)
	go func() {
		v, err := c.Do(bg, "MLOCK", "{acme}:m", "30", "10").Int64()
		if err != nil {
			v = -1
		}
		got <- v
	}()
	eventually(t, "RESP waiter queued behind the core holder", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, e.store.MutexUnlock("acme", "m", h))
	rh := <-got
	if rh <= int64(h) {
		t.Fatalf("RESP waiter got handle %d after %d", rh, h)
	}
	// Now RESP holds it: a core (HTTP) waiter is granted on MUNLOCK.
	coreGot := make(chan error, 1)
	go func() {
		_, err := e.store.MutexLock(bg, "acme", "m", 30*time.Second, 10*time.Second)
		coreGot <- err
	}()
	eventually(t, "core waiter queued behind the RESP holder", func() bool { return e.store.MutexWaiters() == 1 })
	must(t, c.Do(bg, "MUNLOCK", "{acme}:m", rh).Err())
	must(t, <-coreGot)
}

// A client blocked in MLOCK is flagged b in CLIENT LIST, as Redis flags
// a client blocked in BLPOP, and N again once granted.
func TestClientListFlagsAClientBlockedInMLock(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	h, err := holder.Do(bg, "MLOCK", "m", "30", "0").Int64()
	must(t, err)
	waiter := e.raw()
	waiter.send("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$6\r\nwaiter\r\n" +
		"*4\r\n$5\r\nMLOCK\r\n$1\r\nm\r\n$2\r\n30\r\n$2\r\n30\r\n")
	eventually(t, "waiter queued", func() bool { return e.store.MutexWaiters() == 1 })
	flagsOf := func() string {
		for _, line := range strings.Split(holder.ClientList(bg).Val(), "\n") {
			if strings.Contains(line, " name=waiter ") {
				for _, f := range strings.Fields(line) {
					if v, ok := strings.CutPrefix(f, "flags="); ok {
						return v
					}
				}
			}
		}
		return "(no line)"
	}
	if f := flagsOf(); f != "b" {
		t.Fatalf("blocked waiter: flags=%s, want b", f)
	}
	if f := holder.Do(bg, "CLIENT", "INFO").Val(); !strings.Contains(f.(string), " flags=N ") {
		t.Fatalf("holder: %q, want flags=N", f)
	}
	must(t, holder.Do(bg, "MUNLOCK", "m", h).Err())
	eventually(t, "waiter granted", func() bool { return flagsOf() == "N" })
}
