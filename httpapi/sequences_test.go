package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestSequenceStartsAtOneAndNeverReissues(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/sequence/orders"
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.post(t, p).wantText(t, "1\n")
	s.post(t, p).wantText(t, "2\n")
	s.get(t, p).wantText(t, "2\n")
	s.do(t, "POST", p, nil, acceptJSON).wantJSON(t, map[string]any{"value": num(3)})
	s.do(t, "GET", p, nil, acceptJSON).wantJSON(t, map[string]any{"value": num(3)})
	// Other ids and other accounts are other sequences.
	s.post(t, "/db/acme/sequence/invoices").wantText(t, "1\n")
	s.post(t, "/db/other/sequence/orders").wantText(t, "1\n")
}

func TestSequenceCountReservesABlockAndReturnsItsHighest(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/sequence/ids"
	s.post(t, p+"?count=10").wantText(t, "10\n")
	s.post(t, p+"?count=1").wantText(t, "11\n")
	s.post(t, p+"?count=1000000").wantText(t, "1000011\n")
	s.get(t, p).wantText(t, "1000011\n")
}

func TestSequenceMalformedCountIs400AndChangesNothing(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/sequence/ids"
	s.post(t, p).wantText(t, "1\n")
	for _, c := range []string{"0", "-1", "1000001", "abc", "1.5", "", "1e3", "18446744073709551616"} {
		t.Run("count="+c, func(t *testing.T) {
			s.post(t, p+"?count="+c).wantError(t, http.StatusBadRequest, "invalid")
		})
	}
	s.get(t, p).wantText(t, "1\n")
	s.get(t, "/db/acme/sequence/never").wantError(t, http.StatusNotFound, "not_found")
}

func TestSequenceDeleteIs204AndRestartsAtOne(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/sequence/s"
	s.del(t, p).want(t, http.StatusNoContent) // absent: still 204
	s.post(t, p+"?count=5").wantText(t, "5\n")
	r := s.del(t, p).want(t, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Fatalf("204 with body %q", r.body)
	}
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.post(t, p).wantText(t, "1\n")
}

// A sequence is its own type: the kv and counter APIs may not move it, and
// the sequence API may not take over a plain value.
func TestSequenceTypeConflictsAre409WrongtypeAndChangeNothing(t *testing.T) {
	s := newServer(t)
	s.post(t, "/db/acme/sequence/seq?count=7").wantText(t, "7\n")
	s.do(t, "PUT", "/db/acme/kv/plain", []byte("hello"), nil).want(t, http.StatusOK)

	for _, c := range []struct{ name, method, path string }{
		{"sequence next on plain value", "POST", "/db/acme/sequence/plain"},
		{"sequence get on plain value", "GET", "/db/acme/sequence/plain"},
		{"sequence delete on plain value", "DELETE", "/db/acme/sequence/plain"},
		{"counter add on sequence", "POST", "/db/acme/counter/seq?add=1"},
		{"counter get on sequence", "GET", "/db/acme/counter/seq"},
		{"counter delete on sequence", "DELETE", "/db/acme/counter/seq"},
		{"kv write on sequence", "POST", "/db/acme/kv/seq"},
		{"kv put on sequence", "PUT", "/db/acme/kv/seq"},
		{"kv delete on sequence", "DELETE", "/db/acme/kv/seq"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.do(t, c.method, c.path, bodyFor(c.method, c.path, "1"), nil).wantError(t, http.StatusConflict, "wrongtype")
		})
	}
	s.get(t, "/db/acme/sequence/seq").wantText(t, "7\n")
	s.get(t, "/db/acme/kv/plain").wantValue(t, "hello")
	// kv GET reads a sequence as its decimal value.
	s.get(t, "/db/acme/kv/seq").wantValue(t, "7")
}

// Concurrent HTTP clients never get the same value, and no value is
// skipped.
func TestSequenceConcurrentPostsNeverReissueAValue(t *testing.T) {
	s := newServer(t)
	const clients, each = 8, 25
	vals := make(chan uint64, clients*each)
	errs := make(chan error, clients)
	for range clients {
		go func() {
			for range each {
				r, err := s.send(context.Background(), "POST", "/db/acme/sequence/hot", nil, nil)
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("status %d: %s", r.status, r.body)
				}
				if err != nil {
					errs <- err
					return
				}
				n, err := strconv.ParseUint(strings.TrimSuffix(string(r.body), "\n"), 10, 64)
				if err != nil {
					errs <- err
					return
				}
				vals <- n
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(vals)
	seen := map[uint64]bool{}
	for v := range vals {
		if seen[v] {
			t.Fatalf("value %d issued twice", v)
		}
		seen[v] = true
	}
	for v := uint64(1); v <= clients*each; v++ {
		if !seen[v] {
			t.Fatalf("value %d never issued", v)
		}
	}
	s.get(t, "/db/acme/sequence/hot").wantText(t, strconv.Itoa(clients*each)+"\n")
}
