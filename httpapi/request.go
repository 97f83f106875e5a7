package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/concurrencydb/concurrencydb/core"
)

// The request head parser of the event-loop transport.
//
// Why not http.ReadRequest: it allocates a request, a header map, a bufio
// and textproto reader's lines and a URL for every request (~1.5 KB of
// the ~2.4 KB a POST /sequence allocated), and the loop then copied the
// request once more to give it its context; measured, parsing and the
// garbage were ~15% of the server's CPU per request. readHead fills a
// request and a header map that the connection reuses.
//
// It is stricter than net/http where net/http is lenient in ways that let
// two parsers disagree about where a request ends (request smuggling):
// Content-Length together with Transfer-Encoding, Transfer-Encoding on
// HTTP/1.0, differing Content-Lengths, and folded header lines are 400;
// a Transfer-Encoding other than chunked is 501; a version other than
// HTTP/1.0 and HTTP/1.1 is 505. Otherwise it accepts and rejects what
// net/http's server does (TestReadHeadAgreesWithNetHTTP).

// chunkedTE is Request.TransferEncoding of a chunked request (shared:
// nothing writes it).
var chunkedTE = []string{"chunked"}

// resetRequest readies c's reusable request for the next request.
//
// NB: the request is reused (handlers and observe keep nothing of it
// after they return) and only its exported fields are reset: its context
// (c.reqctx) is the one it was created with, and the path values chi sets
// (SetPathValue) keep the previous request's under names this request's
// route does not set; nothing here reads them (handlers use chi.URLParam).
func (c *conn) resetRequest() *http.Request {
	if c.req == nil {
		c.req = (&http.Request{}).WithContext(c.reqctx)
		c.hdr = make(http.Header, 8)
	}
	if len(c.hdr) > 64 {
		c.hdr = make(http.Header, 8) // do not keep (and clear) a huge map
	}
	clear(c.hdr)
	r := c.req
	// NB: Host is left for readHead, which copies the Host header only
	// when it differs from the last request's; URL is c's, overwritten
	// (an off-loop request's copy, req.Clone, copies it).
	c.url = url.URL{}
	r.Method, r.URL, r.Proto, r.ProtoMajor, r.ProtoMinor = "", &c.url, "", 0, 0
	r.Header, r.Body, r.GetBody, r.ContentLength, r.TransferEncoding = c.hdr, nil, nil, 0, nil
	r.Close, r.Form, r.PostForm, r.MultipartForm, r.Trailer = false, nil, nil, nil, nil
	r.RemoteAddr, r.RequestURI, r.TLS, r.Response, r.Pattern = c.remote, "", nil, nil, ""
	r.Cancel = nil //nolint:staticcheck // reset like every other field
	return r
}

// badRequest is a malformed request: 400, and the connection closes.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: malformed HTTP request: "+format, append([]any{core.ErrInvalid}, args...)...)
}

// readHead parses head — a request line and header section through its
// empty line, CRLF or bare LF line ends — into r (from resetRequest).
func readHead(head []byte, r *http.Request) error {
	line, rest := cutLine(head)
	method, rest1, ok1 := bytes.Cut(line, []byte{' '})
	target, proto, ok2 := bytes.Cut(rest1, []byte{' '})
	if !ok1 || !ok2 || !isToken(method) || len(target) == 0 {
		return badRequest("bad request line %q", clip(line))
	}
	switch string(proto) {
	case "HTTP/1.1":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	case "HTTP/1.0":
		r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0
	default:
		if _, _, ok := http.ParseHTTPVersion(string(proto)); ok {
			return &requestError{http.StatusHTTPVersionNotSupported, "version_not_supported",
				fmt.Sprintf("unsupported HTTP version %q", clip(proto))}
		}
		return badRequest("bad HTTP version %q", clip(proto))
	}
	r.Method = internMethod(method)
	for _, b := range target {
		if b <= ' ' || b == 0x7f {
			return badRequest("bad request target %q", clip(target))
		}
	}
	r.RequestURI = string(target)
	if r.URL == nil {
		r.URL = new(url.URL)
	}
	if err := parseTarget(r.RequestURI, r.URL); err != nil {
		return badRequest("bad request target %q: %v", clip(target), err)
	}

	var hosts, lengths int
	var chunked, keepAlive bool
	var length []byte // the first Content-Length
	r.ContentLength = 0
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break // the empty line: the end of the head
		}
		name, value, err := headerLine(line)
		if err != nil {
			return err
		}
		key := canonicalKey(name)
		switch key {
		case "Host":
			if hosts++; hosts > 1 {
				return badRequest("more than one Host header")
			}
			for _, b := range value {
				if b >= 0x80 || !hostChar[b] {
					return badRequest("malformed Host header %q", clip(value))
				}
			}
			if r.Host != string(value) { // no copy when it is the last one's
				r.Host = string(value)
			}
			continue // net/http keeps it out of Header too
		case "Content-Length":
			// As net/http: digits only, and repeats must be the same text.
			n, err := strconv.ParseUint(string(value), 10, 63)
			if err != nil {
				return badRequest("bad Content-Length %q", clip(value))
			}
			if lengths++; lengths > 1 {
				if !bytes.Equal(value, length) {
					return badRequest("differing Content-Lengths")
				}
				continue // net/http keeps one
			}
			length, r.ContentLength = value, int64(n)
		case "Transfer-Encoding":
			if chunked || !r.ProtoAtLeast(1, 1) {
				return badRequest("a repeated Transfer-Encoding, or one on HTTP/1.0")
			}
			if !asciiEqualFold(value, "chunked") {
				return &requestError{http.StatusNotImplemented, "not_implemented",
					fmt.Sprintf("unsupported Transfer-Encoding %q", clip(value))}
			}
			chunked = true
			continue // net/http keeps it out of Header too
		case "Connection":
			for rest := value; len(rest) > 0; {
				var tok []byte
				tok, rest, _ = bytes.Cut(rest, []byte{','})
				tok = bytes.Trim(tok, " \t")
				switch {
				case asciiEqualFold(tok, "close"):
					r.Close = true
				case asciiEqualFold(tok, "keep-alive"):
					keepAlive = true
				}
			}
		}
		r.Header[key] = append(r.Header[key], string(value))
	}
	if chunked {
		if lengths > 0 {
			return badRequest("both Content-Length and Transfer-Encoding")
		}
		r.TransferEncoding, r.ContentLength = chunkedTE, -1
		// As net/http: a trailer may not announce framing fields; the
		// announcement itself leaves Header (trailers are read and
		// dropped: no handler here reads one).
		for _, v := range r.Header["Trailer"] {
			for rest := v; rest != ""; {
				var k string
				k, rest, _ = strings.Cut(rest, ",")
				switch textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k)) {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return badRequest("bad trailer key %q", k)
				}
			}
		}
		delete(r.Header, "Trailer")
	}
	if hosts == 0 {
		if r.ProtoAtLeast(1, 1) {
			return badRequest("missing required Host header")
		}
		r.Host = ""
	}
	if !r.ProtoAtLeast(1, 1) && !keepAlive {
		r.Close = true
	}
	if r.URL.Host != "" {
		r.Host = r.URL.Host // an absolute-form target's host wins (RFC 9112 3.2.2)
	}
	return nil
}

// headerLine splits a header (or trailer) line into its name and value,
// checked as net/http's server checks them: no folding, a token name, a
// value without control bytes but tab.
func headerLine(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, badRequest("folded header line %q", clip(line))
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok || !isToken(name) {
		return nil, nil, badRequest("bad header line %q", clip(line))
	}
	value = bytes.Trim(value, " \t")
	for _, b := range value {
		if (b < ' ' && b != '\t') || b == 0x7f {
			return nil, nil, badRequest("bad header value of %q", clip(name))
		}
	}
	return name, value, nil
}

// cutLine splits the first line off b, without its CRLF or LF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// parseTarget parses a request target into u: an absolute path with an
// optional query, read without url's allocations when it needs no
// unescaping, else (escapes, *, absolute-form) by url.ParseRequestURI.
func parseTarget(t string, u *url.URL) error {
	if len(t) > 0 && t[0] == '/' {
		simple := true
		q := -1
		for i := 0; i < len(t); i++ {
			switch t[i] {
			case '%', '#':
				simple = false
			case '?':
				if q < 0 {
					q = i
				}
			}
		}
		path := t
		if q >= 0 {
			path = t[:q]
		}
		if simple && !pathNeedsEscaping(path) {
			if q < 0 {
				*u = url.URL{Path: t}
			} else {
				*u = url.URL{Path: t[:q], RawQuery: t[q+1:], ForceQuery: q == len(t)-1}
			}
			return nil
		}
	}
	parsed, err := url.ParseRequestURI(t)
	if err != nil {
		return err
	}
	*u = *parsed
	return nil
}

// isToken reports whether b is a non-empty RFC 9110 token (a method, a
// header name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

// hostChar: the bytes net/http's server accepts in a Host header.
var hostChar = charSet("!$%&'()*+,-.:;=[]_~")

// pathNeedsEscaping: p has a byte url would escape in a path (then it
// keeps the raw form in RawPath, which url.ParseRequestURI computes).
func pathNeedsEscaping(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 0x80 || !pathChar[c] {
			return true
		}
	}
	return false
}

// pathChar: bytes that stand for themselves in a URL path (RFC 3986
// unreserved, sub-delims, ':', '@', '/').
// NB: not ! ' ( ) *, which url escapes in a path (then keeping RawPath):
// url.ParseRequestURI reads those.
var pathChar = charSet("-._~$&+,;=:@/")

var tokenChar = charSet("!#$%&'*+-.^_`|~")

// charSet is a table of the ASCII letters, digits and the bytes of extra.
func charSet(extra string) (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
}

// internMethod returns method as a string, without allocating for the
// common ones.
func internMethod(m []byte) string {
	switch string(m) { // no allocation: the compiler compares in place
	case "GET":
		return http.MethodGet
	case "POST":
		return http.MethodPost
	case "PUT":
		return http.MethodPut
	case "DELETE":
		return http.MethodDelete
	case "HEAD":
		return http.MethodHead
	}
	return string(m)
}

// commonKeys are canonical header names read without allocating.
var commonKeys = []string{
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect",
	"Accept", "Authorization", "Content-Type", "User-Agent", "If-Match",
	"If-None-Match", "Accept-Encoding",
}

// canonicalKey is name in canonical form (textproto.CanonicalMIMEHeaderKey).
func canonicalKey(name []byte) string {
	for _, k := range commonKeys {
		if asciiEqualFold(name, k) {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(string(name))
}

// asciiEqualFold compares b and s ignoring ASCII case only, as net/http
// does (Unicode folding would read "chun\u212Aed" as chunked).
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// clip bounds what an error message quotes of the input.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
