package resp

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// R8: a command read after Shutdown began, on a connection whose earlier
// replies still wait in gnet's buffer, is answered "server is shutting
// down" before the connection closes, not met with silence (found by
// review: it was neither run nor answered).
func TestACommandSentWhileShutdownFlushesEarlierRepliesIsAnswered_R8(t *testing.T) {
	e := newEnv(t)
	holder := e.client()
	must(t, holder.Set(bg, "big", strings.Repeat("x", 300<<10), 0).Err())
	nc := smallBufferedConn(t, e)
	_, err := nc.Write([]byte("GET big\r\nGET big\r\nGET big\r\n"))
	must(t, err)
	time.Sleep(200 * time.Millisecond) // served: ~900 KB of replies wait, unread
	holder.Close()
	e.srv.Drain()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond) // the shutdown waits for the client to read
	_, err = nc.Write([]byte("INCR after\r\n"))
	must(t, err)
	time.Sleep(200 * time.Millisecond) // the INCR is read while they wait
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(nc)
	const replies = 3 * (300<<10 + len("$307200\r\n\r\n"))
	t.Logf("read %d bytes (GET replies %d), err %v, tail %q", len(b), replies, err, b[max(0, len(b)-40):])
	<-done
	if len(b) != replies+len("-ERR server is shutting down\r\n") || !strings.HasSuffix(string(b), "-ERR server is shutting down\r\n") {
		t.Fatalf("INCR read after Shutdown began got no reply before EOF (R8: one error reply, never silence)")
	}
	if _, found, err := e.store.Get(bg, "0", "after"); found || err != nil {
		t.Fatalf("the INCR answered as refused ran: found %v, %v", found, err)
	}
}
