//go:build tools

// Package tools pins modules that parts of mplock under construction will
// import, so that concurrent work does not race on go.mod. It is never built.
package tools

import (
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "golang.org/x/perf/benchfmt"
	_ "golang.org/x/sync/errgroup"
	_ "gonum.org/v1/plot"
)
