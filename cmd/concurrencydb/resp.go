package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/resp"
)

// startRESP starts the RESP listener when configured and returns its stop.
func startRESP(cfg fileConfig, store *core.Store, auth core.Auth, log *slog.Logger, errc chan<- error) (func(), error) {
	if cfg.RESP.Addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.RESP.Addr)
	if err != nil {
		return nil, fmt.Errorf("resp listener: %w", err)
	}
	srv := resp.NewServer(store, resp.Config{
		Auth:           auth,
		DefaultAccount: cfg.DefaultAccount,
		MaxConns:       cfg.RESP.MaxConns,
		MaxArgs:        cfg.RESP.MaxArgs,
	})
	log.Info("resp listening", "addr", ln.Addr().String())
	go func() { errc <- srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}
