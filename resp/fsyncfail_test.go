package resp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/persist"
	"github.com/concurrencydb/concurrencydb/persist/faultfs"
)

// logCapture is a slog.Handler that keeps the records' messages.
type logCapture struct {
	mu   *sync.Mutex
	buf  *bytes.Buffer
	next slog.Handler
}

func captureLogs(t *testing.T) *logCapture {
	var buf bytes.Buffer
	h := &logCapture{mu: &sync.Mutex{}, buf: &buf, next: slog.NewTextHandler(&buf, nil)}
	old := slog.Default()
	slog.SetDefault(slog.New(h))
	t.Cleanup(func() { slog.SetDefault(old) })
	return h
}

func (h *logCapture) Enabled(ctx context.Context, l slog.Level) bool { return true }
func (h *logCapture) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next.Handle(ctx, r)
}
func (h *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCapture{mu: h.mu, buf: h.buf, next: h.next.WithAttrs(as)}
}
func (h *logCapture) WithGroup(name string) slog.Handler {
	return &logCapture{mu: h.mu, buf: h.buf, next: h.next.WithGroup(name)}
}

func (h *logCapture) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Count(h.buf.String(), substr)
}

func (h *logCapture) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

// TestFsyncFailureRefusesWritesServesReadsLogsOnce_D6: once an fsync fails,
// no write is acknowledged over RESP — single commands, a pipeline and
// concurrent clients all get an error reply, never OK or a number — reads of
// durable data still answer, INFO reports the failed write status, and the
// cause is logged once, not once per write (core D6, R1).
func TestFsyncFailureRefusesWritesServesReadsLogsOnce_D6(t *testing.T) {
	logs := captureLogs(t)
	fs := faultfs.New(vfs.Default)
	e := newEnv(t, func(c *envConfig) { c.persist = persist.Options{FS: fs} })
	ctx := context.Background()
	c := e.client()
	if err := c.Set(ctx, "{a}:durable", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "{a}:untouched", "u", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Incr(ctx, "{a}:ctr").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SEQ.NEXT", "{a}:seq").Err(); err != nil {
		t.Fatal(err)
	}

	fs.FailSyncs()

	// The write whose batch fails, and every write after it: error replies.
	writes := [][]any{
		{"SET", "{a}:durable", "v2"},
		{"INCR", "{a}:ctr"},
		{"SEQ.NEXT", "{a}:seq"},
		{"KV.SET", "{a}:kv", "x"},
		{"LOCK.ACQUIRE", "{a}:lock", "me", "10"},
		{"DEL", "{a}:durable"},
	}
	for _, w := range writes {
		v, err := c.Do(ctx, w...).Result()
		if err == nil {
			t.Fatalf("%v after a failed fsync = %v, want an error reply", w, v)
		}
		if errors.Is(err, redis.Nil) || !strings.HasPrefix(err.Error(), "MISCONF") {
			t.Fatalf("%v after a failed fsync: %v, want a MISCONF error reply", w, err)
		}
	}
	// A pipeline: every reply is an error.
	cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < 8; i++ {
			p.Incr(ctx, "{a}:ctr")
		}
		return nil
	})
	for i, cmd := range cmds {
		if cmd.Err() == nil || !strings.HasPrefix(cmd.Err().Error(), "MISCONF") {
			t.Fatalf("pipelined INCR %d after a failed fsync: %v, want a MISCONF error", i, cmd.Err())
		}
	}
	// Concurrent clients.
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := 0; i < 8; i++ {
		cc := e.client()
		wg.Go(func() {
			for j := 0; j < 10; j++ {
				if cc.Incr(ctx, "{a}:ctr").Err() == nil {
					acked.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := acked.Load(); n != 0 {
		t.Fatalf("%d writes acknowledged after a failed fsync", n)
	}

	// Reads of durable data are still served, unchanged. The key written
	// by the batch whose sync failed may instead answer an error (core
	// refuses to guess whether that write reached the disk), but never v2.
	if v, err := c.Get(ctx, "{a}:durable").Result(); err == nil && v != "v1" {
		t.Fatalf("GET of the key whose write failed = %q, want v1 or an error", v)
	}
	if v, err := c.Get(ctx, "{a}:untouched").Result(); err != nil || v != "u" {
		t.Fatalf("GET untouched = (%q, %v), want u", v, err)
	}
	if v, err := c.Get(ctx, "{a}:ctr").Result(); err != nil || v != "1" {
		t.Fatalf("GET ctr = (%q, %v), want 1", v, err)
	}
	if v, err := c.Do(ctx, "SEQ.GET", "{a}:seq").Result(); err != nil || v != int64(1) {
		t.Fatalf("SEQ.GET = (%v, %v), want 1", v, err)
	}
	if info, err := c.Info(ctx, "persistence").Result(); err != nil || !strings.Contains(info, "aof_last_write_status:err") {
		t.Fatalf("INFO persistence = (%q, %v), want aof_last_write_status:err", info, err)
	}
	if n := logs.count("storage failed; refusing"); n != 1 {
		t.Fatalf("the failed sync was logged %d times, want once:\n%s", n, logs)
	}
	if n := logs.count("level=ERROR"); n != 1 {
		t.Fatalf("%d error lines in the log, want the one naming the failed sync:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), faultfs.ErrInjectedSync.Error()) {
		t.Fatalf("the log does not name the cause:\n%s", logs)
	}
	if err := e.store.Healthy(); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Healthy = %v, want ErrUnavailable", err)
	}
}
