package resp

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurrencydb/concurrencydb/core"
)

func TestConnectionCommands(t *testing.T) {
	e := newEnv(t)
	c := e.client(func(o *redis.Options) { o.PoolSize = 1 })
	if v := c.Do(bg, "PING", "hi").Val(); v != "hi" {
		t.Fatalf("PING hi = %v", v)
	}
	if v := c.Echo(bg, "x y").Val(); v != "x y" {
		t.Fatalf("ECHO = %v", v)
	}
	// HELLO 2 answers the server map as an array.
	m, err := c.Do(bg, "HELLO", "2").Slice()
	must(t, err)
	if len(m) != 14 || m[0] != "server" || m[4] != "proto" || m[5] != int64(2) {
		t.Fatalf("HELLO 2 = %#v", m)
	}
	wantErr(t, c.Do(bg, "HELLO", "3").Err(), "NOPROTO unknown command 'HELLO'")
	wantErr(t, c.Do(bg, "HELLO", "4").Err(), "NOPROTO")
	// CLIENT
	must(t, c.Do(bg, "CLIENT", "SETNAME", "worker-1").Err())
	if v := c.Do(bg, "CLIENT", "GETNAME").Val(); v != "worker-1" {
		t.Fatalf("CLIENT GETNAME = %v", v)
	}
	wantErr(t, c.Do(bg, "CLIENT", "SETNAME", "has space").Err(), "ERR Client names cannot contain spaces")
	id, err := c.ClientID(bg).Result()
	must(t, err)
	if id <= 0 {
		t.Fatalf("CLIENT ID = %d", id)
	}
	list := c.ClientList(bg).Val()
	if !strings.Contains(list, "name=worker-1") || !strings.Contains(list, "lib-name=go-redis") {
		t.Fatalf("CLIENT LIST = %q", list)
	}
	info, err := c.ClientInfo(bg).Result()
	must(t, err)
	if info.ID != id || info.Name != "worker-1" {
		t.Fatalf("CLIENT INFO = %+v", info)
	}
	wantErr(t, c.Do(bg, "CLIENT", "BOGUS").Err(), "ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.")
	// INFO
	all := c.Info(bg).Val()
	for _, want := range []string{"# Server", "redis_version:", "concurrencydb_mode:durable", "# Clients", "connected_clients:", "# Memory", "used_memory:", "# Persistence", "loading:0", "# Stats", "total_commands_processed:", "record_ring_hits:", "record_disk_reads:", "# Keyspace"} {
		if !strings.Contains(all, want) {
			t.Errorf("INFO lacks %q", want)
		}
	}
	must(t, c.Set(bg, "{acme}:k", "v", time.Hour).Err())
	must(t, c.Set(bg, "k", "v", 0).Err())
	ks := c.Info(bg, "keyspace").Val()
	if !strings.Contains(ks, "db0:keys=1,expires=0") || !strings.Contains(ks, "dbacme:keys=1,expires=1") || strings.Contains(ks, "# Server") {
		t.Fatalf("INFO keyspace = %q", ks)
	}
	// CONFIG GET
	cfg := c.ConfigGet(bg, "*").Val()
	if cfg["appendonly"] != "yes" || cfg["appendfsync"] != "always" || cfg["save"] != "" {
		t.Fatalf("CONFIG GET * = %v", cfg)
	}
	if cfg := c.ConfigGet(bg, "appendfsync").Val(); len(cfg) != 1 {
		t.Fatalf("CONFIG GET appendfsync = %v", cfg)
	}
	wantErr(t, c.ConfigSet(bg, "save", "").Err(), "ERR CONFIG SET is not supported")
	// With storage.fsync off, nothing claims durability.
	nosync := newEnv(t, withCore(func(c *core.Config) { c.NoSync = true })).client()
	if info := nosync.Info(bg, "server", "persistence").Val(); !strings.Contains(info, "concurrencydb_mode:not-durable") || !strings.Contains(info, "aof_enabled:0") {
		t.Fatalf("INFO with fsync off:\n%s", info)
	}
	// TIME
	now, err := c.Time(bg).Result()
	must(t, err)
	if d := time.Since(now); d < -time.Minute || d > time.Minute {
		t.Fatalf("TIME = %v", now)
	}
	// WAITAOF answers at once: [1 local, 0 replicas].
	v, err := c.Do(bg, "WAITAOF", "1", "0", "0").Slice()
	must(t, err)
	if len(v) != 2 || v[0] != int64(1) || v[1] != int64(0) {
		t.Fatalf("WAITAOF = %v", v)
	}
	// WAIT: no replica, at once, even when one is asked for (Redis would
	// wait for the timeout); its arguments are checked as Redis does.
	if n, err := c.Do(bg, "WAIT", "1", "0").Int(); err != nil || n != 0 {
		t.Fatalf("WAIT 1 0 = %d, %v", n, err)
	}
	wantErr(t, c.Do(bg, "WAIT", "0", "-1").Err(), "ERR timeout is negative")
	wantErr(t, c.Do(bg, "WAIT", "x", "0").Err(), "ERR value is not an integer or out of range")
	wantErr(t, c.Do(bg, "WAITAOF", "1", "0", "-1").Err(), "ERR timeout is negative")
	// QUIT replies OK and closes.
	r := e.raw()
	r.send("QUIT\r\nPING\r\n")
	if got := r.readN(1); got != "+OK\r\n" {
		t.Fatalf("QUIT = %q", got)
	}
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := r.nc.Read(make([]byte, 16)); err == nil {
		t.Fatalf("connection still open after QUIT (read %d bytes)", n)
	}
}

// A command not implemented answers Redis's own "unknown command" text,
// never a silent success (R2); arity is checked from the table.
func TestUnknownCommandAndArityErrorsUseRedisTexts_R2(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	wantErr(t, c.Do(bg, "HSET", "h", "f", "v").Err(), "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v' ")
	wantErr(t, c.Do(bg, "NOPE").Err(), "ERR unknown command 'NOPE', with args beginning with: ")
	wantErr(t, c.Do(bg, "GET").Err(), "ERR wrong number of arguments for 'get' command")
	wantErr(t, c.Do(bg, "GET", "a", "b").Err(), "ERR wrong number of arguments for 'get' command")
	wantErr(t, c.Do(bg, "MLOCK", "m", "1").Err(), "ERR wrong number of arguments for 'mlock' command")
	// Case-insensitive names.
	if v := c.Do(bg, "pInG").Val(); v != "PONG" {
		t.Fatalf("pInG = %v", v)
	}
}

// Inline (telnet-style) commands work, as in Redis.
func TestInlineCommandsWork(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	r.send("SET greeting hello\r\nGET greeting\r\nPING\r\n")
	if got := r.readN(3); got != "+OK\r\n$5\r\nhello\r\n+PONG\r\n" {
		t.Fatalf("inline replies = %q", got)
	}
}

func TestLimitsAnswerErrorsAndConnectionKeepsWorking(t *testing.T) {
	e := newEnv(t, withRESP(func(rc *Config) { rc.MaxArgs = 4 }))
	r := e.raw()
	r.send("MSET a 1 b 2\r\nGET a\r\nMSET a 1\r\nGET a\r\n")
	got := r.readN(4)
	if !strings.HasPrefix(got, "-ERR too many arguments: 5, max_args is 4\r\n$-1\r\n+OK\r\n$1\r\n1\r\n") {
		t.Fatalf("replies = %q", got)
	}
}

func TestMaxConnsRefusesTheConnectionOverTheLimit(t *testing.T) {
	e := newEnv(t, withRESP(func(rc *Config) { rc.MaxConns = 1 }))
	first := e.raw()
	first.send("PING\r\n")
	if got := first.readN(1); got != "+PONG\r\n" {
		t.Fatalf("first = %q", got)
	}
	second := e.raw()
	if got := second.readN(1); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("second = %q", got)
	}
	first.nc.Close()
	eventually(t, "first connection gone", func() bool {
		e.srv.mu.Lock()
		defer e.srv.mu.Unlock()
		return len(e.srv.mu.clients) == 0
	})
	third := e.raw()
	third.send("PING\r\n")
	if got := third.readN(1); got != "+PONG\r\n" {
		t.Fatalf("third = %q", got)
	}
}

func withAuth(a core.Auth) envOpt {
	return withRESP(func(rc *Config) { rc.Auth = a })
}

// AUTH with the global token grants every account; an account token
// grants (and selects) its account only (core.Auth).
func TestAuthGlobalAndPerAccountTokens(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root", Accounts: map[string]string{"acme": "acme-token"}}))
	// No token: NOAUTH, except for AUTH/HELLO/QUIT.
	anon := e.client()
	wantErr(t, anon.Get(bg, "k").Err(), "NOAUTH Authentication required.")
	wantErr(t, anon.Do(bg, "AUTH", "wrong").Err(), "WRONGPASS")
	// Global token through go-redis (HELLO 3 AUTH → fallback → AUTH).
	root := e.client(func(o *redis.Options) { o.Password = "root" })
	must(t, root.Set(bg, "{acme}:k", "v", 0).Err())
	must(t, root.Set(bg, "{other}:k", "v", 0).Err())
	must(t, root.FlushAll(bg).Err())
	must(t, root.Set(bg, "{acme}:k", "v", 0).Err())
	// Username + token form.
	user := e.client(func(o *redis.Options) { o.Username = "default"; o.Password = "root" })
	must(t, user.Ping(bg).Err())
	// Account token: its account only, selected at AUTH.
	acme := e.client(func(o *redis.Options) { o.Password = "acme-token"; o.PoolSize = 1 })
	if v := acme.Get(bg, "k").Val(); v != "v" {
		t.Fatalf("account token: GET k = %q (account not selected)", v)
	}
	if v := acme.Get(bg, "{acme}:k").Val(); v != "v" {
		t.Fatalf("account token: GET {acme}:k = %q", v)
	}
	wantErr(t, acme.Get(bg, "{other}:k").Err(), "NOPERM")
	wantErr(t, acme.Do(bg, "SELECT", "other").Err(), "NOPERM")
	wantErr(t, acme.Do(bg, "MLOCK", "{other}:m", "1", "0").Err(), "NOPERM")
	wantErr(t, acme.FlushAll(bg).Err(), "NOPERM")
	// Other accounts' connections and server-wide activity are not shown
	// to an account token: CLIENT LIST lists its account's connections,
	// INFO leaves out the sections that count every account.
	beta := e.client(func(o *redis.Options) { o.Password = "root"; o.PoolSize = 1 })
	must(t, beta.Do(bg, "CLIENT", "SETNAME", "beta-payments-worker").Err())
	if list := acme.ClientList(bg).Val(); strings.Contains(list, "beta-payments-worker") || !strings.Contains(list, "db=acme") {
		t.Fatalf("CLIENT LIST for an account token:\n%s", list)
	}
	if list := root.ClientList(bg).Val(); !strings.Contains(list, "beta-payments-worker") {
		t.Fatalf("CLIENT LIST for the global token lacks a connection:\n%s", list)
	}
	// Asked by id, too.
	betaID := beta.ClientID(bg).Val()
	if list, err := acme.Do(bg, "CLIENT", "LIST", "ID", betaID).Text(); err != nil || list != "" {
		t.Fatalf("CLIENT LIST ID <another account's client> for an account token: %q, %v", list, err)
	}
	if list := root.Do(bg, "CLIENT", "LIST", "ID", betaID).Val(); !strings.Contains(list.(string), "beta-payments-worker") {
		t.Fatalf("CLIENT LIST ID for the global token: %q", list)
	}
	info := acme.Info(bg, "all").Val()
	for _, sec := range []string{"# Clients", "# Stats", "# Commandstats", "# Errorstats", "group_commit_writes", "disk_usage_bytes"} {
		if strings.Contains(info, sec) {
			t.Errorf("INFO for an account token shows %s", sec)
		}
	}
	if !strings.Contains(info, "# Server") || !strings.Contains(root.Info(bg, "all").Val(), "# Stats") {
		t.Errorf("INFO lost its other sections:\n%s", info)
	}
	// An account name is printed escaped: it cannot forge a field or a
	// line of CLIENT LIST or INFO keyspace.
	forger := e.client(func(o *redis.Options) { o.Password = "root"; o.PoolSize = 1 })
	must(t, forger.Do(bg, "SELECT", "x flags=N db=admin\nid=1 name=forged").Err())
	must(t, forger.Set(bg, "k", "v", 0).Err())
	if list := root.ClientList(bg).Val(); strings.Contains(list, "\nid=1 name=forged") || !strings.Contains(list, "db=x%20flags=N%20db=admin%0Aid=1%20name=forged ") {
		t.Fatalf("CLIENT LIST with a forging account name:\n%s", list)
	}
	if ks := root.Info(bg, "keyspace").Val(); !strings.Contains(ks, "dbx%20flags=N%20db=admin%0Aid=1%20name=forged:keys=1") {
		t.Fatalf("INFO keyspace with a forging account name:\n%s", ks)
	}
	// A wrong password fails the go-redis connection.
	bad := e.client(func(o *redis.Options) { o.Password = "nope" })
	wantErr(t, bad.Ping(bg).Err(), "WRONGPASS")
	// HELLO 2 AUTH authenticates too.
	r := e.raw()
	r.send("HELLO 2 AUTH default root\r\nPING\r\n")
	if got := r.readN(2); !strings.HasSuffix(got, "+PONG\r\n") {
		t.Fatalf("HELLO 2 AUTH: %q", got)
	}
}

func TestAuthWithoutConfiguredTokensIsAnError(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	wantErr(t, c.Do(bg, "AUTH", "x").Err(), "ERR AUTH <password> called without any password configured")
	// As Redis without requirepass: the default user takes any password,
	// another user does not exist.
	if err := c.Do(bg, "AUTH", "default", "x").Err(); err != nil {
		t.Fatalf("AUTH default x: %v", err)
	}
	wantErr(t, c.Do(bg, "AUTH", "bob", "x").Err(), "WRONGPASS")
	if err := c.Do(bg, "HELLO", "2", "AUTH", "default", "x").Err(); err != nil {
		t.Fatalf("HELLO 2 AUTH default x: %v", err)
	}
	wantErr(t, c.Do(bg, "HELLO", "2", "AUTH", "bob", "x").Err(), "WRONGPASS")
	// go-redis sends AUTH default <password> itself when given one.
	d := e.client(func(o *redis.Options) { o.Username, o.Password = "default", "x" })
	if err := d.Set(bg, "k", "v", 0).Err(); err != nil {
		t.Fatalf("a client configured with user default and a password: %v", err)
	}
}

// As a Redis master without replicas: INFO replication says role:master
// (HAProxy's Redis health check reads it) and ROLE answers [master 0 []];
// CLIENT LIST takes Redis 7.0's TYPE and ID filters, and CLIENT NO-EVICT
// its on|off (found by a compatibility review: LIST ignored its filters,
// the replication section was empty, ROLE unknown).
func TestReplicationRoleAndClientListFilters(t *testing.T) {
	e := newEnv(t)
	a, b := e.client(), e.client()
	if info := a.Info(bg, "replication").Val(); !strings.Contains(info, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n") {
		t.Fatalf("INFO replication = %q", info)
	}
	if info := a.Info(bg).Val(); !strings.Contains(info, "role:master") || !strings.Contains(info, "run_id:") {
		t.Fatalf("INFO lacks role:master or run_id: %q", info)
	}
	if role, err := a.Do(bg, "ROLE").Slice(); err != nil || len(role) != 3 || role[0] != "master" || role[1] != int64(0) || len(role[2].([]any)) != 0 {
		t.Fatalf("ROLE = %#v, %v", role, err)
	}
	idA, idB := a.ClientID(bg).Val(), b.ClientID(bg).Val()
	list := func(args ...any) (string, error) {
		return a.Do(bg, append([]any{"CLIENT", "LIST"}, args...)...).Text()
	}
	if l, err := list("ID", idB); err != nil || strings.Count(l, "\n") != 1 || !strings.HasPrefix(l, fmt.Sprintf("id=%d ", idB)) {
		t.Fatalf("CLIENT LIST ID %d = %q, %v", idB, l, err)
	}
	// In the order given, repeats kept, unknown ids (0 and negative ones
	// too) skipped, as Redis 7.0.
	if l, err := list("ID", idB, idA, idA, 999999, 0, -1); err != nil || !strings.HasPrefix(l, fmt.Sprintf("id=%d ", idB)) ||
		strings.Count(l, "\n") != 3 || strings.Count(l, fmt.Sprintf("id=%d ", idA)) != 2 {
		t.Fatalf("CLIENT LIST ID b a a unknown 0 -1 = %q, %v", l, err)
	}
	if l, err := list("TYPE", "normal"); err != nil || strings.Count(l, "\n") != 2 {
		t.Fatalf("CLIENT LIST TYPE normal = %q, %v", l, err)
	}
	if l, err := list("TYPE", "pubsub"); err != nil || l != "" {
		t.Fatalf("CLIENT LIST TYPE pubsub = %q, %v", l, err)
	}
	_, err := list("TYPE", "bogus")
	wantErr(t, err, "ERR Unknown client type 'bogus'")
	for _, bad := range []string{"abc", "05", "+5", ""} {
		_, err = list("ID", bad)
		wantErr(t, err, "ERR Invalid client ID")
	}
	_, err = list("TYPE")
	wantErr(t, err, "ERR syntax error")
	_, err = list("BOGUS")
	wantErr(t, err, "ERR syntax error")
	must(t, a.Do(bg, "CLIENT", "NO-EVICT", "on").Err())
	wantErr(t, a.Do(bg, "CLIENT", "NO-EVICT", "maybe").Err(), "ERR syntax error")
	wantErr(t, a.Do(bg, "CLIENT", "NO-EVICT").Err(), "ERR wrong number of arguments for 'client|no-evict' command")
}

// With auth on, a connection that has not authenticated gets Redis's
// framing limits for such clients (since 6.2): more than 10 arguments or a
// bulk of more than 16,384 bytes is a protocol error and the connection
// closes, so a client without a token cannot make the server buffer a
// large frame (R6). A frame after an AUTH that succeeded — in the same
// write, or split anywhere — gets the usual limits.
func TestUnauthenticatedClientsGetRedisSmallFrameLimits_R6(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	big := strings.Repeat("v", 20000)
	bigSet := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n", len(big), big)
	elevenArgs := "*11\r\n$4\r\nMSET\r\n" + strings.Repeat("$1\r\nk\r\n$1\r\nv\r\n", 5)
	for _, tc := range []struct{ name, in, first, refusal string }{
		{"bulk", "PING\r\n" + bigSet, "-NOAUTH", "-ERR Protocol error: unauthenticated bulk length\r\n"},
		{"count", "PING\r\n" + elevenArgs, "-NOAUTH", "-ERR Protocol error: unauthenticated multibulk length\r\n"},
		{"after a failed AUTH", "AUTH nope\r\n" + bigSet, "-WRONGPASS", "-ERR Protocol error: unauthenticated bulk length\r\n"},
	} {
		r := e.raw() // NB: no subtest: r fails e's t
		r.send(tc.in)
		first, rest, _ := strings.Cut(r.expectClosed(), "\r\n")
		if !strings.HasPrefix(first, tc.first) || rest != tc.refusal {
			t.Fatalf("%s: replies = %q then %q, want %s… then %q and the connection closed", tc.name, first, rest, tc.first, tc.refusal)
		}
	}
	if n := e.dbsize(); n != 0 {
		t.Fatalf("%d keys after the refused frames", n)
	}
	// After AUTH: in one write, and split at points of the large frame.
	for _, split := range []int{0, 3, 30, 40, len(bigSet) - 1} {
		r := e.raw()
		whole := "AUTH root\r\n" + bigSet + "GET big\r\n" + elevenArgs
		cut := len("AUTH root\r\n") + split
		r.send(whole[:cut])
		time.Sleep(5 * time.Millisecond)
		r.send(whole[cut:])
		if got, want := r.readN(4), fmt.Sprintf("+OK\r\n+OK\r\n$%d\r\n%s\r\n+OK\r\n", len(big), big); got != want {
			t.Fatalf("split %d: replies = %.200q", split, got)
		}
	}
}

// A connection that has not authenticated cannot make the server hold
// more than ~1 MiB of its input (maxUnauthedBacklog) by not reading its
// NOAUTH replies: once throttled (R7), the input it sends waits unscanned,
// and the usual bound, 16 MiB or two values, let a client without a token
// park that much, large frames included (found by review).
func TestAnUnauthenticatedClientThatDoesNotReadHoldsLittleInput_R7(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	heap := func() int64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse)
	}
	before := heap()
	nc, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// 400,000 PINGs answer 13 MB of NOAUTH, which it does not read: it is
	// throttled; then 12 MiB more.
	chunk := []byte(strings.Repeat("PING\r\n", 10000))
	for sent := 0; sent < 2_400_000+12<<20; sent += len(chunk) {
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := nc.Write(chunk); err != nil {
			break // closed: what the bound does once it is passed
		}
	}
	time.Sleep(300 * time.Millisecond) // the loop reads what was sent
	if grew := heap() - before; grew > 6<<20 {
		t.Fatalf("the server holds %d MB more while an unauthenticated client does not read", grew>>20)
	}
	r := e.raw()
	r.send("AUTH root\r\nPING\r\n")
	if got := r.readN(2); got != "+OK\r\n+PONG\r\n" {
		t.Fatalf("another client: %q", got)
	}
}

// A keyspace command from a connection that has not authenticated is
// answered NOAUTH on the loop: run off it, the input behind it waited
// under the unauthenticated backlog bound (1 MiB), and an AUTH followed by
// a large write in the same pipeline could be cut off (found by review).
func TestAKeyspaceCommandBeforeAuthDoesNotHoldUpTheAuthBehindIt(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	big := strings.Repeat("v", 900<<10)
	for range 5 {
		r := e.raw()
		r.send(fmt.Sprintf("DBSIZE\r\nAUTH root\r\n*5\r\n$4\r\nMSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n$1\r\nj\r\n$%d\r\n%s\r\n", len(big), big, len(big), big))
		if got := r.readN(3); got != "-NOAUTH Authentication required.\r\n+OK\r\n+OK\r\n" {
			t.Fatalf("replies = %.200q", got)
		}
	}
}
