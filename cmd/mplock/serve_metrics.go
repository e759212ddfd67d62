package main

import (
	"net"
	"net/http"
	"time"

	"mplock/internal/netlimit"
)

// The metrics and health port's bounds. It has no authentication, so
// whoever reaches it must not be able to hold its connections, memory or
// the process's file descriptors (which the lock service needs): it has
// at most maxMetricsConns connections open (more wait in the kernel's
// queue), each with deadlines on reading the request, writing the answer
// and idling between requests, and small headers. A Prometheus scrape is
// one short request every few seconds.
const (
	maxMetricsConns       = 32
	metricsHeaderTimeout  = 5 * time.Second
	metricsReadTimeout    = 10 * time.Second
	metricsWriteTimeout   = 30 * time.Second
	metricsIdleTimeout    = 30 * time.Second
	metricsMaxHeaderBytes = 8 << 10
)

// serveMetrics serves handler on ln within the bounds above until the
// returned server is shut down.
func serveMetrics(ln net.Listener, handler http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: metricsHeaderTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
	}
	go srv.Serve(netlimit.Listener(ln, maxMetricsConns))
	return srv
}
