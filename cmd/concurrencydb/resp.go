package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/metrics"
	"github.com/concurrencydb/concurrencydb/resp"
)

// startRESP starts the RESP listener when configured. It returns its
// graceful stop and its open-connection count (nil when RESP is off).
func startRESP(cfg fileConfig, store *core.Store, auth core.Auth, log *slog.Logger, errc chan<- error, m *metrics.Metrics, slow time.Duration) (func(context.Context), func() int, error) {
	if cfg.RESP.Addr == "" {
		return func(context.Context) {}, nil, nil
	}
	ln, err := net.Listen("tcp", cfg.RESP.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("resp listener: %w", err)
	}
	srv := resp.NewServer(store, resp.Config{
		Auth:           auth,
		DefaultAccount: cfg.DefaultAccount,
		MaxConns:       cfg.RESP.MaxConns,
		EventLoops:     cfg.RESP.EventLoops,
		MaxArgs:        cfg.RESP.MaxArgs,
		Observe:        func(cmd, status string, d time.Duration) { m.ObserveRequest("resp", cmd, status, d) },
		SlowLog:        slow,
	})
	m.CountRejected("resp", srv.RejectedConns)
	log.Info("resp listening", "addr", ln.Addr().String())
	go func() { errc <- srv.Serve(ln) }()
	stop := func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("resp shutdown", "err", err)
		}
	}
	return stop, srv.Clients, nil
}
