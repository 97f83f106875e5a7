package resp

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// Graceful shutdown: no new connections, every command already read runs
// and its reply is written, then each connection closes.

// Drain begins Shutdown: from now on a new connection is refused and every
// command read is answered "server is shutting down" (R8). A caller that
// stops the store's mutex waiters (core.Store.StopWaiters) drains first,
// so that what a client sent behind its blocked MLOCK is refused, not run
// once the MLOCK is answered.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining.Store(true) // under mu: accept sees it, so conns.Add stops
	s.mu.Unlock()
}

// Shutdown stops accepting connections and lets every connection finish
// the commands it is running: an idle connection is closed at once, a busy
// one right after its replies are written (R1 still holds: replies wait
// for their fsync). A command that arrives afterwards is answered with an
// error. When ctx ends first, Shutdown closes everything as Close does.
//
// NB: a blocked MLOCK keeps its connection busy; the caller answers those
// first (Drain, then core.Store.StopWaiters: without the Drain, a command
// pipelined behind the MLOCK could run once the MLOCK is answered), or
// Shutdown waits for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true) // under mu: accept sees it, so conns.Add stops
	ln := s.mu.ln
	clients := make([]*client, 0, len(s.mu.clients))
	for _, c := range s.mu.clients {
		clients = append(clients, c)
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range clients {
		// A connection its loop has not opened yet is closed by OnOpen.
		if gc := c.conn(); gc != nil {
			_ = gc.Wake(func(gc gnet.Conn, err error) error {
				if err == nil && !c.gone {
					s.drain(c, gc)
				}
				return nil
			})
		}
	}
	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return s.Close()
}

// drain closes c once its queued replies are written. It runs on c's loop,
// after the wake-up answered any unread input with an error (serveInput).
func (s *Server) drain(c *client, gc gnet.Conn) {
	if s.closeWhenIdle(c, gc) == gnet.Close {
		gc.Close()
	}
}
