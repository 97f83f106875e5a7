package resp

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/concurrencydb/concurrencydb/core"
)

// handlers binds each command of the table to its handler. Tests check
// the two agree both ways (STYLE 5).
func handlers() map[string]func(*call) {
	return map[string]func(*call){
		// connection.go
		"PING": cmdPing, "ECHO": cmdEcho, "QUIT": cmdQuit, "HELLO": cmdHello,
		"AUTH": cmdAuth, "SELECT": cmdSelect, "CLIENT": cmdClient,
		// info.go
		"INFO": cmdInfo, "CONFIG": cmdConfig, "TIME": cmdTime, "ROLE": cmdRole, "DBSIZE": cmdDBSize,
		"FLUSHDB": cmdFlushDB, "FLUSHALL": cmdFlushAll, "WAITAOF": cmdWaitAOF, "WAIT": cmdWait,
		"COMMAND": cmdCommand,
		// strings.go
		"GET": cmdGet, "SET": cmdSet, "SETNX": cmdSetNX, "SETEX": cmdSetEX,
		"PSETEX": cmdPSetEX, "GETSET": cmdGetSet, "GETDEL": cmdGetDel,
		"GETEX": cmdGetEx, "MGET": cmdMGet, "MSET": cmdMSet, "MSETNX": cmdMSetNX,
		"APPEND": cmdAppend, "STRLEN": cmdStrLen, "GETRANGE": cmdGetRange,
		"SETRANGE": cmdSetRange, "DELEX": cmdDelEx,
		// counters.go
		"INCR": cmdIncr, "INCRBY": cmdIncrBy, "DECR": cmdDecr, "DECRBY": cmdDecrBy,
		"INCRBYFLOAT": cmdIncrByFloat, "CTR.ADD": cmdCtrAdd, "CTR.GET": cmdCtrGet,
		// keyspace.go
		"DEL": cmdDel, "UNLINK": cmdDel, "EXISTS": cmdExists, "TYPE": cmdType,
		"EXPIRE": cmdExpire, "PEXPIRE": cmdExpire, "EXPIREAT": cmdExpire,
		"PEXPIREAT": cmdExpire, "TTL": cmdTTL, "PTTL": cmdTTL,
		"EXPIRETIME": cmdTTL, "PEXPIRETIME": cmdTTL, "PERSIST": cmdPersist,
		"KEYS": cmdKeys, "SCAN": cmdScan, "RENAME": cmdRename,
		"RENAMENX": cmdRename, "RANDOMKEY": cmdRandomKey,
		// sequences.go
		"SEQ.NEXT": cmdSeqNext, "SEQ.GET": cmdSeqGet, "SEQ.RESET": cmdSeqReset,
		// kv.go
		"KV.GET": cmdKVGet, "KV.SET": cmdKVSet, "KV.DEL": cmdKVDel,
		// locks.go
		"LOCK.ACQUIRE": cmdLockAcquire, "LOCK.GET": cmdLockGet,
		"LOCK.RELEASE": cmdLockRelease,
		// mutex.go
		"MLOCK": cmdMLock, "MUNLOCK": cmdMUnlock, "MLOCK.EXTEND": cmdMLockExtend,
		// multi.go
		"MULTI": cmdMulti, "EXEC": cmdExec, "DISCARD": cmdDiscard,
		"WATCH": cmdWatch, "UNWATCH": cmdUnwatch,
	}
}

type command struct {
	spec  core.CommandSpec
	lname string // lower-case name, as Redis prints it in errors
	h     func(*call)
}

// buildCommands joins the table with the handlers; a table row without a
// handler is a broken invariant (R2), caught by tests before it ships.
func buildCommands() map[string]*command {
	hs := handlers()
	m := make(map[string]*command)
	for _, spec := range core.Commands() {
		h := hs[spec.Name]
		if h == nil {
			panic("resp: R2 violated: no handler for " + spec.Name)
		}
		lname := strings.ToLower(spec.Name)
		m[lname] = &command{spec: spec, lname: lname, h: h}
	}
	return m
}

// sortedCommands is the table in name order.
func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.cmds))
	for _, c := range s.cmds {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lname < out[j].lname })
	return out
}

// listedBy is COMMAND LIST FILTERBY's test: MODULE (none is loaded),
// ACLCAT (aclCategories, named without the @, as Redis takes them) or
// PATTERN (a glob over the lower-case name, as Redis's, case-insensitive).
func (x *call) listedBy(c *command, by []byte, arg string) bool {
	switch {
	case isWord(by, "MODULE"):
		return false
	case isWord(by, "ACLCAT"):
		return slices.Contains(aclCategories(c.spec), "@"+strings.ToLower(arg))
	case isWord(by, "PATTERN"):
		return core.MatchGlob(strings.ToLower(arg), c.lname)
	}
	return false
}

// getKeys answers COMMAND GETKEYS for args (a command and its arguments)
// from the table's key positions, with Redis's errors.
func (x *call) getKeys(args [][]byte) {
	c := x.s.lookup(args[0])
	switch {
	case c == nil:
		x.errorText("ERR Invalid command specified")
		return
	case c.spec.FirstKey == 0: // before the count, as Redis checks
		x.errorText("ERR The command has no key arguments")
		return
	case c.spec.Arity > 0 && len(args) != c.spec.Arity || c.spec.Arity < 0 && len(args) < -c.spec.Arity:
		x.errorText("ERR Invalid number of arguments specified for command")
		return
	}
	idx := c.keyPositions(len(args))
	x.array(len(idx))
	for _, i := range idx {
		x.bulk(args[i])
	}
}

// keyPositions is where the table puts the keys of a call with n
// arguments (the name included).
func (c *command) keyPositions(n int) []int {
	if c.spec.FirstKey == 0 {
		return nil
	}
	last := c.spec.LastKey
	if last < 0 {
		last += n
	}
	var idx []int
	for i := c.spec.FirstKey; i <= last && i < n; i += max(c.spec.Step, 1) {
		idx = append(idx, i)
	}
	return idx
}

var commandHelp = []string{
	"(no subcommand)", "    Return details about all commands.",
	"COUNT", "    Return the total number of commands in this server.",
	"LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]", "    Return a list of all commands in this server.",
	"INFO [<command-name> ...]", "    Return details about the named commands, or all of them.",
	"DOCS [<command-name> ...]", "    Return documentation details about the named commands, or all of them.",
	"GETKEYS <full-command>", "    Return the keys from a full command.",
	"HELP", "    Print this help.",
}

// help answers a container command's HELP as Redis does: a title line,
// then the subcommands and their descriptions.
func (x *call) help(name string, lines []string) {
	x.array(len(lines) + 1)
	x.status(name + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		x.status(l)
	}
}

// aclCategories derives Redis ACL categories from flags and group, for the
// COMMAND reply.
func aclCategories(spec core.CommandSpec) []string {
	var cats []string
	if spec.Flags&core.CmdWrite != 0 {
		cats = append(cats, "@write")
	}
	if spec.Flags&core.CmdReadonly != 0 {
		cats = append(cats, "@read")
	}
	if spec.Flags&core.CmdFast != 0 {
		cats = append(cats, "@fast")
	} else {
		cats = append(cats, "@slow")
	}
	if spec.Flags&core.CmdBlocking != 0 {
		cats = append(cats, "@blocking")
	}
	if spec.Flags&core.CmdAdmin != 0 {
		cats = append(cats, "@admin", "@dangerous")
	}
	switch spec.Group {
	case "string", "counter", "sequence", "kv", "lock":
		cats = append(cats, "@string")
	case "generic":
		cats = append(cats, "@keyspace")
	case "connection":
		cats = append(cats, "@connection")
	case "mutex":
		cats = append(cats, "@concurrencydb")
	case "transactions":
		cats = append(cats, "@transaction")
	}
	return cats
}

// commandInfo writes one command's entry of COMMAND / COMMAND INFO in
// Redis 7's ten-element shape; clients read key positions from it.
func (x *call) commandInfo(c *command) {
	sp := c.spec
	x.array(10)
	x.bulkString(c.lname)
	x.int(int64(sp.Arity))
	flags := sp.Flags.Names()
	x.array(len(flags))
	for _, f := range flags {
		x.status(f)
	}
	x.int(int64(sp.FirstKey))
	x.int(int64(sp.LastKey))
	x.int(int64(sp.Step))
	cats := aclCategories(sp)
	x.array(len(cats))
	for _, cat := range cats {
		x.status(cat)
	}
	x.array(0) // tips
	x.array(0) // key specs
	x.array(0) // subcommands
}

// commandDocs writes one command's COMMAND DOCS map (as a flat array).
func (x *call) commandDocs(c *command) {
	sp := c.spec
	since := sp.Since
	if since == "ext" {
		since = "concurrencydb"
	}
	x.bulkString(c.lname)
	x.array(6)
	x.bulkString("summary")
	x.bulkString(sp.Summary)
	x.bulkString("since")
	x.bulkString(since)
	x.bulkString("group")
	x.bulkString(sp.Group)
}

// allCommandInfo is COMMAND's reply: every command's info.
func (x *call) allCommandInfo() {
	cmds := x.s.sortedCommands()
	x.array(len(cmds))
	for _, c := range cmds {
		x.commandInfo(c)
	}
}

func cmdCommand(x *call) {
	s := x.s
	if len(x.args) == 1 {
		x.allCommandInfo()
		return
	}
	switch {
	case x.is(1, "COUNT") && len(x.args) == 2:
		x.int(int64(len(s.cmds)))
	case x.is(1, "LIST"):
		if len(x.args) != 2 && (len(x.args) != 5 || !x.is(2, "FILTERBY") || !x.is(3, "MODULE") && !x.is(3, "ACLCAT") && !x.is(3, "PATTERN")) {
			x.syntaxErr() // as Redis, for any other form
			return
		}
		var names []string
		for _, c := range s.sortedCommands() {
			if len(x.args) == 2 || x.listedBy(c, x.args[3], string(x.args[4])) {
				names = append(names, c.lname)
			}
		}
		x.array(len(names))
		for _, n := range names {
			x.bulkString(n)
		}
	case x.is(1, "GETKEYS"):
		if len(x.args) < 4 { // as Redis: the command and at least one argument
			x.out = appendArityErr(x.out, "command|getkeys")
			return
		}
		x.getKeys(x.args[2:])
	case x.is(1, "HELP") && len(x.args) == 2:
		x.help("COMMAND", commandHelp)
	case x.is(1, "INFO"):
		names := x.args[2:]
		if len(names) == 0 { // every command, as COMMAND
			x.allCommandInfo()
			return
		}
		x.array(len(names))
		for _, n := range names {
			if c := s.lookup(n); c != nil {
				x.commandInfo(c)
			} else {
				x.null() // Redis's null bulk
			}
		}
	case x.is(1, "DOCS"):
		var cmds []*command
		if len(x.args) == 2 {
			cmds = s.sortedCommands()
		} else {
			for _, n := range x.args[2:] {
				if c := s.lookup(n); c != nil {
					cmds = append(cmds, c)
				}
			}
		}
		x.array(2 * len(cmds))
		for _, c := range cmds {
			x.commandDocs(c)
		}
	default:
		x.badSubcommand("COMMAND")
	}
}

// CommandsMarkdown renders the command table as the Markdown document
// resp/COMMANDS.md (kept up to date by a test; regenerate with
// `go test ./resp -run TestCommandsMarkdownIsUpToDate -update`).
func CommandsMarkdown() string {
	var b strings.Builder
	b.WriteString("# RESP commands\n\n")
	b.WriteString("Generated from the command table (`core/commands.go`) by `go test ./resp -run TestCommandsMarkdownIsUpToDate -update`; do not edit.\n\n")
	b.WriteString("Keys of the form `{acc}:rest` address account `acc`; other keys the connection's current account (`SELECT`, default `0`), so `GET {acme}:user:1` reads what `PUT /db/acme/kv/user:1` wrote. Every write is on disk (fsynced) before its reply. `HELLO 3` answers `NOPROTO`: go-redis, rueidis and `redis-cli -3` fall back to RESP2; a client configured for RESP3 only fails to connect. `MULTI … EXEC` runs the queued commands with no other client's command between them; keyspace walks and the mutex commands are refused inside a transaction.\n\n")
	b.WriteString(`## Examples

` + "```" + `
$ redis-cli SET greeting hello
OK
$ redis-cli SET {acme}:lock:job42 worker-1 NX PX 30000    # take a lock
OK
$ redis-cli DELEX {acme}:lock:job42 IFEQ worker-1         # release it, only if still ours
(integer) 1
$ redis-cli SEQ.NEXT {acme}:orders COUNT 100              # reserve ids 1..100
(integer) 100
$ redis-cli INCR {acme}:orders                            # a sequence only moves forward
(integer) 101
$ redis-cli KV.SET {acme}:cfg v1 VER 0                    # create only
(integer) 7
$ redis-cli MLOCK {acme}:deploy 60 10                     # wait up to 10 s for the mutex
(integer) 1099511627777
$ redis-cli MUNLOCK {acme}:deploy 1099511627777
OK
` + "```" + `

Errors carry Redis's texts and prefixes (` + "`WRONGTYPE`, `NOAUTH`, `WRONGPASS`, `NOPERM`, `CROSSSLOT`" + `) plus ` + "`VERSION`, `LOCKED` and `NOTHELD`" + ` for the extension commands; a command not listed here answers ` + "`ERR unknown command`" + `.

`)
	b.WriteString(CommandTables())
	return b.String()
}

// CommandTables renders the command table as one Markdown table per group:
// the body of COMMANDS.md and of the README's command section (both kept
// up to date by TestCommandsMarkdownIsUpToDate).
func CommandTables() string {
	var b strings.Builder
	groups := []struct{ name, title string }{
		{"connection", "Connection"}, {"server", "Server"}, {"string", "Strings and counters"},
		{"generic", "Keyspace and TTL"}, {"sequence", "Sequences (extension)"},
		{"counter", "Counters (extension)"}, {"kv", "Versioned values (extension)"},
		{"lock", "Persistent locks (extension)"}, {"mutex", "Mutexes (extension)"},
		{"transactions", "Transactions"},
	}
	specs := core.Commands()
	for _, g := range groups {
		fmt.Fprintf(&b, "### %s\n\n| Command | Arguments | Flags | Since | HTTP | Summary |\n|---|---|---|---|---|---|\n", g.title)
		for _, sp := range specs {
			if sp.Group != g.name {
				continue
			}
			http := sp.HTTP
			if http != "" {
				http = "`" + http + "`"
			}
			since := sp.Since
			if since == "ext" {
				since = "—"
			}
			args := sp.Args
			if args != "" {
				args = "`" + strings.ReplaceAll(args, "|", "\\|") + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", sp.Name, args,
				strings.Join(sp.Flags.Names(), ", "), since, http, strings.ReplaceAll(sp.Summary, "|", "\\|"))
		}
		b.WriteString("\n")
	}
	return b.String()
}
