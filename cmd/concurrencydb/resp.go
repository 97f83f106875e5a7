package main

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/internal/fdbudget"
	"github.com/concurrencydb/concurrencydb/metrics"
	"github.com/concurrencydb/concurrencydb/resp"
)

// startRESP serves RESP on ln when configured (nil: off). It returns the
// server's Drain and graceful Shutdown (no-ops when RESP is off) and its
// open-connection count (nil when RESP is off).
func startRESP(cfg fileConfig, ln net.Listener, store *core.Store, auth core.Auth, log *slog.Logger, errc chan<- error, m *metrics.Metrics, slow time.Duration, conns *fdbudget.Budget) (drain func(), stop func(context.Context), clients func() int) {
	if ln == nil {
		return func() {}, func(context.Context) {}, nil
	}
	srv := resp.NewServer(store, resp.Config{
		Auth:           auth,
		DefaultAccount: cfg.DefaultAccount,
		MaxConns:       cfg.RESP.MaxConns,
		Conns:          conns,
		EventLoops:     cfg.RESP.EventLoops,
		MaxArgs:        cfg.RESP.MaxArgs,
		Observe:        func(cmd, status string, d time.Duration) { m.ObserveRequest("resp", cmd, status, d) },
		SlowLog:        slow,
	})
	m.CountRejected("resp", srv.RejectedConns)
	log.Info("resp listening", "addr", ln.Addr().String())
	go func() { errc <- srv.Serve(ln) }()
	stop = func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("resp shutdown", "err", err)
		}
	}
	return srv.Drain, stop, srv.Clients
}
