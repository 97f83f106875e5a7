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
