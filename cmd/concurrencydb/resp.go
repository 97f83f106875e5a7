package main

import (
	"log/slog"

	"github.com/concurrencydb/concurrencydb/core"
)

// startRESP starts the RESP listener when configured and returns its stop.
func startRESP(cfg fileConfig, store *core.Store, auth core.Auth, log *slog.Logger, errc chan<- error) (func(), error) {
	return func() {}, nil
}
