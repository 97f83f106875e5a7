// Command memload writes -keys keys of -size byte values into a server, so
// that bench/run.sh can compare resident memory afterwards.
//
// Over RESP (go-redis) it sends pipelines of -pipeline SETs on -conns
// connections; with -http instead of -resp it POSTs /db/{acc}/kv/{id} from
// -conns goroutines (slow, only for a server without RESP). It then reads
// back a sample of keys and checks their length. One line of key=value pairs
// on stdout.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	respAddr = flag.String("resp", "", "RESP address host:port")
	httpAddr = flag.String("http", "", "HTTP address host:port (used when -resp is empty)")
	acc      = flag.String("acc", "0", "account for HTTP (RESP keys go to the default account 0)")
	keys     = flag.Int("keys", 1000000, "number of keys")
	size     = flag.Int("size", 100, "value size in bytes")
	pipeline = flag.Int("pipeline", 1000, "SETs per pipeline (RESP)")
	conns    = flag.Int("conns", 4, "connections (RESP) or concurrent requests (HTTP)")
	prefix   = flag.String("prefix", "mem:", "key prefix")
	digits   = flag.Int("digits", 8, "key number digits, zero-padded (redis-benchmark's __rand_int__ is 12)")
)

func key(i int) string { return fmt.Sprintf("%s%0*d", *prefix, *digits, i) }

// value is i's value: -size pseudo-random letters, different for every key
// and the same every time, so nothing compresses or dedups them away and the
// read-back can check them.
func value(i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x62656e6368))
	v := make([]byte, *size)
	for j := range v {
		v[j] = 'a' + byte(r.IntN(26))
	}
	return v
}

func main() {
	flag.Parse()
	start := time.Now()
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	var wg sync.WaitGroup
	mode := "resp"
	var rdb *redis.Client
	if *respAddr != "" {
		rdb = redis.NewClient(&redis.Options{
			Addr: *respAddr, PoolSize: *conns, Protocol: 2, DisableIdentity: true,
			ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, MaxRetries: -1,
		})
		defer rdb.Close()
		ctx := context.Background()
		for c := 0; c < *conns; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					lo := int(next.Add(int64(*pipeline))) - *pipeline
					if lo >= *keys {
						return
					}
					hi := min(lo+*pipeline, *keys)
					p := rdb.Pipeline()
					for i := lo; i < hi; i++ {
						p.Set(ctx, key(i), value(i), 0)
					}
					cmds, err := p.Exec(ctx)
					if err != nil {
						fail(err)
						for _, c := range cmds {
							if c.Err() != nil {
								errs.Add(1)
							}
						}
					}
				}
			}()
		}
	} else if *httpAddr != "" {
		mode = "http"
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns}}
		base := "http://" + *httpAddr + "/db/" + *acc + "/kv/"
		for c := 0; c < *conns; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= *keys {
						return
					}
					resp, err := client.Post(base+key(i), "application/octet-stream", bytes.NewReader(value(i)))
					if err != nil {
						fail(err)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						fail(fmt.Errorf("POST %s: HTTP %d", key(i), resp.StatusCode))
					}
				}
			}()
		}
	} else {
		fmt.Fprintln(os.Stderr, "memload: give -resp or -http")
		os.Exit(2)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()

	// Read back a sample.
	bad := 0
	for i := 0; i < *keys; i += max(1, *keys/100) {
		var got []byte
		var err error
		if rdb != nil {
			got, err = rdb.Get(context.Background(), key(i)).Bytes()
		} else {
			var resp *http.Response
			resp, err = http.Get("http://" + *httpAddr + "/db/" + *acc + "/kv/" + key(i))
			if err == nil {
				got, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}
		if err != nil || !bytes.Equal(got, value(i)) {
			bad++
		}
	}
	fmt.Printf("memload mode=%s keys=%d size=%d secs=%.1f rate=%.0f errors=%d sample_bad=%d", mode, *keys, *size, secs, float64(*keys)/secs, errs.Load(), bad)
	if e := firstErr.Load(); e != nil {
		fmt.Printf(" first_error=%q", e)
	}
	fmt.Println()
	if errs.Load() > 0 || bad > 0 {
		os.Exit(1)
	}
}
