package resp

import (
	"context"
	"net"

	"github.com/tidwall/redcon"
)

// Graceful shutdown: no new connections, every command already read runs
// and its reply is written, then each connection closes.

// Shutdown stops accepting connections and lets every connection finish
// the pipeline it is running: an idle connection is closed at once, a busy
// one right after its replies are flushed (R1 still holds: replies wait
// for their fsync). A command that arrives afterwards is answered with an
// error. When ctx ends first, Shutdown closes everything as Close does.
//
// NB: a blocked MLOCK keeps its connection busy; the caller answers those
// first (core.Store.StopWaiters), or Shutdown waits for ctx.
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
		// Not s.rs.Close: redcon closes every connection as soon as its
		// accept loop ends; drainListener holds that loop until Close.
		_ = ln.Close()
	}
	for _, c := range clients {
		// A connection that turns busy after this load sees draining in
		// enter and closes itself; one busy now closes itself in leave.
		if !c.busy.Load() {
			c.nc.Conn.Close()
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

// enter marks c busy for the pipeline handle is about to run; it reports
// false (and answers an error) once the server is shutting down.
func (s *Server) enter(rc redcon.Conn, c *client) bool {
	c.busy.Store(true)
	if s.draining.Load() {
		rc.WriteError("ERR server is shutting down")
		return false
	}
	return true
}

// leave ends the busy mark; during shutdown it flushes the replies and
// closes the connection.
func (s *Server) leave(rc redcon.Conn, c *client) {
	c.busy.Store(false)
	if s.draining.Load() {
		rc.Close() // redcon's Close flushes first
	}
}

// drainListener keeps redcon's accept loop from ending during Shutdown:
// when the loop ends, redcon closes every connection at once, also those
// still writing their replies. After Shutdown closed the listener, Accept
// waits for Close (which cancels s.ctx) before it reports the error.
type drainListener struct {
	net.Listener
	s *Server
}

func (l *drainListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil && l.s.draining.Load() {
		<-l.s.ctx.Done()
	}
	return nc, err
}
