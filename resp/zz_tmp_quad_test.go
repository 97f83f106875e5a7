package resp

import (
	"strings"
	"testing"
	"time"
)

func TestZZQuadratic(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	const n = 1000000
	frame := "*1000000\r\n$3\r\nFOO\r\n" + strings.Repeat("$1\r\na\r\n", n-1)
	start := time.Now()
	go func() {
		for i := 0; i < len(frame); i += 65536 {
			r.nc.Write([]byte(frame[i:min(len(frame), i+65536)]))
		}
	}()
	r.nc.SetReadDeadline(time.Now().Add(300 * time.Second))
	got := r.readN(1)
	t.Logf("%d bytes, reply %.60q after %v", len(frame), got, time.Since(start))
}
