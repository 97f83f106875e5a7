package resp

import (
	"bytes"
	"errors"

	"github.com/concurrencydb/concurrencydb/core"
)

// Inline (telnet-style) commands are split here, as Redis's
// processInlineBuffer and sdssplitargs do, not by redcon: redcon reads a
// line that starts with '$' as a Tile38 frame (the connection then answers
// nothing until 64 KiB have arrived), keeps "\x41" and "\n" in double
// quotes as written, and refuses a quote inside an unquoted token (b"c"),
// where Redis reads "A", a newline and bc.

var (
	errUnbalancedQuotes = errors.New("Protocol error: unbalanced quotes in request")
	errInlineNUL        = errors.New("Protocol error: a NUL byte in an inline request")
)

// emptyMultibulk reports whether b starts with a whole "*N\r\n" line with
// N <= 0 (the frame guard has checked its number).
func emptyMultibulk(b []byte) bool {
	if len(b) < 3 || b[0] != '*' || b[1] != '0' && b[1] != '-' {
		return false // the common case, without a search
	}
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return false
	}
	n, ok := core.ParseInt(bytes.TrimSuffix(b[1:nl], []byte("\r")))
	return ok && n <= 0
}

// nextInline reads the inline command at the head of b: its arguments (new
// slices, never b's), how many bytes it took, and whether a whole line was
// there. An empty line has no arguments.
func nextInline(b []byte) (args [][]byte, n int, complete bool, err error) {
	nl := bytes.IndexByte(b, '\n')
	if nl < 0 {
		return nil, 0, false, nil
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if bytes.IndexByte(line, 0) >= 0 {
		// NB: Redis looks for the newline with strchr, which stops at the
		// NUL, and answers nothing until 64 KiB have come; cutting the
		// command there would run another one than was sent.
		return nil, nl + 1, true, errInlineNUL
	}
	args, err = splitArgs(line)
	return args, nl + 1, true, err
}

// splitArgs is Redis's sdssplitargs: arguments separated by spaces,
// "double quotes" with the escapes \xHH \n \r \t \b \a (and \<c> for c),
// 'single quotes' with \' only; a closing quote must end its argument. A
// NUL is refused (nextInline): Redis's own inline reader cannot take one.
func splitArgs(line []byte) ([][]byte, error) {
	var args [][]byte
	p := 0
	at := func(i int) byte { // NUL past the end, as C's terminator
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	for {
		for p < len(line) && isSpace(line[p]) {
			p++
		}
		if at(p) == 0 {
			return args, nil
		}
		cur := []byte{}
		var quote byte // '"' or '\'' inside quotes
		for done := false; !done; {
			c := at(p)
			switch {
			case quote == 0:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"', '\'':
					quote = c
				default:
					cur = append(cur, c)
				}
			case quote == '"' && c == '\\' && at(p+1) == 'x' && isHex(at(p+2)) && isHex(at(p+3)):
				cur = append(cur, unhex(at(p+2))<<4|unhex(at(p+3)))
				p += 3
			case quote == '"' && c == '\\' && at(p+1) != 0:
				p++
				cur = append(cur, unescape(line[p]))
			case quote == '\'' && c == '\\' && at(p+1) == '\'':
				p++
				cur = append(cur, '\'')
			case c == quote: // it must end the argument
				if n := at(p + 1); n != 0 && !isSpace(n) {
					return nil, errUnbalancedQuotes
				}
				done = true
			case c == 0:
				return nil, errUnbalancedQuotes
			default:
				cur = append(cur, c)
			}
			if at(p) != 0 {
				p++
			}
		}
		args = append(args, cur)
	}
}

// isSpace is C's isspace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}
