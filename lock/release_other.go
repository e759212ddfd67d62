//go:build !amd64

package lock

import "sync/atomic"

// storeRelease writes v to *w with (at least) release semantics.
func storeRelease(w *atomic.Uint32, v uint32) { w.Store(v) }
