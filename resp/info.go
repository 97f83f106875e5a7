package resp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
)

// The server commands: INFO, CONFIG, TIME, DBSIZE, FLUSHDB, FLUSHALL,
// WAITAOF.

var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "keyspace"}

// allSections adds the sections Redis prints only for INFO ALL or by name.
var allSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "commandstats", "errorstats", "keyspace"}

// newRunID is a random 40-hex-digit id, as Redis's run_id.
func newRunID() string {
	var b [20]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// serverWide are the INFO sections that count every account's activity:
// an account token does not see them (as HTTP's /metrics needs the global
// token), nor the commit counters of persistence.
var serverWide = map[string]bool{"clients": true, "stats": true, "commandstats": true, "errorstats": true}

// infoWanted is the set of sections INFO's arguments ask for.
func infoWanted(args [][]byte) map[string]bool {
	want := map[string]bool{}
	for _, a := range args {
		sec := strings.ToLower(string(a))
		switch sec {
		case "default":
			for _, s := range infoSections {
				want[s] = true
			}
		case "all", "everything":
			for _, s := range allSections {
				want[s] = true
			}
		default:
			want[sec] = true
		}
	}
	if len(want) == 0 {
		for _, s := range infoSections {
			want[s] = true
		}
	}
	return want
}

// infoWalksKeyspace: INFO with these arguments prints the keyspace
// section, which walks every account's keys (loop.go runs it off the loop).
func infoWalksKeyspace(args [][]byte) bool { return infoWanted(args)["keyspace"] }

func cmdInfo(x *call) {
	want := infoWanted(x.args[1:])
	var b strings.Builder
	for _, sec := range allSections {
		if !want[sec] || x.c.limitedTo != "" && serverWide[sec] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		if err := x.infoSection(&b, sec); err != nil {
			x.err(err)
			return
		}
	}
	x.bulkString(b.String())
}

func (x *call) infoSection(b *strings.Builder, sec string) error {
	s, st := x.s, x.s.store
	line := func(k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	switch sec {
	case "server":
		b.WriteString("# Server\r\n")
		line("redis_version", redisVersion)
		mode := "durable"
		if st.Config().NoSync {
			mode = "not-durable" // storage.fsync: false
		}
		line("concurrencydb_mode", mode)
		line("redis_mode", "standalone")
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.IntSize)
		line("go_version", runtime.Version())
		line("process_id", os.Getpid())
		line("run_id", s.runID)
		line("tcp_port", portOf(x.c.laddr))
		line("uptime_in_seconds", int64(time.Since(s.start).Seconds()))
		line("uptime_in_days", int64(time.Since(s.start).Hours()/24))
	case "clients":
		s.mu.Lock()
		n := len(s.mu.clients)
		s.mu.Unlock()
		b.WriteString("# Clients\r\n")
		line("connected_clients", n)
		line("maxclients", s.cfg.MaxConns)
		line("blocked_clients", st.MutexWaiters())
	case "memory":
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		b.WriteString("# Memory\r\n")
		line("used_memory", m.HeapAlloc)
		line("used_memory_human", fmt.Sprintf("%.2fM", float64(m.HeapAlloc)/(1<<20)))
		line("used_memory_rss", m.Sys)
		line("maxmemory", 0)
		line("maxmemory_policy", "noeviction")
	case "persistence":
		cfg := st.Config()
		sts := st.Stats()
		b.WriteString("# Persistence\r\n")
		line("loading", 0)
		line("async_loading", 0)
		line("rdb_changes_since_last_save", 0)
		line("rdb_bgsave_in_progress", 0)
		line("aof_enabled", boolInt(!cfg.NoSync))
		line("aof_rewrite_in_progress", 0)
		line("aof_last_write_status", writeStatus(st))
		line("fsync_always", boolInt(!cfg.NoSync))
		if x.c.limitedTo != "" {
			break // the rest counts every account's writes (serverWide)
		}
		commits, writes, nanos := sts.Commits.Load(), sts.Writes.Load(), sts.CommitNanos.Load()
		line("group_commits", commits)
		line("group_commit_writes", writes)
		line("group_commit_avg_writes", fmt.Sprintf("%.2f", ratio(writes, commits)))
		line("fsync_total_usec", nanos/1000)
		line("fsync_avg_usec", fmt.Sprintf("%.2f", ratio(nanos, commits)/1000))
		line("disk_usage_bytes", st.DiskUsage())
	case "stats":
		sts := st.Stats()
		b.WriteString("# Stats\r\n")
		line("total_connections_received", s.totalConns.Load())
		line("total_commands_processed", s.totalCmds.Load())
		line("rejected_connections", s.rejectConns.Load())
		line("total_error_replies", s.opStats.errors.Load())
		line("mutex_waiters", st.MutexWaiters())
		line("synced_batches", sts.Commits.Load())
		line("synced_writes", sts.Writes.Load())
		line("record_ring_hits", sts.RingHits.Load())
		line("record_disk_reads", sts.DiskReads.Load())
	case "commandstats":
		b.WriteString("# Commandstats\r\n")
		s.commandStats(b)
	case "errorstats":
		b.WriteString("# Errorstats\r\n")
		s.errorStats(b)
	case "replication":
		// A single server: a master without replicas, as health checks
		// (HAProxy's "info replication" → role:master) expect.
		b.WriteString("# Replication\r\n")
		line("role", "master")
		line("connected_slaves", 0)
		line("master_failover_state", "no-failover")
		line("master_replid", s.runID)
		line("master_replid2", strings.Repeat("0", 40))
		line("master_repl_offset", 0)
		line("second_repl_offset", -1)
		line("repl_backlog_active", 0)
		line("repl_backlog_size", 0)
		line("repl_backlog_first_byte_offset", 0)
		line("repl_backlog_histlen", 0)
	case "keyspace":
		ks, err := st.Keyspace(x.ctx())
		if err != nil {
			return err
		}
		b.WriteString("# Keyspace\r\n")
		for _, a := range ks {
			if x.c.limitedTo != "" && a.Account != x.c.limitedTo {
				continue // an account token sees its own account only
			}
			// One line per account, in Redis's dbN shape: db<account>.
			fmt.Fprintf(b, "db%s:keys=%d,expires=%d,avg_ttl=0\r\n", escapeWord(a.Account), a.Keys, a.Expires)
		}
	}
	return nil
}

func writeStatus(st *core.Store) string {
	if st.Healthy() != nil {
		return "err"
	}
	return "ok"
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return "0"
}

// cmdConfig answers CONFIG GET for the settings clients and tools probe.
func cmdConfig(x *call) {
	if !x.is(1, "GET") {
		if x.is(1, "SET") || x.is(1, "RESETSTAT") || x.is(1, "REWRITE") {
			x.errorText("ERR CONFIG " + strings.ToUpper(string(x.args[1])) + " is not supported; settings come from the config file")
			return
		}
		x.badSubcommand("CONFIG")
		return
	}
	if len(x.args) < 3 {
		x.out = appendArityErr(x.out, "config|get")
		return
	}
	cfg := x.s.store.Config()
	fsync, aof := "always", "yes"
	if cfg.NoSync {
		fsync, aof = "no", "no"
	}
	params := [][2]string{
		{"appendfsync", fsync},
		{"appendonly", aof},
		{"bind", ""},
		{"databases", "16"},
		{"maxclients", strconv.Itoa(x.s.cfg.MaxConns)},
		{"maxmemory", "0"},
		{"maxmemory-policy", "noeviction"},
		{"port", portOf(x.c.laddr)},
		{"proto-max-bulk-len", strconv.Itoa(cfg.MaxValueBytes)},
		{"save", ""},
		{"timeout", "0"},
	}
	var out []string
	for _, p := range params {
		for _, pat := range x.args[2:] {
			if core.MatchGlob(strings.ToLower(string(pat)), p[0]) {
				out = append(out, p[0], p[1])
				break
			}
		}
	}
	x.array(len(out))
	for _, v := range out {
		x.bulkString(v)
	}
}

// cmdRole answers as a Redis master without replicas.
func cmdRole(x *call) {
	x.array(3)
	x.bulkString("master")
	x.int(0)
	x.array(0)
}

func cmdTime(x *call) {
	now := x.s.store.Config().Clock.Now()
	x.array(2)
	x.bulkInt(now.Unix())
	x.bulkInt(int64(now.Nanosecond() / 1000))
}

func cmdDBSize(x *call) {
	n, err := x.store().DBSize(x.ctx(), x.c.account())
	if err != nil {
		x.err(err)
		return
	}
	x.int(int64(n))
}

func flushMode(x *call) bool {
	if len(x.args) > 2 || (len(x.args) == 2 && !x.is(1, "SYNC") && !x.is(1, "ASYNC")) {
		x.syntaxErr()
		return false
	}
	return true
}

func cmdFlushDB(x *call) {
	if !flushMode(x) {
		return
	}
	acc := x.c.account()
	if err := x.s.cfg.Auth.Allow(x.c.limitedTo, acc); err != nil {
		x.err(forbidden(acc))
		return
	}
	if err := x.store().FlushDB(x.ctx(), acc); err != nil {
		x.err(err)
		return
	}
	x.ok()
}

func cmdFlushAll(x *call) {
	if !flushMode(x) {
		return
	}
	if x.c.limitedTo != "" {
		x.errorText("NOPERM FLUSHALL needs the global token")
		return
	}
	if err := x.store().FlushAll(x.ctx()); err != nil {
		x.err(err)
		return
	}
	x.ok()
}

// cmdWaitAOF answers at once: every acknowledged write was fsynced before
// its reply (R1), so there is nothing to wait for.
func cmdWaitAOF(x *call) {
	numlocal, ok := x.intArg(1)
	if !ok || !x.waitArgs(2) {
		return
	}
	if numlocal > 0 && x.s.store.Config().NoSync {
		x.errorText("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")
		return
	}
	x.array(2)
	x.int(int64(boolInt(!x.s.store.Config().NoSync)))
	x.int(0)
}

// cmdWait: no replica acknowledges anything, at once. Redis with none
// answers 0 too, after timeout (for ever, with 0) when numreplicas > 0;
// waiting here would only delay a client that asked for a guarantee this
// server gives otherwise (every write is fsynced before its reply).
func cmdWait(x *call) {
	if x.waitArgs(1) {
		x.int(0)
	}
}

// waitArgs checks WAIT's and WAITAOF's numreplicas and timeout at args[i]
// and args[i+1], answering Redis's error when one is bad.
func (x *call) waitArgs(i int) bool {
	if _, ok := x.intArg(i); !ok {
		return false
	}
	t, ok := x.intArg(i + 1)
	if ok && t < 0 {
		x.errorText("ERR timeout is negative")
	}
	return ok && t >= 0
}
