// Package logtest sends the default slog logger's output to a buffer for
// one test. The buffer is safe for the goroutines that log meanwhile (a
// Pebble event listener, an event loop); the logger is restored when the
// test ends. Tests that change the default logger must not run in
// parallel with each other.
package logtest

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
)

// Buffer is what Capture collects, in slog's text format.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Capture makes the default logger write to a new Buffer until t ends.
func Capture(t testing.TB) *Buffer {
	var buf Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}
