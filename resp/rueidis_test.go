package resp

import (
	"testing"

	"github.com/redis/rueidis"

	"github.com/concurrencydb/concurrencydb/core"
)

// rueidis opens with HELLO 3; our answer makes it fall back to RESP2 (its
// client-side cache needs RESP3, so DisableCache is required), with AUTH.
func TestRueidisFallsBackToRESP2(t *testing.T) {
	e := newEnv(t, withAuth(core.Auth{Token: "root"}))
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:  []string{e.addr},
		Password:     "root",
		DisableCache: true,
	})
	if err != nil {
		t.Fatalf("rueidis did not fall back to RESP2: %v", err)
	}
	defer c.Close()
	must(t, c.Do(bg, c.B().Set().Key("k").Value("v").Build()).Error())
	v, err := c.Do(bg, c.B().Get().Key("k").Build()).ToString()
	if err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	n, err := c.Do(bg, c.B().Arbitrary("SEQ.NEXT").Keys("{acme}:s").Args("COUNT", "3").Build()).AsInt64()
	if err != nil || n != 3 {
		t.Fatalf("SEQ.NEXT = %d, %v", n, err)
	}
	if err := c.Do(bg, c.B().Get().Key("missing").Build()).Error(); !rueidis.IsRedisNil(err) {
		t.Fatalf("GET missing: %v, want nil", err)
	}
}
