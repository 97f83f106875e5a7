package resp

import (
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestIncrDecrFollowRedis(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if n := c.Incr(bg, "n").Val(); n != 1 {
		t.Fatalf("INCR absent = %d", n)
	}
	if n := c.IncrBy(bg, "n", 41).Val(); n != 42 {
		t.Fatalf("INCRBY = %d", n)
	}
	if n := c.Decr(bg, "n").Val(); n != 41 {
		t.Fatalf("DECR = %d", n)
	}
	if n := c.DecrBy(bg, "n", 50).Val(); n != -9 {
		t.Fatalf("DECRBY = %d", n)
	}
	must(t, c.Set(bg, "s", "abc", 0).Err())
	wantErr(t, c.Incr(bg, "s").Err(), "ERR value is not an integer or out of range")
	must(t, c.Set(bg, "sp", " 1", 0).Err())
	wantErr(t, c.Incr(bg, "sp").Err(), "ERR value is not an integer or out of range")
	must(t, c.Set(bg, "max", strconv.FormatInt(1<<63-1, 10), 0).Err())
	wantErr(t, c.Incr(bg, "max").Err(), "ERR increment or decrement would overflow")
	wantErr(t, c.Do(bg, "INCRBY", "n", "1.5").Err(), "ERR value is not an integer or out of range")
	wantErr(t, c.Do(bg, "DECRBY", "n", "-9223372036854775808").Err(), "ERR decrement would overflow")
	// INCR keeps the TTL, like Redis.
	must(t, c.Set(bg, "t", "1", 100e9).Err())
	c.Incr(bg, "t")
	if ttl := c.TTL(bg, "t").Val(); ttl <= 0 {
		t.Fatalf("INCR dropped the TTL: %v", ttl)
	}
}

func TestCtrAddAndGet(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	if err := c.Do(bg, "CTR.GET", "c").Err(); err != redis.Nil {
		t.Fatalf("CTR.GET absent: %v, want nil", err)
	}
	if n, _ := c.Do(bg, "CTR.ADD", "c", "5").Int64(); n != 5 {
		t.Fatalf("CTR.ADD = %d", n)
	}
	if n, _ := c.Do(bg, "CTR.ADD", "c", "-7").Int64(); n != -2 {
		t.Fatalf("CTR.ADD negative = %d", n)
	}
	if n, _ := c.Do(bg, "CTR.GET", "c").Int64(); n != -2 {
		t.Fatalf("CTR.GET = %d", n)
	}
	if v := c.Get(bg, "c").Val(); v != "-2" {
		t.Fatalf("GET of a counter = %q", v)
	}
	wantErr(t, c.Do(bg, "CTR.ADD", "c", "x").Err(), "ERR value is not an integer or out of range")
	c.Do(bg, "SEQ.NEXT", "sq")
	wantErr(t, c.Do(bg, "CTR.ADD", "sq", "1").Err(), "WRONGTYPE")
}

// 100 goroutines INCR one key without MULTI: the total is exact, because
// every write to a key is serialised in core (D5) and acknowledged only
// once durable (R1).
func TestConcurrentIncrFromHundredClientsLosesNoUpdate_D5(t *testing.T) {
	e := newEnv(t)
	c := e.client(func(o *redis.Options) { o.PoolSize = 100 })
	const workers, each = 100, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := c.Incr(bg, "hot").Err(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, _ := c.Get(bg, "hot").Int(); n != workers*each {
		t.Fatalf("hot = %d, want %d", n, workers*each)
	}
}
