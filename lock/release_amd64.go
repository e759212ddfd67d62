package lock

import (
	"sync/atomic"
	"unsafe"
)

// storeRelease writes v to *w with release semantics. On amd64 every store
// already has them (TSO), so a plain MOV does, where atomic.Uint32.Store
// issues a locked XCHG that costs as much as the acquiring CAS. The Go
// compiler keeps stores in program order, so the critical section's writes
// cannot move past it.
func storeRelease(w *atomic.Uint32, v uint32) { *(*uint32)(unsafe.Pointer(w)) = v }
