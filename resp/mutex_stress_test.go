package resp

import (
	"bufio"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Parked MLOCKs under load with 1, 2 and 4 event loops: 16 clients
// pipeline SET, MLOCK, PING, and about one pipeline in ten is abandoned by
// a disconnect, parked or just granted. Never two holders at once (M2),
// every reply in order (R1), no waiter left, and the mutex is free once
// everyone is gone (M1). (Written by a review.)
func TestParkedMLockUnderDisconnects_M1_R1(t *testing.T) {
	for _, loops := range []int{1, 2, 4} {
		t.Run(fmt.Sprint(loops), func(t *testing.T) {
			e := newEnv(t, withRESP(func(c *Config) { c.EventLoops = loops }))
			var inside, maxInside, grants atomic.Int64
			var wg sync.WaitGroup
			deadline := time.Now().Add(2 * time.Second)
			for i := 0; i < 16; i++ {
				wg.Go(func() {
					rng := rand.New(rand.NewSource(int64(i)))
					for time.Now().Before(deadline) {
						nc, err := net.Dial("tcp", e.addr)
						if err != nil {
							t.Error(err)
							return
						}
						br := bufio.NewReader(nc)
						for k := 0; k < 20 && time.Now().Before(deadline); k++ {
							// pipeline stuff around the MLOCK
							fmt.Fprintf(nc, "SET k%d v\r\nMLOCK m 5 2\r\nPING\r\n", i)
							if rng.Intn(10) == 0 {
								// go away while (maybe) parked or just granted
								time.Sleep(time.Duration(rng.Intn(200)) * time.Microsecond)
								break
							}
							nc.SetReadDeadline(time.Now().Add(10 * time.Second))
							l1, err := br.ReadString('\n')
							if err != nil || l1 != "+OK\r\n" {
								t.Errorf("SET reply %q %v", l1, err)
								nc.Close()
								return
							}
							l2, err := br.ReadString('\n')
							if err != nil {
								t.Errorf("MLOCK reply %v", err)
								nc.Close()
								return
							}
							l3, _ := br.ReadString('\n')
							if l3 != "+PONG\r\n" {
								t.Errorf("PING reply %q", l3)
							}
							if l2 == "$-1\r\n" {
								continue
							}
							if !strings.HasPrefix(l2, ":") {
								t.Errorf("MLOCK reply %q", l2)
								continue
							}
							h, _ := strconv.ParseInt(strings.TrimSpace(l2[1:]), 10, 64)
							n := inside.Add(1)
							for {
								m := maxInside.Load()
								if n <= m || maxInside.CompareAndSwap(m, n) {
									break
								}
							}
							grants.Add(1)
							time.Sleep(time.Duration(rng.Intn(100)) * time.Microsecond)
							inside.Add(-1)
							fmt.Fprintf(nc, "MUNLOCK m %d\r\n", h)
							l4, _ := br.ReadString('\n')
							if l4 != "+OK\r\n" {
								t.Errorf("MUNLOCK %q", l4)
							}
						}
						nc.Close()
					}
				})
			}
			wg.Wait()
			if maxInside.Load() > 1 {
				t.Fatalf("two holders at once")
			}
			eventually(t, "no waiters", func() bool { return e.store.MutexWaiters() == 0 })
			c := e.client()
			if _, err := c.Do(bg, "MLOCK", "m", "5", "6").Int64(); err != nil {
				t.Fatalf("mutex not free after everyone left: %v", err)
			}
			t.Logf("grants %d", grants.Load())
		})
	}
}
