// Package metrics exposes concurrencydb's figures in the Prometheus text
// format (github.com/prometheus/client_golang): requests by protocol,
// command and status, request latency, group-commit batch sizes and commit
// (fsync) latency, open connections, mutex waiters, keys and disk usage.
// The front-ends and core know nothing of Prometheus: they report through
// plain funcs (core.Config.CommitObserver, resp.Config.Observe,
// httpapi.Config.Observe) that cmd/concurrencydb wires to a Metrics.
//
// Invariants:
//
//   - X1: every label value comes from a bounded set chosen by the server
//     (command names from the command table or "unknown", HTTP route
//     patterns or "unmatched", statuses as codes or RESP error prefixes),
//     never from client input, so a client cannot grow the series count.
//   - X2: collecting never takes the store's apply lock for long and never
//     waits for a commit: gauges read counters, and the key count is a scan
//     of committed data cached for KeysRefresh.
package metrics
