package main

import (
	"net/http"
	"time"
)

// httpLimits bound what one HTTP client may hold: a client that sends its
// headers or body slowly, or keeps an idle connection open, is cut off, so
// slow or stalled clients cannot pin connections and goroutines forever
// (issue 5).
type httpLimits struct {
	ReadHeader time.Duration // request line and headers
	Read       time.Duration // the whole request, body included
	Idle       time.Duration // a keep-alive connection between requests
	HeaderMax  int           // bytes of request headers
}

var defaultHTTPLimits = httpLimits{
	ReadHeader: 10 * time.Second,
	Read:       60 * time.Second,
	Idle:       120 * time.Second,
	HeaderMax:  64 << 10,
}

// newHTTPServer is the HTTP server serve runs, with its limits; tests build
// it with shorter ones.
func newHTTPServer(h http.Handler, l httpLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeader,
		ReadTimeout:       l.Read,
		IdleTimeout:       l.Idle,
		MaxHeaderBytes:    l.HeaderMax,
	}
}
