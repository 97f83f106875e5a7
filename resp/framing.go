package resp

import (
	"errors"
	"fmt"

	"github.com/concurrencydb/concurrencydb/core"
)

var (
	errNoCR   = errors.New("header line without CR")
	errNotInt = errors.New("not an integer")
)

// frameGuard follows the RESP framing of the bytes a connection reads,
// before redcon sees them, and refuses a frame whose declared sizes are out
// of bounds (R6). redcon (v1.6.4) has no limits of its own:
//
//   - its parser waits for a bulk argument of any declared length, and a
//     whole command of any number of arguments, so a connection's input
//     buffer (loop.go) would have to hold gigabytes for one client;
//   - a declared bulk length near MaxInt64 overflows its bounds check
//     (i+size+2) and panics the parser, which kills the process;
//   - a declared multibulk count of 2^62 makes it loop 2^62 times per read.
//
// The limits here are framing limits, above the per-command ones that exec
// checks (max_args, max_value_bytes): a frame within them is handed to
// redcon whole, and exec refuses an oversized argument with a clear error
// while the connection keeps working. A frame beyond them answers Redis's
// "ERR Protocol error" and the connection is closed, as Redis does beyond
// proto-max-bulk-len. Malformed framing (a non-numeric or negative length,
// a missing '$' or CRLF) is refused here too, with redcon's texts, so that
// the commands before it are answered first, as in Redis (redcon would
// drop them with the whole read). Inline commands are bounded here by
// their length only; inline.go splits them (and answers unbalanced
// quotes), and "*0" or "*-1" passes, to be ignored as Redis ignores it.
type frameGuard struct {
	maxBulk   int64 // bytes of one bulk argument
	maxCount  int64 // arguments of one command
	maxFrame  int64 // bytes of one whole command
	maxInline int64 // bytes of one inline (telnet-style) command line

	// unauthed: the connection has not authenticated yet (auth is on), so
	// a frame gets Redis's limits for such clients (since 6.2): at most
	// maxUnauthedCount arguments of at most maxUnauthedBulk bytes each. A
	// client without a token cannot make the server buffer a large frame
	// (10,000 connections × 64 MiB). The loop rescans a frame refused so
	// once the commands before it authenticated the connection.
	unauthed bool

	state int
	line  int    // bytes of the header line read so far
	num   []byte // its digits
	args  int64  // bulk arguments left in the frame
	skip  int64  // payload bytes (and CRLF) left in the current bulk
	frame int64  // bytes of the current frame so far
}

const (
	gFrame   = iota // at the start of a command
	gInline         // inside an inline command line
	gCount          // inside "*N\r\n"
	gBulk           // expecting '$'
	gBulkLen        // inside "$N\r\n"
	gPayload        // skipping a bulk's bytes
)

// maxHeaderLine bounds "*N\r\n" and "$N\r\n" lines: an int64 and CRLF.
const maxHeaderLine = 24

// maxInlineBytes is Redis's PROTO_INLINE_MAX_SIZE.
const maxInlineBytes = 64 << 10

// Redis's framing limits for a client that has not authenticated
// (networking.c, processMultibulkBuffer).
const (
	maxUnauthedCount = 10
	maxUnauthedBulk  = 16384
)

func newFrameGuard(maxArg, maxArgs int) *frameGuard {
	return &frameGuard{
		// Four times the argument limit (at least 16 MiB): a value a bit
		// too large gets exec's clear error on a working connection; only a
		// grossly oversized one closes it.
		maxBulk:   max(4*int64(maxArg), 16<<20),
		maxCount:  max(int64(maxArgs), 1<<20),
		maxFrame:  max(8*int64(maxArg), 64<<20),
		maxInline: maxInlineBytes,
	}
}

// protocolError is a frame refused by the guard; its text is the RESP
// error the client is sent before the connection closes. unauthed: it
// passes the limits of an authenticated connection.
type protocolError struct {
	msg      string
	unauthed bool
}

// reset forgets the frame being followed: the next byte scanned starts a
// command.
func (g *frameGuard) reset() {
	g.state, g.line, g.num, g.args, g.skip, g.frame = gFrame, 0, g.num[:0], 0, 0, 0
}

func (e *protocolError) Error() string { return e.msg }

// scan follows b, the next bytes of the stream. It returns how many of them
// may be handed to redcon: all of them, or, when a frame is refused, those
// before the refused frame's first byte in b (its earlier bytes, if any,
// were scanned before; they wait in the connection's input as an
// incomplete command, which the loop then answers with the refusal).
func (g *frameGuard) scan(b []byte) (int, *protocolError) {
	start := 0 // where the current frame starts in b (0 if before b)
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch g.state {
		case gFrame:
			start, g.frame, g.line, g.num = i, 0, 0, g.num[:0]
			if ch == '*' {
				g.state = gCount
			} else {
				g.state = gInline
				i-- // count this byte as part of the line
			}
			continue
		case gInline:
			if ch == '\n' {
				g.state = gFrame
				continue
			}
			g.line++
			if int64(g.line) > g.maxInline {
				return start, &protocolError{msg: "ERR Protocol error: too big inline request"}
			}
			continue
		case gBulk:
			if ch != '$' {
				return start, &protocolError{msg: "ERR Protocol error: expected '$', got '" + string(ch) + "'"}
			}
			g.state, g.line, g.num = gBulkLen, 0, g.num[:0]
			g.frame++
			continue
		case gPayload:
			if g.skip <= 2 {
				// The bulk's CRLF, as redcon checks it.
				if ch != "\r\n"[2-g.skip] {
					return start, &protocolError{msg: "ERR Protocol error: invalid bulk length"}
				}
				g.skip--
			} else {
				n := min(g.skip-2, int64(len(b)-i))
				g.skip -= n
				i += int(n) - 1
			}
			if g.skip == 0 {
				g.args--
				if g.args == 0 {
					g.state = gFrame
				} else {
					g.state = gBulk
				}
			}
			continue
		}
		// gCount or gBulkLen: a header line.
		g.frame++
		if ch != '\n' {
			g.line++
			g.num = append(g.num, ch)
			if g.line > maxHeaderLine {
				if g.state == gCount {
					return start, &protocolError{msg: "ERR Protocol error: invalid multibulk length"}
				}
				return start, &protocolError{msg: "ERR Protocol error: invalid bulk length"}
			}
			continue
		}
		var n int64
		var err error = errNoCR
		if len(g.num) > 0 && g.num[len(g.num)-1] == '\r' {
			// NB: Redis's string2ll: "*01", "*+1", "*-0" are malformed.
			var ok bool
			if n, ok = core.ParseInt(g.num[:len(g.num)-1]); !ok {
				err = errNotInt
			} else {
				err = nil
			}
		}
		if g.state == gCount {
			if err == nil && n <= 0 {
				g.state = gFrame // "*0", "*-1": Redis ignores them, and so does parse
				continue
			}
			if err != nil {
				return start, &protocolError{msg: "ERR Protocol error: invalid multibulk length"}
			}
			if n > g.maxCount {
				return start, &protocolError{msg: fmt.Sprintf("ERR Protocol error: invalid multibulk length (%d arguments; the limit is %d)", n, g.maxCount)}
			}
			if g.unauthed && n > maxUnauthedCount {
				return start, &protocolError{msg: "ERR Protocol error: unauthenticated multibulk length", unauthed: true}
			}
			g.args, g.state = n, gBulk
			continue
		}
		if err != nil || n < 0 {
			return start, &protocolError{msg: "ERR Protocol error: invalid bulk length"}
		}
		if n > g.maxBulk {
			return start, &protocolError{msg: fmt.Sprintf("ERR Protocol error: invalid bulk length (%d bytes; the limit is %d)", n, g.maxBulk)}
		}
		if g.frame+n+2 > g.maxFrame {
			return start, &protocolError{msg: fmt.Sprintf("ERR Protocol error: command larger than %d bytes", g.maxFrame)}
		}
		if g.unauthed && n > maxUnauthedBulk {
			return start, &protocolError{msg: "ERR Protocol error: unauthenticated bulk length", unauthed: true}
		}
		g.frame += n + 2
		g.skip, g.state = n+2, gPayload
	}
	return len(b), nil
}
