package shm

import (
	"sync/atomic"
	"unsafe"
)

// StoreRelaxed64 writes v to *p with a plain store, where atomic.Uint64.Store
// would issue a sequentially consistent one (a locked XCHG on amd64, as
// expensive as the lock operation it follows).
//
// It is for words with one writer whose readers need no ordering beyond what
// something else already gives: a worker's committed count (read by the
// coordinator after the worker stops or dies), and the balance written inside
// a critical section (ordered by the lock's release). Aligned 64-bit stores
// are single-copy atomic on every 64-bit architecture Go supports, so a
// reader never sees a torn value, and the Go compiler keeps stores in program
// order.
func StoreRelaxed64(p *atomic.Uint64, v uint64) { *(*uint64)(unsafe.Pointer(p)) = v }

// StoreRelaxed32 is StoreRelaxed64 for a 32-bit word.
func StoreRelaxed32(p *atomic.Uint32, v uint32) { *(*uint32)(unsafe.Pointer(p)) = v }
