package core

// The command table: one row per command, as data (STYLE 5). RESP dispatch
// (arity, auth and flag policy), the COMMAND / COMMAND INFO / COMMAND DOCS
// replies, cluster-style key routing and the generated command list
// (resp/COMMANDS.md) all read it; resp's tests fail when a row has no
// handler or no summary, or a handler has no row.

// CommandFlags are the policy flags of a command.
type CommandFlags uint16

// Command flags, named as in Redis's COMMAND reply (CmdKeyspace excepted).
const (
	CmdWrite    CommandFlags = 1 << iota // changes the keyspace
	CmdReadonly                          // reads the keyspace only
	CmdFast                              // O(1) or O(log n)
	CmdBlocking                          // may block the connection
	CmdAdmin                             // administrative
	CmdNoAuth                            // allowed before AUTH
	CmdLoading                           // allowed while loading
	CmdStale                             // allowed on a stale replica
	// CmdKeyspace: walks an account's whole keyspace (KEYS, SCAN, DBSIZE,
	// FLUSHDB, …), so its time grows with the data. Not a Redis flag (not
	// in COMMAND's reply): front-ends run such a command where it cannot
	// hold up other clients (resp runs it off its event loop).
	CmdKeyspace
)

var flagNames = []struct {
	f    CommandFlags
	name string
}{
	{CmdWrite, "write"}, {CmdReadonly, "readonly"}, {CmdFast, "fast"},
	{CmdBlocking, "blocking"}, {CmdAdmin, "admin"}, {CmdNoAuth, "no_auth"},
	{CmdLoading, "loading"}, {CmdStale, "stale"},
}

// Names lists the flags as Redis spells them.
func (f CommandFlags) Names() []string {
	out := []string{}
	for _, n := range flagNames {
		if f&n.f != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// CommandSpec describes one command.
type CommandSpec struct {
	Name  string // upper case
	Arity int    // argument count including the name; negative: at least -Arity
	Flags CommandFlags
	// Key positions in the argument list (the name is 0): first, last
	// (negative counts from the end) and step. All 0 for keyless commands.
	FirstKey, LastKey, Step int
	Group                   string // connection, server, string, generic, sequence, counter, kv, lock, mutex
	Since                   string // Redis version that introduced it, or "ext" for extension commands
	Args                    string // argument syntax after the name
	Summary                 string
	HTTP                    string // the HTTP endpoint serving the same operation, "" when none
}

const (
	rw  = CmdWrite
	ro  = CmdReadonly
	rwf = CmdWrite | CmdFast
	rof = CmdReadonly | CmdFast
	cn  = CmdFast | CmdLoading | CmdStale
)

// Commands returns the command table in documentation order.
func Commands() []CommandSpec {
	return []CommandSpec{
		// connection
		{"PING", -1, cn, 0, 0, 0, "connection", "1.0.0", "[message]", "Answers PONG, or the message.", ""},
		{"ECHO", 2, cn, 0, 0, 0, "connection", "1.0.0", "message", "Answers the message.", ""},
		{"QUIT", -1, cn | CmdNoAuth, 0, 0, 0, "connection", "1.0.0", "", "Closes the connection after replying OK.", ""},
		{"HELLO", -1, cn | CmdNoAuth, 0, 0, 0, "connection", "6.0.0", "[protover [AUTH username password] [SETNAME name]]", "Handshake. Protocol 2 only; HELLO 3 answers an error that clients treat as \"use RESP2\".", ""},
		{"AUTH", -2, cn | CmdNoAuth, 0, 0, 0, "connection", "1.0.0", "[username] token", "Authenticates with a token from the config; an account token grants its account only and selects it.", ""},
		{"SELECT", 2, cn, 0, 0, 0, "connection", "1.0.0", "account", "Sets the connection's current account (any name, not only a number).", ""},
		{"CLIENT", -2, cn, 0, 0, 0, "connection", "2.4.0", "SETNAME name | GETNAME | ID | SETINFO attr value | LIST [TYPE type | ID id ...] | INFO | NO-EVICT on|off | NO-TOUCH on|off | HELP", "Connection properties. A client parked in MLOCK is flagged b in LIST.", ""},
		// server
		{"INFO", -1, cn | CmdKeyspace, 0, 0, 0, "server", "1.0.0", "[section ...]", "Server, clients, memory, persistence, stats, replication (role:master) and keyspace sections (loading:0).", ""},
		{"CONFIG", -2, cn | CmdAdmin, 0, 0, 0, "server", "2.0.0", "GET pattern [pattern ...]", "Answers the settings clients probe (appendonly yes, appendfsync always, save \"\"); CONFIG SET is refused.", ""},
		{"TIME", 1, cn, 0, 0, 0, "server", "2.6.0", "", "The server's time: seconds and microseconds.", ""},
		{"ROLE", 1, cn, 0, 0, 0, "server", "2.8.12", "", "Answers [\"master\", 0, []]: one server, no replicas (INFO replication says role:master).", ""},
		{"DBSIZE", 1, rof | CmdKeyspace, 0, 0, 0, "server", "1.0.0", "", "Counts the keys of the current account.", ""},
		{"FLUSHDB", -1, rw | CmdKeyspace, 0, 0, 0, "server", "1.0.0", "[ASYNC | SYNC]", "Deletes every key of the current account.", ""},
		{"FLUSHALL", -1, rw | CmdAdmin | CmdKeyspace, 0, 0, 0, "server", "1.0.0", "[ASYNC | SYNC]", "Deletes every key of every account (needs the global token).", ""},
		{"WAIT", 3, cn, 0, 0, 0, "server", "3.0.0", "numreplicas timeout", "Answers 0 at once: there are no replicas (Redis would wait for timeout when numreplicas > 0; every write is fsynced before its reply anyway).", ""},
		{"WAITAOF", 4, cn, 0, 0, 0, "server", "7.2.0", "numlocal numreplicas timeout", "Answers [1, 0] at once: every write was fsynced before its reply.", ""},
		{"COMMAND", -1, cn, 0, 0, 0, "server", "2.8.13", "[COUNT | INFO name ... | DOCS [name ...] | LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p] | GETKEYS command arg ... | HELP]", "Describes the commands, from this table.", ""},
		// strings
		{"GET", 2, rof, 1, 1, 1, "string", "1.0.0", "key", "The value, or nil. A sequence reads as its decimal value.", "GET /db/{acc}/kv/{id}"},
		{"SET", -3, rw, 1, 1, 1, "string", "1.0.0", "key value [NX | XX | IFEQ match | IFNE match] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]", "Stores a string. SET key owner NX PX ms is the lock acquire; IFEQ is Redis 8.4's compare-and-set.", "PUT /db/{acc}/kv/{id}"},
		{"SETNX", 3, rwf, 1, 1, 1, "string", "1.0.0", "key value", "SET NX; answers 1 or 0.", ""},
		{"SETEX", 4, rw, 1, 1, 1, "string", "2.0.0", "key seconds value", "SET EX.", ""},
		{"PSETEX", 4, rw, 1, 1, 1, "string", "2.6.0", "key milliseconds value", "SET PX.", ""},
		{"GETSET", 3, rwf, 1, 1, 1, "string", "1.0.0", "key value", "SET GET.", ""},
		{"GETDEL", 2, rwf, 1, 1, 1, "string", "6.2.0", "key", "The value, and deletes the key.", ""},
		{"GETEX", -2, rwf, 1, 1, 1, "string", "6.2.0", "key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]", "The value, and changes its TTL.", ""},
		{"MGET", -2, rof, 1, -1, 1, "string", "1.0.0", "key [key ...]", "The values of several keys of one account.", ""},
		{"MSET", -3, rw, 1, -1, 2, "string", "1.0.1", "key value [key value ...]", "Stores several keys of one account at once.", ""},
		{"MSETNX", -3, rw, 1, -1, 2, "string", "1.0.1", "key value [key value ...]", "MSET only if none of the keys exists; answers 1 or 0.", ""},
		{"APPEND", 3, rwf, 1, 1, 1, "string", "2.0.0", "key value", "Appends; answers the new length.", ""},
		{"STRLEN", 2, rof, 1, 1, 1, "string", "2.2.0", "key", "The length of the value.", ""},
		{"GETRANGE", 4, ro, 1, 1, 1, "string", "2.4.0", "key start end", "A substring of the value.", ""},
		{"SETRANGE", 4, rw, 1, 1, 1, "string", "2.2.0", "key offset value", "Overwrites part of the value; answers the new length.", ""},
		{"INCR", 2, rwf, 1, 1, 1, "string", "1.0.0", "key", "Adds 1. On a sequence: advances it (over HTTP, POST /sequence does; POST /counter refuses a sequence).", "POST /db/{acc}/counter/{id}"},
		{"INCRBY", 3, rwf, 1, 1, 1, "string", "1.0.0", "key increment", "Adds increment. On a sequence: advances it (0 or negative: WRONGTYPE; over HTTP, POST /sequence?count= does).", "POST /db/{acc}/counter/{id}"},
		{"DECR", 2, rwf, 1, 1, 1, "string", "1.0.0", "key", "Subtracts 1 (WRONGTYPE on a sequence).", "POST /db/{acc}/counter/{id}"},
		{"DECRBY", 3, rwf, 1, 1, 1, "string", "1.0.0", "key decrement", "Subtracts decrement (WRONGTYPE on a sequence).", "POST /db/{acc}/counter/{id}"},
		{"INCRBYFLOAT", 3, rwf, 1, 1, 1, "string", "2.6.0", "key increment", "Adds a float.", ""},
		{"DELEX", -2, rwf, 1, 1, 1, "string", "8.4.0", "key [IFEQ match | IFNE match]", "Deletes the key if its value matches: the owner releases its lock without Lua.", ""},
		// keyspace
		{"DEL", -2, rw, 1, -1, 1, "generic", "1.0.0", "key [key ...]", "Deletes keys of one account (a sequence is reset; over HTTP, DELETE /sequence does, DELETE /kv refuses one); answers how many existed.", "DELETE /db/{acc}/kv/{id}"},
		{"UNLINK", -2, rwf, 1, -1, 1, "generic", "4.0.0", "key [key ...]", "DEL.", ""},
		{"EXISTS", -2, rof, 1, -1, 1, "generic", "1.0.0", "key [key ...]", "Counts the keys that exist.", ""},
		{"TYPE", 2, rof, 1, 1, 1, "generic", "1.0.0", "key", "string, sequence or none.", ""},
		{"EXPIRE", -3, rwf, 1, 1, 1, "generic", "1.0.0", "key seconds [NX | XX | GT | LT]", "Sets a TTL (WRONGTYPE on a sequence).", ""},
		{"PEXPIRE", -3, rwf, 1, 1, 1, "generic", "2.6.0", "key milliseconds [NX | XX | GT | LT]", "Sets a TTL in milliseconds.", ""},
		{"EXPIREAT", -3, rwf, 1, 1, 1, "generic", "1.2.0", "key unix-seconds [NX | XX | GT | LT]", "Sets an absolute deadline.", ""},
		{"PEXPIREAT", -3, rwf, 1, 1, 1, "generic", "2.6.0", "key unix-ms [NX | XX | GT | LT]", "Sets an absolute deadline in milliseconds.", ""},
		{"TTL", 2, rof, 1, 1, 1, "generic", "1.0.0", "key", "Seconds left, rounded; -1 without TTL, -2 when absent.", ""},
		{"PTTL", 2, rof, 1, 1, 1, "generic", "2.6.0", "key", "Milliseconds left; -1 without TTL, -2 when absent.", ""},
		{"EXPIRETIME", 2, rof, 1, 1, 1, "generic", "7.0.0", "key", "The deadline in unix seconds.", ""},
		{"PEXPIRETIME", 2, rof, 1, 1, 1, "generic", "7.0.0", "key", "The deadline in unix milliseconds.", ""},
		{"PERSIST", 2, rwf, 1, 1, 1, "generic", "2.2.0", "key", "Removes the TTL.", ""},
		{"KEYS", 2, ro | CmdKeyspace, 0, 0, 0, "generic", "1.0.0", "pattern", "The keys of the current account that match a glob.", ""},
		{"SCAN", -2, ro | CmdKeyspace, 0, 0, 0, "generic", "2.8.0", "cursor [MATCH pattern] [COUNT n] [TYPE type]", "Iterates the current account in key order: a key that exists throughout is returned exactly once.", ""},
		{"RENAME", 3, rw, 1, 2, 1, "generic", "1.0.0", "key newkey", "Moves a key within its account (WRONGTYPE onto a sequence).", ""},
		{"RENAMENX", 3, rwf, 1, 2, 1, "generic", "1.0.0", "key newkey", "RENAME only if newkey is absent.", ""},
		{"RANDOMKEY", 1, ro | CmdKeyspace, 0, 0, 0, "generic", "1.0.0", "", "A key of the current account, or nil.", ""},
		// extension: sequences
		{"SEQ.NEXT", -2, rwf, 1, 1, 1, "sequence", "ext", "key [COUNT n]", "Advances the sequence; answers the new value (with COUNT, the highest of the reserved block).", "POST /db/{acc}/sequence/{id}"},
		{"SEQ.GET", 2, rof, 1, 1, 1, "sequence", "ext", "key", "The sequence's value, or nil.", "GET /db/{acc}/sequence/{id}"},
		{"SEQ.RESET", 2, rwf, 1, 1, 1, "sequence", "ext", "key", "Deletes the sequence: the next SEQ.NEXT answers 1.", "DELETE /db/{acc}/sequence/{id}"},
		// extension: counters
		{"CTR.ADD", 3, rwf, 1, 1, 1, "counter", "ext", "key delta", "Adds delta to the counter; answers the new value.", "POST /db/{acc}/counter/{id}"},
		{"CTR.GET", 2, rof, 1, 1, 1, "counter", "ext", "key", "The counter's value, or nil.", "GET /db/{acc}/counter/{id}"},
		// extension: versioned kv
		{"KV.GET", 2, rof, 1, 1, 1, "kv", "ext", "key", "[value, version], or nil.", "GET /db/{acc}/kv/{id}"},
		{"KV.SET", -3, rwf, 1, 1, 1, "kv", "ext", "key value [VER n] [TTL seconds]", "Stores a value if the version matches (VER 0: create only); answers the new version, or a VERSION error.", "PUT /db/{acc}/kv/{id}"},
		{"KV.DEL", -2, rwf, 1, 1, 1, "kv", "ext", "key [VER n]", "Deletes if the version matches; answers 1 deleted or 0 absent, or a VERSION error.", "DELETE /db/{acc}/kv/{id}"},
		// extension: persistent locks
		{"LOCK.ACQUIRE", 4, rwf, 1, 1, 1, "lock", "ext", "key owner seconds", "Takes or extends the lock; answers its fencing token, or nil when another owner holds it (WRONGTYPE on a sequence).", "POST /db/{acc}/lock/{id}"},
		{"LOCK.GET", 2, rof, 1, 1, 1, "lock", "ext", "key", "[owner, remaining ms (-1 without TTL), fencing token], or nil (WRONGTYPE on a sequence).", "GET /db/{acc}/lock/{id}"},
		{"LOCK.RELEASE", 3, rwf, 1, 1, 1, "lock", "ext", "key owner", "Releases the owner's lock: 1 released, 0 already free, LOCKED error when another owner holds it (WRONGTYPE on a sequence).", "DELETE /db/{acc}/lock/{id}"},
		// extension: in-memory mutexes
		{"MLOCK", 4, CmdWrite | CmdBlocking, 1, 1, 1, "mutex", "ext", "name seconds wait", "Blocks until the mutex is granted (answers its handle) or wait seconds pass (nil); first come, first served.", "POST /db/{acc}/mlock/{id}"},
		{"MUNLOCK", 3, rwf, 1, 1, 1, "mutex", "ext", "name handle", "Releases the mutex: OK, or NOTHELD.", "POST /db/{acc}/munlock/{id}"},
		{"MLOCK.EXTEND", 4, rwf, 1, 1, 1, "mutex", "ext", "name handle seconds", "Gives the holder another seconds from now: OK, or NOTHELD.", "POST /db/{acc}/mlock/{id}"},
		// transactions
		{"MULTI", 1, cn, 0, 0, 0, "transactions", "1.2.0", "", "Starts a transaction: the commands after it are queued (QUEUED) until EXEC. Keyspace walks and the mutex commands are refused inside one.", ""},
		{"EXEC", 1, CmdLoading | CmdStale, 0, 0, 0, "transactions", "1.2.0", "", "Runs the queued commands with no other client's command between them and answers their replies, after their writes are on disk; a null array when a WATCHed key changed, EXECABORT when a command was refused while queued.", ""},
		{"DISCARD", 1, cn, 0, 0, 0, "transactions", "2.0.0", "", "Drops the queued commands and the WATCHed keys.", ""},
		{"WATCH", -2, cn, 1, -1, 1, "transactions", "2.2.0", "key [key ...]", "Makes the next EXEC run nothing (null array) if one of the keys is written, deleted or expires before it.", ""},
		{"UNWATCH", 1, cn, 0, 0, 0, "transactions", "2.2.0", "", "Forgets the WATCHed keys.", ""},
	}
}
