package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/concurrencydb/concurrencydb/core"
)

// fileConfig mirrors config.yml. Every field has a default here, so an
// empty or missing file is a valid configuration.
type fileConfig struct {
	DataDir string `yaml:"data_dir"`
	HTTP    struct {
		Addr     string `yaml:"addr"`
		MaxConns int    `yaml:"max_conns"`
	} `yaml:"http"`
	RESP struct {
		Addr       string `yaml:"addr"`
		MaxConns   int    `yaml:"max_conns"`
		EventLoops int    `yaml:"event_loops"`
		MaxArgs    int    `yaml:"max_args"`
	} `yaml:"resp"`
	DefaultAccount string `yaml:"default_account"`
	Auth           struct {
		Token    string            `yaml:"token"`
		Accounts map[string]string `yaml:"accounts"`
	} `yaml:"auth"`
	MaxValueBytes int `yaml:"max_value_bytes"`
	Limits        struct {
		MaxDuration float64 `yaml:"max_duration"`
		MaxWait     float64 `yaml:"max_wait"`
		MaxKeyBytes int     `yaml:"max_key_bytes"`
	} `yaml:"limits"`
	Storage struct {
		Fsync           bool  `yaml:"fsync"`
		CacheBytes      int64 `yaml:"cache_bytes"`
		RingBytes       int64 `yaml:"ring_bytes"`
		BlockCacheBytes int64 `yaml:"block_cache_bytes"`
		MemtableBytes   int64 `yaml:"memtable_bytes"`
	} `yaml:"storage"`
	Debug struct {
		Addr string `yaml:"addr"` // pprof listener; "" = off
	} `yaml:"debug"`
	Log struct {
		SlowMs float64 `yaml:"slow_ms"` // slow-operation log threshold; 0 = off
	} `yaml:"log"`
}

func defaultConfig() fileConfig {
	var c fileConfig
	c.DataDir = "./data"
	c.HTTP.Addr = "127.0.0.1:8080"
	c.HTTP.MaxConns = 10000
	c.RESP.Addr = "127.0.0.1:6379"
	c.RESP.MaxConns = 10000
	c.RESP.EventLoops = 1
	c.RESP.MaxArgs = 1 << 20
	c.DefaultAccount = "0"
	c.MaxValueBytes = 1 << 20
	c.Limits.MaxDuration = 86400
	c.Limits.MaxWait = 3600
	c.Limits.MaxKeyBytes = 512
	c.Storage.Fsync = true
	c.Storage.CacheBytes = 16 << 20
	c.Storage.RingBytes = 16 << 20
	c.Storage.BlockCacheBytes = 16 << 20
	c.Storage.MemtableBytes = 4 << 20
	c.Log.SlowMs = 100
	return c
}

// configError names the offending field; main prints it on one line and
// exits 2.
type configError struct{ field, msg string }

func (e *configError) Error() string { return "config: " + e.field + ": " + e.msg }

// loadConfig reads path over the defaults. Unknown fields are errors, so a
// typo is not silently ignored.
func loadConfig(path string) (fileConfig, error) {
	c := defaultConfig()
	if path == "" {
		return c, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, &configError{"-config", err.Error()}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return c, &configError{path, oneLine(err)}
	}
	if len(root.Content) == 0 {
		return c, nil // empty file: all defaults
	}
	// NB: YAML reads "addr:" with nothing after it as null, which the
	// decoder skips, so the default would stay where the file seems to
	// say "empty" ("" disables a listener).
	if f := nullField(root.Content[0]); f != "" {
		return c, &configError{f, `has no value: write "" for an empty one, or remove the line for the default`}
	}
	// NB: the decoder truncates a number with a fraction into an integer
	// field (max_value_bytes: 1.9 would cap every value at 1 byte).
	ints := intFields(reflect.TypeFor[fileConfig](), "")
	// NB: on the values as the decoder resolves them, aliases (*x) and
	// merge keys (<<) included; a recursive alias is the decoder's error.
	var tree map[string]any
	if yaml.Unmarshal(raw, &tree) == nil {
		if f := fractionField(tree, "", ints); f != "" {
			return c, &configError{f, "must be a whole number"}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	err = dec.Decode(&c)
	if err == nil {
		var more yaml.Node
		if dec.Decode(&more) != io.EOF { // a second document would be ignored
			return c, &configError{path, "holds more than one YAML document (---)"}
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		field := path
		if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			if f := fieldAtLine(root.Content[0], line); f != "" {
				field = f
			}
		}
		return c, &configError{field, oneLine(err)}
	}
	return c, nil
}

var lineRE = regexp.MustCompile(`line (\d+):`)

// minMaxArgs is the least resp.max_args: the most arguments a command's
// longest form takes (the name included).
const minMaxArgs = 8

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// nullField returns the dotted path of the first field without a value.
func nullField(n *yaml.Node) string {
	return findField(n, "", func(_ string, _, v *yaml.Node) bool { return v.Kind == yaml.ScalarNode && v.Tag == "!!null" })
}

// fieldAtLine returns the dotted path of the mapping key on line, so an
// error names the field rather than only a line number.
func fieldAtLine(n *yaml.Node, line int) string {
	return findField(n, "", func(_ string, k, _ *yaml.Node) bool { return k.Line == line })
}

// fractionField returns the dotted path of a number with a fraction at
// one of the integer fields ints, or "".
func fractionField(m map[string]any, prefix string, ints map[string]bool) string {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		switch v := m[k].(type) {
		case float64:
			if ints[path] && v != math.Trunc(v) {
				return path
			}
		case map[string]any:
			if f := fractionField(v, path, ints); f != "" {
				return f
			}
		case map[any]any: // a key with a tag of its own (!foo max_key_bytes)
			sm := make(map[string]any, len(v))
			for k, x := range v {
				sm[fmt.Sprint(k)] = x
			}
			if f := fractionField(sm, path, ints); f != "" {
				return f
			}
		}
	}
	return ""
}

// intFields returns the dotted paths of t's integer fields, by yaml tag.
func intFields(t reflect.Type, prefix string) map[string]bool {
	out := map[string]bool{}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if prefix != "" {
			name = prefix + "." + name
		}
		switch f.Type.Kind() {
		case reflect.Int, reflect.Int64:
			out[name] = true
		case reflect.Struct:
			maps.Copy(out, intFields(f.Type, name))
		}
	}
	return out
}

// findField returns the dotted path of the first field (depth first) of
// the mapping n for which is holds, or "".
func findField(n *yaml.Node, prefix string, is func(path string, k, v *yaml.Node) bool) string {
	if n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" { // <<: {…}: its fields are the mapping's own
			if f := findField(v, prefix, is); f != "" {
				return f
			}
			continue
		}
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		if is(path, k, v) {
			return path
		}
		if f := findField(v, path, is); f != "" {
			return f
		}
	}
	return ""
}

// validate checks every field; the first problem is returned.
func (c *fileConfig) validate() error {
	if c.DataDir == "" {
		return &configError{"data_dir", "must not be empty"}
	}
	seen := map[string]string{} // address → field
	for _, a := range []struct{ field, addr string }{{"http.addr", c.HTTP.Addr}, {"resp.addr", c.RESP.Addr}, {"debug.addr", c.Debug.Addr}} {
		if a.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(a.addr)
		if err != nil {
			return &configError{a.field, fmt.Sprintf("%q is not host:port", a.addr)}
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return &configError{a.field, fmt.Sprintf("%q: the port must be a number from 0 to 65535", a.addr)}
		}
		if other, ok := seen[a.addr]; ok && !strings.HasSuffix(a.addr, ":0") {
			return &configError{a.field, fmt.Sprintf("%q is %s's address too", a.addr, other)}
		}
		seen[a.addr] = a.field
	}
	if c.HTTP.Addr == "" && c.RESP.Addr == "" {
		return &configError{"http.addr", "http.addr and resp.addr are both empty: nothing to serve"}
	}
	if c.HTTP.MaxConns < 1 {
		return &configError{"http.max_conns", "must be at least 1"}
	}
	if c.RESP.MaxConns < 1 {
		return &configError{"resp.max_conns", "must be at least 1"}
	}
	if c.RESP.EventLoops < 1 || c.RESP.EventLoops > 256 {
		return &configError{"resp.event_loops", "must be 1 to 256"}
	}
	if c.RESP.MaxArgs < minMaxArgs {
		// Below it, a command's longest form is refused: at 2, SET k v
		// and HELLO 2 AUTH … (what clients send first) were.
		return &configError{"resp.max_args", fmt.Sprintf("must be at least %d: SET key value IFEQ match GET PX ms and SCAN cursor MATCH p COUNT n TYPE t take %d", minMaxArgs, minMaxArgs)}
	}
	if err := core.CheckAccount(c.DefaultAccount); err != nil {
		return &configError{"default_account", err.Error()}
	}
	if err := checkToken(c.Auth.Token); err != nil && c.Auth.Token != "" {
		return &configError{"auth.token", err.Error()}
	}
	// NB: a token names one account: two accounts with one token would
	// each get it at random (map order), and an account token equal to
	// the global one would grant every account.
	owner := map[string]string{c.Auth.Token: "auth.token"}
	for acc, tok := range c.Auth.Accounts {
		if err := core.CheckAccount(acc); err != nil {
			return &configError{"auth.accounts", fmt.Sprintf("account %q: %v", acc, err)}
		}
		if err := checkToken(tok); err != nil {
			return &configError{"auth.accounts." + acc, err.Error()}
		}
		if other, ok := owner[tok]; ok {
			return &configError{"auth.accounts." + acc, "its token is " + other + "'s too: every token must be different"}
		}
		owner[tok] = "auth.accounts." + acc
	}
	if c.MaxValueBytes < 1 || c.MaxValueBytes > 512<<20 {
		return &configError{"max_value_bytes", "must be 1 to 536870912"}
	}
	if err := positiveSeconds("limits.max_duration", c.Limits.MaxDuration); err != nil {
		return err
	}
	if err := positiveSeconds("limits.max_wait", c.Limits.MaxWait); err != nil {
		return err
	}
	if c.Limits.MaxKeyBytes < 1 || c.Limits.MaxKeyBytes > 1<<20 {
		return &configError{"limits.max_key_bytes", "must be 1 to 1048576"}
	}
	if c.Storage.CacheBytes < 1<<20 || c.Storage.CacheBytes > 1<<40 {
		return &configError{"storage.cache_bytes", "must be 1048576 to 1099511627776"}
	}
	if c.Storage.RingBytes != 0 && (c.Storage.RingBytes < 1<<20 || c.Storage.RingBytes > 1<<40) {
		return &configError{"storage.ring_bytes", "must be 0 (off) or 1048576 to 1099511627776"}
	}
	if c.Storage.BlockCacheBytes < 1<<20 {
		return &configError{"storage.block_cache_bytes", "must be at least 1048576"}
	}
	if c.Storage.MemtableBytes < 1<<20 || c.Storage.MemtableBytes > 1<<30 {
		return &configError{"storage.memtable_bytes", "must be 1048576 to 1073741824"}
	}
	if math.IsNaN(c.Log.SlowMs) || c.Log.SlowMs < 0 || c.Log.SlowMs > 3600e3 {
		return &configError{"log.slow_ms", "must be 0 (off) to 3600000 milliseconds"}
	}
	return nil
}

func positiveSeconds(field string, s float64) error {
	if math.IsNaN(s) || s < 0.001 || s > 10*365*86400 {
		return &configError{field, "must be a number of seconds from 0.001 to ten years"}
	}
	return nil
}

// checkToken refuses a token an HTTP client cannot send as it is: one
// that is empty or holds spaces or control characters (Authorization:
// Bearer trims and splits on them, so such a token worked over RESP only).
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("token must not be empty")
	}
	for _, r := range tok {
		// NB: Unicode spaces and C1 controls too: HTTP's bearer() trims
		// them (strings.TrimSpace), so such a token worked over RESP only
		// (found by review).
		if r <= ' ' || unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return errors.New("token must not contain spaces or control characters")
		}
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
