package httpapi

import (
	"testing"

	"github.com/concurrencydb/concurrencydb/core"
)

// The HTTP column of core's command table names real routes: which routes
// may wait (and so run off the event loop) is read from it, so a route
// renamed on one side only would stall the loop on a waiting MLOCK.
func TestCommandTableNamesRealRoutes(t *testing.T) {
	routes := make(map[string]bool)
	for _, r := range Routes() {
		routes[r.Method+" "+r.Pattern] = true
	}
	for _, c := range core.Commands() {
		if c.HTTP != "" && !routes[c.HTTP] {
			t.Errorf("%s: its HTTP endpoint %q is not a route", c.Name, c.HTTP)
		}
	}
	if w := waitingRoutes(); len(w) != 1 || !w["POST mlock"] {
		t.Errorf("waitingRoutes() = %v, want only POST mlock", w)
	}
}
