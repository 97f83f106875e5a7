package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/concurrencydb/concurrencydb/core"
	"github.com/concurrencydb/concurrencydb/httpapi"
)

func TestCounterAddsSignedDeltasDefaultingToOne(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/counter/hits"
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.post(t, p).wantText(t, "1\n")
	s.post(t, p+"?add=5").wantText(t, "6\n")
	s.post(t, p+"?add=-10").wantText(t, "-4\n")
	s.post(t, p+"?add=0").wantText(t, "-4\n")
	s.get(t, p).wantText(t, "-4\n")
	s.do(t, "POST", p+"?add=2", nil, acceptJSON).wantJSON(t, map[string]any{"value": num(-2)})
	s.do(t, "GET", p, nil, acceptJSON).wantJSON(t, map[string]any{"value": num(-2)})
	// A counter is a string key: kv GET reads it.
	s.get(t, "/db/acme/kv/hits").wantValue(t, "-2")
}

func TestCounterDeleteIs204AlsoWhenAbsent(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/counter/c"
	s.del(t, p).want(t, http.StatusNoContent)
	s.post(t, p+"?add=3").wantText(t, "3\n")
	s.del(t, p).want(t, http.StatusNoContent)
	s.get(t, p).wantError(t, http.StatusNotFound, "not_found")
	s.post(t, p).wantText(t, "1\n")
}

func TestCounterMalformedAddIs400AndChangesNothing(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/counter/c"
	s.post(t, p+"?add=7").wantText(t, "7\n")
	// Redis's integer syntax, as CTR.ADD reads it: no +, no leading zero.
	for _, a := range []string{"abc", "1.5", "", "9223372036854775808", "-9223372036854775809", "1e3", "0x10", "%201", "%2B5", "05", "-0", "1&add=2"} {
		t.Run("add="+a, func(t *testing.T) {
			s.post(t, p+"?add="+a).wantError(t, http.StatusBadRequest, "invalid")
		})
	}
	s.get(t, p).wantText(t, "7\n")
}

func TestCounterOverflowIs409AndChangesNothing(t *testing.T) {
	s := newServer(t)
	const p = "/db/acme/counter/big"
	max := strconv.FormatInt(1<<63-1, 10)
	s.post(t, p+"?add="+max).wantText(t, max+"\n")
	s.post(t, p+"?add=1").wantError(t, http.StatusConflict, "overflow")
	s.get(t, p).wantText(t, max+"\n")

	const q = "/db/acme/counter/small"
	min := strconv.FormatInt(-1<<63, 10)
	s.post(t, q+"?add="+min).wantText(t, min+"\n")
	s.post(t, q+"?add=-1").wantError(t, http.StatusConflict, "overflow")
	s.get(t, q).wantText(t, min+"\n")
}

func TestIntegerKVValueIsACounter(t *testing.T) {
	s := newServer(t)
	s.do(t, "PUT", "/db/acme/kv/n", []byte("41"), nil).want(t, http.StatusOK)
	s.get(t, "/db/acme/counter/n").wantText(t, "41\n")
	s.post(t, "/db/acme/counter/n").wantText(t, "42\n")
	s.get(t, "/db/acme/kv/n").wantValue(t, "42")
}

func TestCounterOnNonIntegerValueIs409WrongtypeAndChangesNothing(t *testing.T) {
	s := newServer(t)
	for _, v := range []string{"abc", "4.5", " 1", "01", "", "99999999999999999999"} {
		t.Run(strconv.Quote(v), func(t *testing.T) {
			s.do(t, "PUT", "/db/acme/kv/v", []byte(v), nil).want(t, http.StatusOK)
			s.post(t, "/db/acme/counter/v").wantError(t, http.StatusConflict, "wrongtype")
			s.get(t, "/db/acme/counter/v").wantError(t, http.StatusConflict, "wrongtype")
			s.del(t, "/db/acme/counter/v").wantError(t, http.StatusConflict, "wrongtype")
			s.get(t, "/db/acme/kv/v").wantValue(t, v)
		})
	}
}

// Like Redis INCRBY, adding to a counter keeps the key's expiry; a counter
// created by an add has none.
func TestCounterKeepsTheKeysTTL(t *testing.T) {
	clock := newFakeClock()
	s := newServerWith(t, core.Config{Clock: clock}, httpapi.Config{})
	s.do(t, "PUT", "/db/acme/kv/c?ttl=10", []byte("5"), nil).want(t, http.StatusOK)
	clock.Advance(4 * time.Second)
	s.post(t, "/db/acme/counter/c?add=2").wantText(t, "7\n")
	if got := s.get(t, "/db/acme/kv/c").header.Get("X-TTL-Ms"); got != "6000" {
		t.Fatalf("X-TTL-Ms after add = %q, want 6000 (the TTL kept)", got)
	}
	clock.Advance(6 * time.Second)
	s.get(t, "/db/acme/counter/c").wantError(t, http.StatusNotFound, "not_found")
	// Expired counts as absent: the next add starts from 0 without a TTL.
	s.post(t, "/db/acme/counter/c").wantText(t, "1\n")
	if got := s.get(t, "/db/acme/kv/c").header.Values("X-TTL-Ms"); len(got) != 0 {
		t.Fatalf("new counter has X-TTL-Ms %q", got)
	}
}

// Concurrent adds over HTTP are atomic: none is lost.
func TestCounterConcurrentAddsAreAtomic(t *testing.T) {
	s := newServer(t)
	const clients, each = 8, 25
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			for range each {
				r, err := s.send(context.Background(), "POST", "/db/acme/counter/hot?add="+strconv.Itoa(i+1), nil, nil)
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("status %d: %s", r.status, r.body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.get(t, "/db/acme/counter/hot").wantText(t, strconv.Itoa(each*clients*(clients+1)/2)+"\n")
}
