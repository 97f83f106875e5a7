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
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
	"github.com/concurrencydb/concurrencydb/internal/fdbudget"
	"github.com/concurrencydb/concurrencydb/metrics"
	"github.com/concurrencydb/concurrencydb/persist"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Most of the heap is the record cache (storage.cache_bytes), which
		// lives long; the collector's default lets the heap grow to twice
		// the live data before it runs, which would double the cache's
		// cost in resident memory. 50 caps that at 1.5×, for a few percent
		// more CPU in collection (measured, 1M keys of 100 B loaded: 89 →
		// 72 MB RSS).
		debug.SetGCPercent(50)
	}
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
	var empty error
	fs.Visit(func(f *flag.Flag) {
		if f.Value.String() == "" && empty == nil {
			empty = fmt.Errorf("-%s is empty (\"off\" disables a listener)", f.Name)
		}
	})
	if empty != nil {
		return options{}, empty
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
	// NB: an empty variable is no token: a deployment that passes an
	// unset secret must not switch auth off.
	if tok := os.Getenv("CONCURRENCYDB_TOKEN"); tok != "" {
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
	// SIGHUP (a closed terminal, an operator's kill -HUP) and SIGPIPE (a
	// log reader that went away) are ignored, as Redis ignores them: by
	// Go's default either killed the process at once, with no shutdown,
	// no log line and the client in flight unanswered (found by review).
	// A log write to a closed pipe then fails instead.
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, a second one kills the process at once
		// (the default action) instead of waiting for the orderly stop.
		<-ctx.Done()
		stop()
	}()
	if err := serve(ctx, opts.cfg, log); err != nil {
		fmt.Fprintln(stderr, "concurrencydb:", err)
		return 1
	}
	return 0
}

// shutdownTimeout bounds the orderly stop: in-flight requests get this long
// to finish before their connections are closed under them.
const shutdownTimeout = 10 * time.Second

// serve opens the store, serves until ctx ends, then stops in order:
// mutex waiters are answered with an error, the listeners close and
// in-flight requests finish (both protocols at once, bounded by
// shutdownTimeout), the store commits what is pending (the final sync),
// Pebble closes.
func serve(ctx context.Context, cfg fileConfig, log *slog.Logger) error {
	// Listeners first: an address that cannot be bound (in use, an unknown
	// host) fails the start before the data directory is created or
	// opened. Each server closes its own when it stops; this closes those
	// of a start that fails before (a second Close is harmless).
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	defer lns.close()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	tables, conns := fileBudget(cfg, log)
	db, err := persist.Open(cfg.DataDir, persist.Options{
		CacheBytes:    cfg.Storage.BlockCacheBytes,
		MemTableBytes: uint64(cfg.Storage.MemtableBytes),
		MaxOpenFiles:  tables,
	})
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	dbOpen := true
	closeDB := func() {
		if dbOpen {
			dbOpen = false
			if err := db.Close(); err != nil {
				log.Error("closing the data directory", "err", err)
			}
		}
	}
	defer closeDB() // on the error paths; a shutdown closes it under the watchdog
	m := metrics.New()
	slow := time.Duration(cfg.Log.SlowMs * float64(time.Millisecond))
	store, err := core.Open(db, core.Config{
		MaxValueBytes:  cfg.MaxValueBytes,
		MaxKeyBytes:    cfg.Limits.MaxKeyBytes,
		MaxDuration:    seconds(cfg.Limits.MaxDuration),
		MaxWait:        seconds(cfg.Limits.MaxWait),
		NoSync:         !cfg.Storage.Fsync,
		CacheBytes:     int(cfg.Storage.CacheBytes),
		RingBytes:      ringBytes(cfg.Storage.RingBytes),
		CommitObserver: m.ObserveCommit,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go watchStalls(watchCtx, db, stallLimit, time.Second, log, func() { os.Exit(1) })
	if !cfg.Storage.Fsync {
		log.Warn("storage.fsync is false: writes are acknowledged before they are on disk")
	}
	auth := core.Auth{Token: cfg.Auth.Token, Accounts: cfg.Auth.Accounts}
	if cfg.Auth.Token == "" && len(cfg.Auth.Accounts) > 0 && cfg.HTTP.Addr != "" {
		log.Warn("auth.accounts without auth.token: GET /metrics needs the global token, so nothing can scrape it")
	}

	errc := make(chan error, 2)
	var httpSrv *httpapi.Server
	if ln := lns.http; ln != nil {
		httpSrv = httpapi.NewServer(store, httpapi.Config{
			Auth:      auth,
			Metrics:   m.Handler(),
			Observe:   func(cmd, status string, d time.Duration) { m.ObserveRequest("http", cmd, status, d) },
			SlowLog:   slow,
			ConnState: m.HTTPConnState,
		}, httpLimits(cfg, conns))
		m.CountRejected("http", httpSrv.RefusedConns)
		log.Info("http listening", "addr", ln.Addr().String())
		go func() { errc <- httpSrv.Serve(ln) }()
	}
	drainRESP, stopRESP, respClients := startRESP(cfg, lns.resp, store, auth, log, errc, m, slow, conns)
	m.Attach(store, respClients)
	defer startDebug(lns.debug, log)()
	log.Info("concurrencydb ready", "data", cfg.DataDir, "fsync", cfg.Storage.Fsync)

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
	}
	// The stop is bounded even if a sync hangs on a dying disk: past this
	// the process exits non-zero rather than hang its supervisor.
	watchdog := time.AfterFunc(shutdownTimeout+20*time.Second, func() {
		log.Error("shutdown did not finish in time; exiting")
		os.Exit(1)
	})
	defer watchdog.Stop()
	// Waiters first: a blocked MLOCK would otherwise hold its request, and
	// so the shutdown, until its wait ends. Both servers drain before: what
	// a client sent behind its blocked MLOCK is then refused (R8), not run
	// once the MLOCK is answered; over HTTP, a request read from then on
	// is answered with Connection: close.
	if httpSrv != nil {
		httpSrv.Drain()
	}
	drainRESP()
	store.StopWaiters()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if httpSrv != nil {
		wg.Go(func() {
			if err := httpSrv.Shutdown(shutdownCtx); err != nil {
				log.Warn("http shutdown: closing requests still running", "err", err)
				_ = httpSrv.Close()
			}
		})
	}
	wg.Go(func() { stopRESP(shutdownCtx) })
	wg.Wait()
	if err := store.Close(); err != nil {
		// A failed fsync earlier (D6): the stop is orderly, but the exit
		// code tells the supervisor that writes were refused.
		log.Error("store close", "err", err)
		if serveErr == nil {
			serveErr = err
		}
	}
	// NB: here, not deferred: the final flush may wait in Pebble's write
	// throttle on a failed storage (P7), and the watchdog, stopped when
	// serve returns, must still cover it.
	closeDB()
	log.Info("stopped")
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// listeners are the sockets serve binds before it touches the data
// directory; nil when off.
type listeners struct{ http, resp, debug net.Listener }

func listen(cfg fileConfig) (listeners, error) {
	var lns listeners
	for _, l := range []struct {
		field, addr string
		ln          *net.Listener
	}{{"http.addr", cfg.HTTP.Addr, &lns.http}, {"resp.addr", cfg.RESP.Addr, &lns.resp}, {"debug.addr", cfg.Debug.Addr, &lns.debug}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			lns.close()
			return listeners{}, fmt.Errorf("%s: %w", l.field, err)
		}
		*l.ln = ln
	}
	return lns, nil
}

func (lns listeners) close() {
	for _, ln := range []net.Listener{lns.http, lns.resp, lns.debug} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// stallLimit is how long a commit may wait inside Pebble once Pebble's
// storage has failed (persist P7) before the process exits: the commit
// waits for a flush that fails for as long as the failure lasts (a full
// disk), and the event loop or committer that runs it waits with it, so
// the server answers nothing. Pebble retries the flush a few times a
// second, so a failure that clears (space freed) ends the wait well
// within it.
const stallLimit = 10 * time.Second

// watchStalls checks db every interval until ctx ends, and calls exit
// once it reports a stalled commit (persist P7): a process that exits can
// be restarted by its supervisor, one that hangs cannot. Nothing
// acknowledged is lost by the exit: it is in the write-ahead log, which
// the next start replays.
func watchStalls(ctx context.Context, db *persist.DB, limit, interval time.Duration, log *slog.Logger, exit func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := db.Stalled(limit); err != nil {
			log.Error("storage failed with a write stuck waiting for it; exiting so that the server can be restarted (acknowledged writes are in the log)", "err", err)
			exit()
			return
		}
	}
}

// ringBytes maps storage.ring_bytes to core.Config.RingBytes: in the file 0
// turns the ring off, in core 0 means the default.
func ringBytes(n int64) int {
	if n == 0 {
		return -1
	}
	return int(n)
}

// httpLimits: the HTTP transport's limits, with the configured connection
// limit and the descriptors shared with RESP.
func httpLimits(cfg fileConfig, conns *fdbudget.Budget) httpapi.Limits {
	l := httpapi.DefaultLimits
	l.MaxConns = cfg.HTTP.MaxConns
	l.Conns = conns
	return l
}

// fileBudget divides the open-file limit (internal/fdbudget): the table
// files Pebble may keep open (0: its default), and the connections both
// protocols may hold open together. It warns when these are fewer than the
// sum of max_conns.
func fileBudget(cfg fileConfig, log *slog.Logger) (tables int, conns *fdbudget.Budget) {
	limit, err := fdbudget.Limit()
	if err != nil {
		log.Warn("cannot read the open-file limit; connections are bounded by max_conns only", "err", err)
		return 0, nil
	}
	tables, n := fdbudget.Split(limit)
	// NB: saturating: two max_conns near 2^63 overflowed the sum, which
	// hid the warning (found by review).
	want := 0
	for _, l := range []struct {
		addr string
		max  int
	}{{cfg.RESP.Addr, cfg.RESP.MaxConns}, {cfg.HTTP.Addr, cfg.HTTP.MaxConns}} {
		if l.addr != "" {
			want = min(want, math.MaxInt-l.max) + l.max
		}
	}
	if want > n {
		log.Warn("the open-file limit leaves fewer descriptors than max_conns asks for: beyond that many connections in all, new ones are refused (raise it: ulimit -n, systemd LimitNOFILE)",
			"open_file_limit", limit, "connections", n, "max_conns_total", want)
	}
	return tables, fdbudget.New(n)
}
