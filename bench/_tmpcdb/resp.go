package main

import (
	"log/slog"
	"net"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/resp"
)

func startRESP(cfg fileConfig, store *core.Store, auth core.Auth, log *slog.Logger, errc chan<- error) (func(), error) {
	if cfg.RESP.Addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.RESP.Addr)
	if err != nil {
		return nil, err
	}
	s := resp.NewServer(store, resp.Config{Auth: auth, DefaultAccount: cfg.DefaultAccount, MaxConns: cfg.RESP.MaxConns, MaxArgs: cfg.RESP.MaxArgs})
	go func() { errc <- s.Serve(ln) }()
	log.Info("resp listening", "addr", ln.Addr().String())
	return func() { s.Close() }, nil
}
