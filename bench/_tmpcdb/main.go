// Command concurrencydb runs the server: flags and config, both listeners,
// signals and an orderly stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/persist"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// options are the parsed flags and config, validated before anything on
// disk is touched.
type options struct {
	cfg fileConfig
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("concurrencydb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (default ./config.yml when present)")
	data := fs.String("data", "", "data directory (overrides data_dir)")
	httpAddr := fs.String("http", "", `HTTP listen address (overrides http.addr; "off" disables)`)
	respAddr := fs.String("resp", "", `RESP listen address (overrides resp.addr; "off" disables)`)
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	path := *configPath
	if path == "" {
		if _, err := os.Stat("config.yml"); err == nil {
			path = "config.yml"
		}
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return options{}, err
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{*httpAddr, &cfg.HTTP.Addr}, {*respAddr, &cfg.RESP.Addr}} {
		switch o.flag {
		case "":
		case "off":
			*o.dst = ""
		default:
			*o.dst = o.flag
		}
	}
	if tok, ok := os.LookupEnv("CONCURRENCYDB_TOKEN"); ok {
		cfg.Auth.Token = tok
	}
	if err := cfg.validate(); err != nil {
		return options{}, err
	}
	return options{cfg: cfg}, nil
}

func run(args []string, stderr io.Writer) int {
	opts, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "concurrencydb:", err)
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, opts.cfg, log); err != nil {
		fmt.Fprintln(stderr, "concurrencydb:", err)
		return 1
	}
	return 0
}

// serve opens the store, serves until ctx ends, then stops in order:
// listeners, in-flight requests, the store (final commit), Pebble.
func serve(ctx context.Context, cfg fileConfig, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	db, err := persist.Open(cfg.DataDir, persist.Options{
		CacheBytes:    cfg.Storage.BlockCacheBytes,
		MemTableBytes: uint64(cfg.Storage.MemtableBytes),
	})
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := core.Open(db, core.Config{
		MaxValueBytes: cfg.MaxValueBytes,
		MaxKeyBytes:   cfg.Limits.MaxKeyBytes,
		MaxDuration:   seconds(cfg.Limits.MaxDuration),
		MaxWait:       seconds(cfg.Limits.MaxWait),
		NoSync:        !cfg.Storage.Fsync,
		CacheEntries:  cfg.Storage.CacheEntries,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	if !cfg.Storage.Fsync {
		log.Warn("storage.fsync is false: writes are acknowledged before they are on disk")
	}
	auth := core.Auth{Token: cfg.Auth.Token, Accounts: cfg.Auth.Accounts}

	errc := make(chan error, 2)
	var httpSrv *http.Server
	if cfg.HTTP.Addr != "" {
		ln, err := net.Listen("tcp", cfg.HTTP.Addr)
		if err != nil {
			return fmt.Errorf("http listener: %w", err)
		}
		httpSrv = &http.Server{
			Handler:           httpapi.New(store, httpapi.Config{Auth: auth}),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
		}
		log.Info("http listening", "addr", ln.Addr().String())
		go func() { errc <- httpSrv.Serve(ln) }()
	}
	stopRESP, err := startRESP(cfg, store, auth, log, errc)
	if err != nil {
		return err
	}
	log.Info("concurrencydb ready", "data", cfg.DataDir, "fsync", cfg.Storage.Fsync)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
	}
	store.StopWaiters()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if httpSrv != nil {
		_ = httpSrv.Shutdown(shutdownCtx)
	}
	stopRESP()
	if err := store.Close(); err != nil {
		log.Error("store close", "err", err)
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
