package core

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkConcurrentDurableIncr measures durable increments (fsync on, a
// real directory) from 50 concurrent goroutines, on distinct keys and on
// one hot key, and reports ops/s: the group-commit throughput of D5.
func BenchmarkConcurrentDurableIncr(b *testing.B) {
	const goroutines = 50
	for _, hot := range []bool{false, true} {
		name := "distinct-keys"
		if hot {
			name = "hot-key"
		}
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			s := openStore(b, nil, b.TempDir(), Config{})
			commits := s.Stats().Commits.Load()
			var wg sync.WaitGroup
			errc := make(chan error, goroutines)
			b.ResetTimer()
			start := time.Now()
			for g := range goroutines {
				n := b.N / goroutines
				if g < b.N%goroutines {
					n++
				}
				id := "ctr" + strconv.Itoa(g)
				if hot {
					id = "hot"
				}
				wg.Go(func() {
					for range n {
						if _, err := s.CtrAdd(ctx, "bench", id, 1); err != nil {
							errc <- err
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errc)
			for err := range errc {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
			if c := s.Stats().Commits.Load() - commits; c > 0 {
				b.ReportMetric(float64(b.N)/float64(c), "writes/fsync")
			}
		})
	}
}

// BenchmarkReadBeyondTheCache measures a read of a key that is no longer in
// the record cache (a working set of 300,000 keys, a 4 MiB cache): from the
// record ring, and with the ring off, from Pebble (C2).
func BenchmarkReadBeyondTheCache(b *testing.B) {
	const keys = 300_000
	for _, ring := range []int{32 << 20, -1} {
		name := "ring"
		if ring < 0 {
			name = "pebble"
		}
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			s := openStore(b, nil, b.TempDir(), Config{CacheBytes: 4 << 20, RingBytes: ring, NoSync: true})
			for i := range keys {
				if _, err := s.CtrAdd(ctx, "bench", "counter:"+strconv.Itoa(i), 1); err != nil {
					b.Fatal(err)
				}
			}
			disk := s.Stats().DiskReads.Load()
			b.ResetTimer()
			for i := range b.N {
				// A stride through the keys: never one the cache still has.
				if _, err := s.CtrGet(ctx, "bench", "counter:"+strconv.Itoa(i*7919%keys)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(s.Stats().DiskReads.Load()-disk)/float64(b.N), "pebble-reads/op")
		})
	}
}
