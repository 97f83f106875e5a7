package evloop_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/internal/evloop"
	"github.com/concurrencydb/concurrencydb/internal/evloop/evlooptest"
)

// Accept waits out an accept error and serves the next connection; it
// returns only once the listener fails while stopped says so.
func TestAcceptWaitsOutErrorsAndStopsWhenToldTo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Bool
	served := make(chan net.Conn, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		evloop.Accept(&evlooptest.FlakyListener{Listener: ln}, "test", stopped.Load, func(c net.Conn) { served <- c })
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case sc := <-served:
		sc.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection served after an accept error")
	}
	select {
	case <-done:
		t.Fatal("Accept returned while not stopped")
	default:
	}
	stopped.Store(true) // before Close: Accept reads it once Accept fails
	ln.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return once stopped and closed")
	}
}
