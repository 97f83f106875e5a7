package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/concurrencydb/concurrencydb/core"
	"golang.org/x/net/http/httpguts"
)

// parseOurs runs readHead on a fresh request.
func parseOurs(head string) (*http.Request, error) {
	r := &http.Request{Header: make(http.Header)}
	return r, readHead([]byte(head), r)
}

// parseTheirs runs net/http's parser, with the checks net/http's server
// adds (Host, header names and values).
func parseTheirs(head string) (*http.Request, error) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		return nil, err
	}
	// What net/http's server checks after ReadRequest (server.go), which
	// drops the Host lines from Header: read them with textproto.
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head)))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	mh, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	hosts := mh["Host"]
	switch {
	case r.ProtoAtLeast(1, 1) && len(hosts) == 0:
		return nil, errors.New("missing Host")
	case len(hosts) > 1:
		return nil, errors.New("too many Host headers")
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return nil, errors.New("malformed Host header")
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, errors.New("invalid header name")
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, errors.New("invalid header value")
			}
		}
	}
	return r, nil
}

// sameRequest compares what the handlers and the transport read of a
// request.
func sameRequest(t *testing.T, head string, ours, theirs *http.Request) {
	t.Helper()
	type view struct {
		Method, Proto, Host, RequestURI, Path, RawPath, RawQuery string
		Close, ForceQuery                                        bool
		ContentLength                                            int64
		TE                                                       []string
		Header                                                   http.Header
	}
	v := func(r *http.Request) view {
		h := r.Header.Clone()
		delete(h, "Host")
		delete(h, "Transfer-Encoding")
		if len(h) == 0 {
			h = nil
		}
		te := r.TransferEncoding
		if len(te) == 0 {
			te = nil
		}
		return view{r.Method, r.Proto, r.Host, r.RequestURI, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Close, r.URL.ForceQuery, r.ContentLength, te, h}
	}
	if a, b := v(ours), v(theirs); !reflect.DeepEqual(a, b) {
		t.Errorf("%q:\n ours   %+v\n theirs %+v", head, a, b)
	}
}

// readHead reads every request net/http reads the same way, and refuses
// only where the package doc says it is stricter (status given).
func TestReadHeadAgreesWithNetHTTP(t *testing.T) {
	cases := []struct {
		head     string
		stricter int // 0: agree with net/http; else ours refuses with this status
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"POST /db/a/sequence/s HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n", 0},
		{"POST /db/a/kv/k?ttl=5&x= HTTP/1.1\r\nhost: x\r\ncontent-length: 12\r\n\r\n", 0},
		{"GET /db/a%2Fb/kv/k%20x?q=%41 HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET /p? HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET /a/../b HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET //double HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET http://example.com/abs?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\n\r\n", 0},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Close\r\n\r\n", 0},
		{"GET / HTTP/1.1\nHost: x\nX-A:  spaced \t\n\n", 0},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-Multi: 1\r\nx-multi: 2\r\nx-weird_name: 3\r\n\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: x\r\nEmpty:\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0},
		{"PATCH /x HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET /db/a!/kv/('k')* HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"GET /db/a$&+,;=:@/kv/k-._~ HTTP/1.1\r\nHost: x\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n", 0},
		// Both refuse.
		{"GET / HTTP/1.1\r\n\r\n", 400},
		{"GET /\r\nHost: x\r\n\r\n", 400},
		{"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
		{"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400},
		{"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"GET / FTP/1.1\r\nHost: x\r\n\r\n", 400},
		// Ours is stricter (request smuggling vectors).
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
		{"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -0\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n", 400},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\xe2\x84\xaaed\r\n\r\n", 501},
		{"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: Content-Length\r\n\r\n", 400},
	}
	for _, tc := range cases {
		ours, err := parseOurs(tc.head)
		theirs, terr := parseTheirs(tc.head)
		if tc.stricter == 0 {
			if err != nil || terr != nil {
				t.Errorf("%q: ours %v, net/http %v; want both to read it", tc.head, err, terr)
				continue
			}
			sameRequest(t, tc.head, ours, theirs)
			continue
		}
		if err == nil {
			t.Errorf("%q: read; want %d", tc.head, tc.stricter)
			continue
		}
		var re *requestError
		switch {
		case errors.As(err, &re) && re.status == tc.stricter:
		case tc.stricter == 400 && errors.Is(err, core.ErrInvalid):
		default:
			t.Errorf("%q: %v; want %d", tc.head, err, tc.stricter)
		}
	}
}

// Never more lenient than net/http: of random mutations of valid heads,
// every one readHead reads, net/http reads too, the same way.
func TestReadHeadIsNeverMoreLenientThanNetHTTP(t *testing.T) {
	seeds := []string{
		"POST /db/a/kv/k?ttl=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nAccept: application/json\r\n\r\n",
		"GET /db/a%2Fb/kv/k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"PUT /x HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\nIf-Match: \"3\"\n\n",
		"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, close\r\n\r\n",
	}
	alphabet := []byte("\r\n :\t/?%#-abcXYZ019\x00\x7f\x80,;=\"!'()*kK")
	// Unicode's case folding maps these to k and s (net/http folds ASCII
	// only): whole sequences, inserted as one mutation.
	unicode := [][]byte{[]byte("\u212a"), []byte("\u017f")}
	rng := rand.New(rand.NewPCG(1, 2))
	read := 0
	for i := 0; i < 50000; i++ {
		b := []byte(seeds[rng.IntN(len(seeds))])
		for range 1 + rng.IntN(3) {
			j := rng.IntN(len(b) - 2) // keep the final empty line
			switch rng.IntN(4) {
			case 3:
				b = append(b[:j], append(append([]byte(nil), unicode[rng.IntN(2)]...), b[j:]...)...)
			case 0:
				b[j] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				b = append(b[:j], b[j+1:]...)
			case 2:
				b = append(b[:j], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[j:]...)...)
			}
		}
		head := string(b)
		end, _ := headerEnd(b, 0)
		// The head arriving in two reads, the second scan resuming where
		// the first stopped, ends at the same place.
		k := rng.IntN(len(b) + 1)
		if e1, r := headerEnd(b[:k], 0); e1 >= 0 && e1 != end {
			t.Fatalf("%q: end %d in its first %d bytes, %d in all", b, e1, k, end)
		} else if e2, _ := headerEnd(b, r); e1 < 0 && e2 != end {
			t.Fatalf("%q: resumed at %d after %d bytes: end %d, want %d", b, r, k, e2, end)
		}
		if end < 0 {
			continue
		}
		head = head[:end] // what the transport hands readHead
		ours, err := parseOurs(head)
		if err != nil {
			continue
		}
		read++
		theirs, terr := parseTheirs(head)
		if terr != nil {
			t.Errorf("%q: read by readHead, refused by net/http: %v", head, terr)
			continue
		}
		sameRequest(t, head, ours, theirs)
	}
	if read < 5000 {
		t.Fatalf("only %d of the mutations were read: the test exercises too little", read)
	}
}

// sniff's shortcut answers what net/http's sniffing answers.
func TestSniffAgreesWithDetectContentType(t *testing.T) {
	for _, b := range []string{"0\n", "-12\n", "18446744073709551615\n", "\n", "12", "ok\n", "<html>", "{\"a\":1}\n", "GIF87a", "%PDF-"} {
		if got, want := sniff([]byte(b)), http.DetectContentType([]byte(b)); got != want {
			t.Errorf("sniff(%q) = %q, DetectContentType %q", b, got, want)
		}
	}
}

// A connection's request is reused (resetRequest): nothing of one
// request's Host, URL or headers shows in the next one's.
func TestAReusedRequestKeepsNothingOfTheLastOne(t *testing.T) {
	c := &conn{reqctx: context.Background()}
	cases := []struct {
		head, host, path, query, uri string
	}{
		{"GET /a?x=1 HTTP/1.1\r\nHost: one\r\nX-A: 1\r\n\r\n", "one", "/a", "x=1", "/a?x=1"},
		{"POST /b HTTP/1.1\r\nHost: one\r\n\r\n", "one", "/b", "", "/b"},
		{"GET /c%20d HTTP/1.1\r\nHost: two\r\n\r\n", "two", "/c d", "", "/c%20d"},
		{"GET /e HTTP/1.0\r\n\r\n", "", "/e", "", "/e"},
		{"GET http://three/f?y HTTP/1.1\r\nHost: two\r\n\r\n", "three", "/f", "y", "http://three/f?y"},
		{"GET /g HTTP/1.1\r\nHost: two\r\n\r\n", "two", "/g", "", "/g"},
	}
	for i, tc := range cases {
		r := c.resetRequest()
		if err := readHead([]byte(tc.head), r); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if r.Host != tc.host || r.URL.Path != tc.path || r.URL.RawQuery != tc.query || r.RequestURI != tc.uri {
			t.Fatalf("request %d: host %q path %q query %q uri %q, want %q %q %q %q", i, r.Host, r.URL.Path, r.URL.RawQuery, r.RequestURI, tc.host, tc.path, tc.query, tc.uri)
		}
		if i > 0 && r.Header.Get("X-A") != "" {
			t.Fatalf("request %d has the first one's header", i)
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.head)))
		if err != nil {
			t.Fatal(err)
		}
		if want.Host != r.Host || want.URL.String() != r.URL.String() {
			t.Fatalf("request %d: %q %q, net/http reads %q %q", i, r.Host, r.URL, want.Host, want.URL)
		}
	}
}

// queryOf reads what r.URL.Query() reads, with or without its map.
func TestQueryAgreesWithURLValues(t *testing.T) {
	names := []string{"add", "ttl", "a", "b", ""}
	raws := []string{"", "add=1", "add=", "add", "add=1&add=2", "x=1&add=-3", "&&add=4&", "=5&add=6",
		"add=%31", "add=1+1", "add=1;x=2", "ttl=3&a&b=", "a=b=c", "add=%zz", "b=%20&a=1"}
	for _, raw := range raws {
		r := &http.Request{URL: &url.URL{Path: "/", RawQuery: raw}}
		q, want := queryOf(r), r.URL.Query()
		for _, n := range names {
			if q.Get(n) != want.Get(n) || q.Has(n) != want.Has(n) {
				t.Errorf("%q: %q: Get %q Has %v, url.Values %q %v", raw, n, q.Get(n), q.Has(n), want.Get(n), want.Has(n))
			}
		}
	}
}

// The allowance for chunk framing (6 bytes a body byte: "1\r\nx\r\n") is
// capped at 64 MiB, so a connection's buffer stays bounded by the body
// limit plus 64 MiB however large that limit is. With a 16 MiB limit the
// 6× rule alone would allow 96 MiB: an unfinished body of 1-byte chunks
// must pass up to 16 + 64 MiB (+ 64 KiB of slack) and be refused past it,
// although its chunks hold less than the limit.
func TestChunkFramingAllowanceIsCappedAt64MiB(t *testing.T) {
	const max = 16 << 20
	const allowed = max + 64<<20 + 64<<10
	chunk := []byte("1\r\nx\r\n")
	b := bytes.Repeat(chunk, allowed/len(chunk)+2) // no last chunk: unfinished
	var p parser
	below := b[:allowed/len(chunk)*len(chunk)]
	if _, _, done, err := p.chunked(&conn{}, below, max); err != nil || done {
		t.Fatalf("%d bytes of framing (the cap) = done %v, %v; want waiting for more", len(below), done, err)
	}
	_, _, _, err := p.chunked(&conn{}, b, max)
	if !errors.Is(err, core.ErrTooLarge) || !strings.Contains(err.Error(), "chunk framing") {
		t.Fatalf("%d bytes of framing (past the cap) = %v, want the framing refused as too large", len(b), err)
	}
}
