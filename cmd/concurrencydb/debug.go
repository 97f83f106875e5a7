package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// startDebug serves pprof on ln when configured (nil: off; opt-in:
// profiles expose internals, so keep it on loopback). It returns its stop.
func startDebug(ln net.Listener, log *slog.Logger) func() {
	if ln == nil {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux}
	log.Info("debug (pprof) listening", "addr", ln.Addr().String())
	go srv.Serve(ln)
	return func() { srv.Close() }
}
