// Package httpapi is the HTTP adapter of concurrencydb: the /db/{acc}/…
// routes, query and body parsing, and status codes. It holds no semantics:
// every handler parses, calls one core.Store method and encodes the result.
//
// Files: server.go (the chi router and the route table), one file per
// resource (sequences.go, counters.go, kv.go, locks.go, mutex.go),
// errors.go (H3), observe.go (H6); the transport that serves them on an
// event loop: loop.go (Server, accept, the loop's pass, shutdown), conn.go
// (a connection: input, responses held until durable, deadlines) and
// request.go (the request head parser).
//
// Invariants:
//
//   - H1: a handler writes its response only after the core call returned;
//     with the transport's H7 no reply leaves before the write it reflects
//     is synced (core's D1).
//   - H2: a request with a missing or malformed parameter is answered 400
//     before any core call, so it changes nothing; so is one with a body
//     on an endpoint that reads none (a form's owner=…, count=… or
//     handle=… would be ignored: a release without its owner is a force
//     release).
//   - H3: errors map to statuses in one table (errors.go); every core
//     sentinel has a row, and error bodies are always JSON
//     {"error": code, "message": sentence}.
//   - H4: scalar results are plain text (a number and a newline, or the raw
//     value) unless the client sends Accept: application/json.
//   - H5: when auth is enabled, every /db/ request is authenticated and
//     authorised for its account before anything else is parsed.
//   - H6: every request is reported once to Config.Observe, labelled with
//     its method and route pattern, never its raw path (metrics X1), or
//     "unmatched" (no route, or refused by the transport before routing);
//     GET /metrics needs the global token when auth is enabled, because its
//     figures span every account.
//   - H7: the event-loop transport (Server; loop.go, conn.go) runs
//     handlers with a core.Pipeline context and holds each response until
//     every core call it made is durable (Pending), replacing it with the
//     error when the fsync failed (D6); responses on one connection leave
//     in request order. A request is reported (H6) only then, so latencies
//     include the fsync.
//   - H8: what one client may hold is bounded (Limits): a request's headers
//     within ReadHeader, the whole request within Read, an idle connection
//     within Idle; headers over HeaderMax are answered 431 and a body over
//     limits.max_value_bytes 413 before it is read, and the connection is
//     closed; unread responses stop the reading of further requests. A
//     connection opened while MaxConns others are open is answered 503 to
//     its first request and closed (it does not count meanwhile, and is
//     closed after refusedWait if it sends nothing).
//   - H9: with auth on, a request's body is read only once its head showed
//     a token that grants the path's account (authorizeBody): a request
//     that fails auth is answered 401/403 from its head, with no 100
//     Continue, and the connection closed, so no client without a token
//     makes the server buffer a body. (Within the limits, a client with a
//     token may: bodies are buffered whole before the handler runs.) Outside
//     /db/ no route takes a body and none needs a token: there, a body of
//     more than 4 KiB, or chunked, is refused 413 from the head.
package httpapi
