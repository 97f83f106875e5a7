package resp

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
)

// redisVersion is the Redis version whose semantics the server follows;
// clients read it from HELLO and INFO to pick features.
const redisVersion = "7.4.0"

func cmdPing(x *call) {
	switch len(x.args) {
	case 1:
		x.status("PONG")
	case 2:
		x.bulk(x.args[1])
	default:
		x.out = appendArityErr(x.out, "ping")
	}
}

func cmdEcho(x *call) { x.bulk(x.args[1]) }

func cmdQuit(x *call) {
	x.ok()
	x.c.quit = true
}

// cmdHello answers HELLO [2] like Redis 7 (the server map as a flat
// array). HELLO 3 answers an error: go-redis falls back to RESP2 on any
// error, rueidis when the text matches "unknown command 'HELLO'".
func cmdHello(x *call) {
	i := 1
	if len(x.args) > 1 {
		v, ok := core.ParseInt(x.args[1])
		if !ok {
			x.errorText("ERR Protocol version is not an integer or out of range")
			return
		}
		if v == 3 {
			x.errorText("NOPROTO unknown command 'HELLO' for protocol 3: this server speaks RESP2 only")
			return
		}
		if v != 2 {
			x.errorText("NOPROTO unsupported protocol version")
			return
		}
		i = 2
	}
	var name []byte
	setName := false
	for ; i < len(x.args); i++ {
		switch {
		case x.is(i, "AUTH") && i+2 < len(x.args):
			if !x.authenticate(x.args[i+1], x.args[i+2]) {
				return
			}
			i += 2
		case x.is(i, "SETNAME") && i+1 < len(x.args):
			name, setName = x.args[i+1], true
			i++
		default:
			x.errorText(fmt.Sprintf("ERR Syntax error in HELLO option '%s'", truncate(x.args[i], 128)))
			return
		}
	}
	if !x.c.authed {
		x.errorText("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
		return
	}
	if setName {
		if !validClientName(name) {
			x.errorText("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		x.c.mu.Lock()
		x.c.mu.name = string(name)
		x.c.mu.Unlock()
	}
	x.array(14)
	x.bulkString("server")
	x.bulkString("concurrencydb")
	x.bulkString("version")
	x.bulkString(redisVersion)
	x.bulkString("proto")
	x.int(2)
	x.bulkString("id")
	x.int(x.c.id)
	x.bulkString("mode")
	x.bulkString("standalone")
	x.bulkString("role")
	x.bulkString("master")
	x.bulkString("modules")
	x.array(0)
}

// authenticate applies a token and writes the error reply when it fails.
// An account token limits the connection to its account and selects it.
func (x *call) authenticate(user, token []byte) bool {
	a := x.s.cfg.Auth
	if !a.Enabled() {
		// As Redis without requirepass: its default user has no password
		// and takes any (clients that always send "default" and a password,
		// HELLO 3 AUTH default x included, work); only the one-argument
		// form is an error there, and any other user does not exist.
		switch {
		case user == nil:
			x.errorText("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return false
		case string(user) != "default":
			x.err(core.ErrBadToken)
			return false
		}
		return true
	}
	acc, err := a.Identify(string(token))
	if err != nil {
		x.err(core.ErrBadToken)
		return false
	}
	x.c.authed, x.c.limitedTo = true, acc
	x.c.mu.Lock()
	x.c.mu.limited = acc
	if acc != "" {
		x.c.mu.account = acc
	}
	x.c.mu.Unlock()
	return true
}

func cmdAuth(x *call) {
	if len(x.args) > 3 {
		x.syntaxErr()
		return
	}
	// AUTH token, or AUTH user token: with tokens configured, the user
	// name is not used (a token names its account).
	var user []byte
	if len(x.args) == 3 {
		user = x.args[1]
	}
	if x.authenticate(user, x.args[len(x.args)-1]) {
		x.ok()
	}
}

func cmdSelect(x *call) {
	acc := string(x.args[1])
	if err := core.CheckAccount(acc); err != nil {
		x.err(err)
		return
	}
	if err := x.s.cfg.Auth.Allow(x.c.limitedTo, acc); err != nil {
		x.err(forbidden(acc))
		return
	}
	x.c.mu.Lock()
	x.c.mu.account = acc
	x.c.mu.Unlock()
	x.ok()
}

func validClientName(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

func cmdClient(x *call) {
	c := x.c
	switch {
	case x.is(1, "SETNAME") && len(x.args) == 3:
		if !validClientName(x.args[2]) {
			x.errorText("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		c.mu.name = string(x.args[2])
		c.mu.Unlock()
		x.ok()
	case x.is(1, "GETNAME") && len(x.args) == 2:
		c.mu.Lock()
		name := c.mu.name
		c.mu.Unlock()
		if name == "" {
			x.null()
		} else {
			x.bulkString(name)
		}
	case x.is(1, "ID") && len(x.args) == 2:
		x.int(c.id)
	case x.is(1, "SETINFO") && len(x.args) == 4:
		v := string(x.args[3])
		if strings.ContainsAny(v, " \r\n") {
			x.errorText("ERR lib-name and lib-ver cannot contain spaces, newlines or special characters.")
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case x.is(2, "LIB-NAME"):
			c.mu.libName = v
		case x.is(2, "LIB-VER"):
			c.mu.libVer = v
		default:
			x.errorText(fmt.Sprintf("ERR Unrecognized option '%s'", truncate(x.args[2], 128)))
			return
		}
		x.ok()
	case x.is(1, "LIST"):
		clients, ok := x.listedClients()
		if !ok {
			return
		}
		var b strings.Builder
		for _, cl := range clients {
			b.WriteString(cl.info())
			b.WriteByte('\n')
		}
		x.bulkString(b.String())
	case x.is(1, "INFO") && len(x.args) == 2:
		x.bulkString(c.info() + "\n")
	case (x.is(1, "NO-EVICT") || x.is(1, "NO-TOUCH")) && len(x.args) == 3:
		if !x.is(2, "ON") && !x.is(2, "OFF") {
			x.errorText("ERR syntax error")
			return
		}
		x.ok() // nothing is evicted, and there is no LRU to touch
	case x.is(1, "HELP") && len(x.args) == 2:
		x.help("CLIENT", clientHelp)
	default:
		x.badSubcommand("CLIENT")
	}
}

var clientHelp = []string{
	"GETNAME", "    Return the name of the current connection.",
	"ID", "    Return the ID of the current connection.",
	"INFO", "    Return information about the current client connection.",
	"LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]", "    Return information about client connections (an account token sees its account's).",
	"NO-EVICT (ON|OFF)", "    Accepted; nothing is evicted.",
	"NO-TOUCH (ON|OFF)", "    Accepted; there is no LRU to touch.",
	"SETINFO <option> <value>", "    Set client meta attr (LIB-NAME, LIB-VER).",
	"SETNAME <name>", "    Assign the name <name> to the current connection.",
	"HELP", "    Print this help.",
}

func sortClients(cs []*client) []*client {
	slices.SortFunc(cs, func(a, b *client) int { return cmp.Compare(a.id, b.id) })
	return cs
}

// listedClients is what CLIENT LIST [TYPE type | ID id ...] lists, as
// Redis 7.0 reads its arguments: every connection here is a normal client
// (no replicas, no pub/sub); IDs are listed in the order given, repeats
// and all, unknown ones skipped. An account token sees its account's
// connections only: the others' names, addresses and commands are
// theirs. It answers the error itself when it returns !ok.
func (x *call) listedClients() ([]*client, bool) {
	var ids []int64
	all := false
	switch {
	case len(x.args) == 2:
		all = true
	case len(x.args) == 4 && x.is(2, "TYPE"):
		switch strings.ToLower(string(x.args[3])) {
		case "normal":
			all = true
		case "master", "replica", "slave", "pubsub":
		default:
			x.errorText(fmt.Sprintf("ERR Unknown client type '%s'", truncate(x.args[3], 128)))
			return nil, false
		}
	case len(x.args) > 3 && x.is(2, "ID"):
		for _, a := range x.args[3:] {
			id, ok := core.ParseInt(a) // Redis's strict integers
			if !ok {
				x.errorText("ERR Invalid client ID")
				return nil, false
			}
			ids = append(ids, id)
		}
	default:
		x.errorText("ERR syntax error")
		return nil, false
	}
	visible := func(cl *client) bool {
		if x.c.limitedTo == "" {
			return true
		}
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.mu.limited == x.c.limitedTo
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	var out []*client
	if all {
		for _, cl := range x.s.mu.clients {
			if visible(cl) {
				out = append(out, cl)
			}
		}
		return sortClients(out), true
	}
	for _, id := range ids {
		if cl, ok := x.s.mu.clients[id]; ok && visible(cl) {
			out = append(out, cl)
		}
	}
	return out, true
}

// info is the client's CLIENT LIST line.
func (c *client) info() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	idle := int64(0)
	if !c.mu.cmdAt.IsZero() {
		idle = int64(now.Sub(c.mu.cmdAt).Seconds())
	}
	cmd := c.mu.lastCmd
	if cmd == "" {
		cmd = "NULL"
	}
	flags := ""
	multi := c.txShown.Load() - 1 // -1: not in MULTI
	if multi >= 0 {
		flags += "x"
	}
	if c.blocked.Load() {
		flags += "b"
	}
	if flags == "" {
		flags = "N"
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=%s db=%s sub=0 psub=0 ssub=0 multi=%d watch=%d qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=2 lib-name=%s lib-ver=%s",
		c.id, c.addr, c.laddr, c.mu.name, int64(now.Sub(c.created).Seconds()), idle, flags, escapeWord(c.mu.account), multi, c.watchShown.Load(), cmd, c.mu.libName, c.mu.libVer)
}

// escapeWord percent-encodes the bytes of an account name that would end
// or forge a field where CLIENT LIST and INFO print it as a word: spaces,
// control characters, and '%' itself, so that the encoding is unambiguous.
func escapeWord(s string) string {
	if !strings.ContainsFunc(s, needsEscape) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; needsEscape(rune(c)) {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func needsEscape(r rune) bool { return r <= ' ' || r == 0x7f || r == '%' }
