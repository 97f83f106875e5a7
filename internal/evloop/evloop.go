// Package evloop holds what the two event-loop front-ends (resp and
// httpapi, which serve connections on gnet loops) share and that has
// nothing of either protocol: the accept loop and gnet's logger.
//
// Invariant: an accept error never stops a listener that was not closed
// (EMFILE and the like are waited out, as net/http does).
package evloop

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// acceptBackoff is how long Accept waits after an error before it tries
// again.
const acceptBackoff = 50 * time.Millisecond

// Accept hands every connection ln accepts to serve until ln fails while
// stopped reports true (Close or Shutdown closed it); then it returns.
// Any other error (out of file descriptors: not a timeout, and not
// permanent either) is logged and waited out: one client using up the
// descriptors must not stop the server.
func Accept(ln net.Listener, component string, stopped func() bool, serve func(net.Conn)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if stopped() {
				return
			}
			slog.Warn("accept failed; retrying", "component", component, "err", err)
			time.Sleep(acceptBackoff)
			continue
		}
		serve(nc)
	}
}

// Logger sends gnet's log lines to slog (errors and warnings only), with
// the component named.
type Logger string

func (Logger) Debugf(string, ...any) {}
func (Logger) Infof(string, ...any)  {}
func (l Logger) Warnf(format string, args ...any) {
	slog.Warn(fmt.Sprintf(format, args...), "component", string(l))
}
func (l Logger) Errorf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", string(l))
}
func (l Logger) Fatalf(format string, args ...any) {
	slog.Error(fmt.Sprintf(format, args...), "component", string(l))
}
