package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/httpapi"
)

// TestBadConfigExits2AndTouchesNothing: a bad config or flag prints one line
// naming the field, exits 2 and creates no data directory.
func TestBadConfigExits2AndTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name  string
		args  []string
		field string
	}{
		{"unknown field", []string{"-config", write("a.yml", "bogus: 1\n")}, "bogus"},
		{"negative wait", []string{"-config", write("b.yml", "limits:\n  max_wait: -1\n")}, "limits.max_wait"},
		{"zero value size", []string{"-config", write("c.yml", "max_value_bytes: 0\n")}, "max_value_bytes"},
		{"bad http addr", []string{"-http", "nonsense"}, "http.addr"},
		{"bad resp addr", []string{"-resp", "1.2.3.4"}, "resp.addr"},
		{"wrong type", []string{"-config", write("d.yml", "http: 5\n")}, "http"},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yml")}, "-config"},
		{"unknown flag", []string{"-bogus"}, "bogus"},
		{"renamed cache key", []string{"-config", write("e.yml", "storage:\n  cache_entries: 100\n")}, "cache_entries"},
		{"tiny record cache", []string{"-config", write("f.yml", "storage:\n  cache_bytes: 1000\n")}, "storage.cache_bytes"},
		{"no event loop", []string{"-config", write("g.yml", "resp:\n  event_loops: 0\n")}, "resp.event_loops"},
		{"tiny record ring", []string{"-config", write("h.yml", "storage:\n  ring_bytes: 1000\n")}, "storage.ring_bytes"},
		{"no http connection", []string{"-config", write("i.yml", "http:\n  max_conns: 0\n")}, "http.max_conns"},
		// Found by review: each of these used to start.
		{"empty yaml value", []string{"-config", write("j.yml", "http:\n  addr:\n")}, "http.addr"},
		{"second yaml document", []string{"-config", write("k.yml", "log:\n  slow_ms: 5\n---\nstorage: {fsnyc: false}\n")}, "more than one YAML document"},
		{"shared account token", []string{"-config", write("l.yml", "auth:\n  accounts: {alpha: dup, beta: dup}\n")}, "auth.accounts."},
		{"account token is the global one", []string{"-config", write("m.yml", "auth:\n  token: t0k\n  accounts: {alpha: t0k}\n")}, "auth.accounts.alpha"},
		{"token with spaces", []string{"-config", write("n.yml", "auth:\n  token: \" spaced \"\n")}, "auth.token"},
		// Found by review: HTTP trims Unicode spaces from a bearer token,
		// so these worked over RESP only.
		{"token with a no-break space", []string{"-config", write("n2.yml", "auth:\n  token: \"tok\\u00a0\"\n")}, "auth.token"},
		{"token with a C1 control", []string{"-config", write("n3.yml", "auth:\n  accounts: {alpha: \"a\\u0085b\"}\n")}, "auth.accounts.alpha"},
		{"account with braces", []string{"-config", write("o.yml", "default_account: \"a{b}\"\n")}, "default_account"},
		{"port out of range", []string{"-http", "127.0.0.1:99999"}, "http.addr"},
		{"named port", []string{"-resp", "127.0.0.1:http2"}, "resp.addr"},
		{"two listeners on one address", []string{"-http", "127.0.0.1:7001", "-resp", "127.0.0.1:7001"}, "resp.addr"},
		{"duration below a millisecond", []string{"-config", write("q.yml", "limits:\n  max_duration: 0.0000000001\n")}, "limits.max_duration"},
		{"empty -data", []string{"-data", ""}, "-data"},
		{"empty -http", []string{"-http", ""}, "-http"},
		// Found by a later review: each of these started, crippled.
		{"fraction in an integer", []string{"-config", write("r.yml", "max_value_bytes: 1.9\n")}, "max_value_bytes: must be a whole number"},
		{"fraction in a nested integer", []string{"-config", write("s.yml", "limits:\n  max_key_bytes: 512.7\n")}, "limits.max_key_bytes"},
		{"max_args below a command's longest form", []string{"-config", write("t.yml", "resp:\n  max_args: 2\n")}, "resp.max_args"},
		{"fraction through an alias", []string{"-config", write("v.yml", "log:\n  slow_ms: &x 1.5\nmax_value_bytes: *x\n")}, "max_value_bytes: must be a whole number"},
		{"fraction through a merge key", []string{"-config", write("w.yml", "limits:\n  <<: {max_key_bytes: 2.9}\n")}, "limits.max_key_bytes"},
		{"fraction under a tagged key", []string{"-config", write("z.yml", "limits:\n  !foo max_key_bytes: 2.9\n")}, "limits.max_key_bytes"},
		{"empty value in a merge key", []string{"-config", write("za.yml", "debug:\n  <<: {addr: }\n")}, "debug.addr: has no value"},
		{"recursive alias", []string{"-config", write("x.yml", "log: &x {slow_ms: 1, level: *x}\n")}, "log"},
	}
	// A whole number written with an exponent is one (a review found the
	// check above refusing max_value_bytes: 1e6, which used to start).
	if o, err := parse([]string{"-config", write("u.yml", "max_value_bytes: 1e6\n")}, io.Discard); err != nil || o.cfg.MaxValueBytes != 1000000 {
		t.Fatalf("max_value_bytes: 1e6 = %d, %v", o.cfg.MaxValueBytes, err)
	}
	// A merged fraction that the mapping overrides is not read (review).
	if o, err := parse([]string{"-config", write("y.yml", "limits:\n  <<: {max_key_bytes: 2.9}\n  max_key_bytes: 300\n")}, io.Discard); err != nil || o.cfg.Limits.MaxKeyBytes != 300 {
		t.Fatalf("an overridden merge key = %d, %v", o.cfg.Limits.MaxKeyBytes, err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"-data", data}, tc.args...) // a -data of tc's wins
			code := run(args, &stderr)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.field) {
				t.Fatalf("error %q does not name %q", stderr.String(), tc.field)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("data dir was created by a bad configuration")
			}
		})
	}
}

// TestFlagsAndEnvOverrideConfig checks -data, -http, -resp and
// CONCURRENCYDB_TOKEN win over the file.
func TestFlagsAndEnvOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yml")
	os.WriteFile(p, []byte("data_dir: /from/file\nhttp:\n  addr: 127.0.0.1:1\nresp:\n  addr: 127.0.0.1:2\nauth:\n  token: file\n"), 0o644)
	t.Setenv("CONCURRENCYDB_TOKEN", "env")
	o, err := parse([]string{"-config", p, "-data", "/from/flag", "-http", "127.0.0.1:3", "-resp", "off"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.DataDir != "/from/flag" || c.HTTP.Addr != "127.0.0.1:3" || c.RESP.Addr != "" || c.Auth.Token != "env" {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

// An address that cannot be bound fails the start before the data
// directory is created (the listeners are bound first), and an empty
// CONCURRENCYDB_TOKEN does not replace the file's token (a deployment
// passing an unset secret would run without auth).
func TestAnUnbindableAddressTouchesNoDataAndAnEmptyEnvTokenIsNone(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	data := filepath.Join(t.TempDir(), "data")
	for _, args := range [][]string{
		{"-http", busy.Addr().String(), "-resp", "off"},
		{"-http", "off", "-resp", busy.Addr().String()},
	} {
		var stderr bytes.Buffer
		if code := run(append(args, "-data", data), &stderr); code != 1 {
			t.Fatalf("%v: exit code %d, want 1; stderr: %s", args, code, stderr.String())
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("%v: the data directory was created before the listener failed: %s", args, stderr.String())
		}
	}
	p := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(p, []byte("auth:\n  token: file\n"), 0o644)
	t.Setenv("CONCURRENCYDB_TOKEN", "")
	o, err := parse([]string{"-config", p}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Auth.Token != "file" {
		t.Fatalf("an empty CONCURRENCYDB_TOKEN made the token %q", o.cfg.Auth.Token)
	}
}

// http.max_conns reaches the HTTP server's limits.
func TestHTTPMaxConnsReachesTheServer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yml")
	os.WriteFile(p, []byte("http:\n  max_conns: 7\n"), 0o644)
	o, err := parse([]string{"-config", p}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if l := httpLimits(o.cfg, nil); l.MaxConns != 7 || l.ReadHeader != httpapi.DefaultLimits.ReadHeader {
		t.Fatalf("httpLimits: %+v", l)
	}
}

// TestRepoConfigIsValidDefaults: the config.yml the README's run command
// uses parses, validates and matches the defaults.
func TestRepoConfigIsValidDefaults(t *testing.T) {
	c, err := loadConfig("../../config.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./data" || c.HTTP.Addr != "127.0.0.1:8080" || c.RESP.Addr != "127.0.0.1:6379" ||
		c.Auth.Token != "" || c.MaxValueBytes != 1048576 || c.Limits.MaxDuration != 86400 || c.Limits.MaxWait != 3600 || !c.Storage.Fsync {
		t.Fatalf("config.yml defaults changed: %+v", c)
	}
	if d := defaultConfig(); fmt.Sprint(d) != fmt.Sprint(c) {
		t.Fatalf("config.yml and defaultConfig() disagree:\n%+v\n%+v", c, d)
	}
}

// built is the server binary, compiled once per test process (building
// costs seconds on 2 cores; several tests run the binary).
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// buildBinary returns the path of the compiled server.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "concurrencydb-bin-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "concurrencydb")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	base   string
	resp   string // RESP address; "" when RESP is off
	stderr *bytes.Buffer
}

func start(t *testing.T, bin, data string) *proc {
	t.Helper()
	return startProc(t, bin, data, "off")
}

// startWithRESP is start with RESP also listening, on a free port.
func startWithRESP(t *testing.T, bin, data string) *proc {
	t.Helper()
	return startProc(t, bin, data, freeAddr(t))
}

func startProc(t *testing.T, bin, data, respAddr string) *proc {
	t.Helper()
	return startWrapped(t, nil, bin, data, respAddr)
}

// startWrapped is startProc with the binary run by the command wrap (nil:
// none), which gets the binary and its arguments.
func startWrapped(t *testing.T, wrap []string, bin, data, respAddr string) *proc {
	t.Helper()
	addr := freeAddr(t)
	args := append(wrap, bin, "-config", "../../config.yml", "-data", data, "-http", addr, "-resp", respAddr)
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, base: "http://" + addr, stderr: &stderr}
	if respAddr != "off" {
		p.resp = respAddr
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && (p.resp == "" || respUp(p.resp)) {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server did not become healthy; stderr:\n%s", stderr.String())
	return nil
}

// respUp reports whether a RESP server answers PING at addr.
func respUp(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

func (p *proc) post(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Post(p.base+path, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (p *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestBinarySurvivesKill9AndSIGTERM: the real binary, driven over HTTP,
// keeps every acknowledged write across kill -9 and across a clean SIGTERM
// stop (exit 0); sequences continue above every value returned (D1, D3).
func TestBinarySurvivesKill9AndSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	data := filepath.Join(t.TempDir(), "data")
	p := start(t, bin, data)
	var last uint64
	for i := 0; i < 20; i++ {
		code, body := p.post(t, "/db/acme/sequence/ids")
		if code != 200 {
			t.Fatalf("POST sequence: %d %s", code, body)
		}
		last, _ = strconv.ParseUint(body, 10, 64)
	}
	if code, body := p.post(t, "/db/acme/lock/job?owner=me&dur=3600"); code != 200 {
		t.Fatalf("lock: %d %s", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()

	p = start(t, bin, data)
	code, body := p.post(t, "/db/acme/sequence/ids")
	if n, _ := strconv.ParseUint(body, 10, 64); code != 200 || n != last+1 {
		t.Fatalf("after kill -9 the sequence gave %d %q, want %d", code, body, last+1)
	}
	if code, body := p.get(t, "/db/acme/lock/job"); code != 200 || !strings.Contains(body, `"owner":"me"`) {
		t.Fatalf("lock lost across kill -9: %d %s", code, body)
	}
	// SIGHUP (a closed terminal) is ignored, as Redis ignores it: by Go's
	// default it killed the process with no shutdown (found by review).
	p.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(100 * time.Millisecond)
	if code, body := p.post(t, "/db/acme/sequence/ids"); code != 200 {
		t.Fatalf("after SIGHUP: %d %s\n%s", code, body, p.stderr.String())
	}
	last++
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("SIGTERM exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	p = start(t, bin, data)
	if _, body := p.get(t, "/db/acme/sequence/ids"); body != strconv.FormatUint(last+1, 10) {
		t.Fatalf("after SIGTERM restart sequence is %q, want %d", body, last+1)
	}
	// A second process on the same data directory is refused.
	cmd := exec.Command(bin, "-config", "../../config.yml", "-data", data, "-http", freeAddr(t), "-resp", "off")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("second process on the same data dir: err=%v out=%s", err, firstLine(out))
	}
}

func firstLine(b []byte) string {
	s := bufio.NewScanner(bytes.NewReader(b))
	if s.Scan() {
		return s.Text()
	}
	return ""
}
