// Command fsyncprobe measures this disk's durable-write latency, the floor
// under every durable figure of bench/run.sh: one writer appends -size bytes
// to a file in -dir and fdatasyncs it, for -duration. One line of
// key=value pairs on stdout.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to probe")
	size := flag.Int("size", 128, "bytes appended before each fdatasync")
	duration := flag.Duration("duration", 2*time.Second, "how long to run")
	flag.Parse()
	f, err := os.CreateTemp(*dir, "fsyncprobe")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
		os.Exit(1)
	}
	defer os.Remove(filepath.Join(*dir, filepath.Base(f.Name())))
	defer f.Close()
	buf := make([]byte, *size)
	var lat []time.Duration
	stop := time.Now().Add(*duration)
	for time.Now().Before(stop) {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
			os.Exit(1)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			fmt.Fprintln(os.Stderr, "fsyncprobe:", err)
			os.Exit(1)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	p := func(q float64) float64 {
		i := min(int(float64(len(lat))*q), len(lat)-1)
		return float64(lat[i]) / 1e6
	}
	fmt.Printf("fsyncprobe syncs=%d per_sec=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
		len(lat), float64(len(lat))/duration.Seconds(), p(0.5), p(0.99), float64(lat[len(lat)-1])/1e6)
}
