package resp

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redis-cli, when installed, works unchanged: PING, SET, GET, SEQ.NEXT and
// INFO, in its non-interactive mode.
func TestRedisCLIWorks(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (apt-get install redis-tools); skipping")
	}
	e := newEnv(t)
	host, port, _ := net.SplitHostPort(e.addr)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "greeting", "hello world"}, "OK"},
		{[]string{"GET", "greeting"}, "hello world"},
		{[]string{"GET", "missing"}, ""},
		{[]string{"SEQ.NEXT", "{acme}:orders"}, "1"},
		{[]string{"SEQ.NEXT", "{acme}:orders", "COUNT", "10"}, "11"},
		{[]string{"TTL", "greeting"}, "-1"},
		{[]string{"HSET", "h", "f", "v"}, "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v'"},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("redis-cli %v = %q, want %q", tc.args, got, tc.want)
		}
	}
	if info := run("INFO"); !strings.Contains(info, "redis_version:") || !strings.Contains(info, "loading:0") {
		t.Errorf("redis-cli INFO = %q", info)
	}
	// The interactive mode reads COMMAND DOCS for its hints; feed it
	// commands on stdin as a user would.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader("SET {acme}:x 42\nINCR {acme}:x\nINFO keyspace\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli with stdin: %v\n%s", err, out)
	}
	if s := string(out); !strings.Contains(s, "43") || !strings.Contains(s, "dbacme:keys=") {
		t.Errorf("redis-cli with stdin = %q", s)
	}
}
