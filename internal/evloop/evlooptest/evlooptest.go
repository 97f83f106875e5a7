// Package evlooptest has test helpers for the event-loop front-ends.
package evlooptest

import (
	"net"
	"sync/atomic"
	"syscall"
)

// FlakyListener fails its first Accept with an error that is not a
// timeout, as EMFILE is, then accepts as the listener it wraps.
type FlakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *FlakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}
