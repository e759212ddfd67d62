package shm

import (
	"sync/atomic"
	"unsafe"
)

// TraceLen is how many of its latest operations a worker's trace keeps.
const TraceLen = 128

// TraceRecord is one read-modify-write of the account word, as a worker
// made it. The word written is Read plus the worker's delta (Deposit or
// Withdraw), so it is not stored.
//
// ReadNs and WriteNs are on the monotonic clock every process shares
// (CLOCK_MONOTONIC). With a hold they are the first and last clock reads of
// the hold itself, taken between the read and the write at no extra cost;
// without one they are read just before the read and just after the write,
// so that the clock does not widen the window in which a write can be lost.
type TraceRecord struct {
	Read    atomic.Uint64 // the account word read
	Seen    atomic.Uint64 // the word the write replaced (it swaps): not Read when it overwrote another's
	ReadNs  atomic.Int64
	WriteNs atomic.Int64
}

// Trace is one worker's ring of its latest operations. Only that worker
// writes it, with plain stores: the coordinator reads it after the worker
// has exited or died. A worker killed while writing a record has not yet
// counted it, so a record below Count is whole.
type Trace struct {
	Count   atomic.Uint64 // records written so far; record i is Records[i % TraceLen]
	_       [LineSize - 8]byte
	Records [TraceLen]TraceRecord
}

var _ [unsafe.Sizeof(Trace{}) % LineSize]struct{} = [0]struct{}{} // whole lines

// Add appends a record, overwriting the oldest once the ring is full.
func (t *Trace) Add(read, seen uint64, readNs, writeNs int64) {
	n := t.Count.Load() // only this worker writes Count: no race
	r := &t.Records[n%TraceLen]
	StoreRelaxed64(&r.Read, read)
	StoreRelaxed64(&r.Seen, seen)
	storeRelaxedInt64(&r.ReadNs, readNs)
	storeRelaxedInt64(&r.WriteNs, writeNs)
	StoreRelaxed64(&t.Count, n+1)
}

// TraceOp is a TraceRecord as read back.
type TraceOp struct {
	Read, Seen      uint64
	ReadNs, WriteNs int64
}

// Snapshot returns the operations the ring still holds, oldest first.
func (t *Trace) Snapshot() []TraceOp {
	n := t.Count.Load()
	first := uint64(0)
	if n > TraceLen {
		first = n - TraceLen
	}
	out := make([]TraceOp, 0, n-first)
	for i := first; i < n; i++ {
		r := &t.Records[i%TraceLen]
		out = append(out, TraceOp{Read: r.Read.Load(), Seen: r.Seen.Load(), ReadNs: r.ReadNs.Load(), WriteNs: r.WriteNs.Load()})
	}
	return out
}

// FreezeTraces raises TraceFreeze, and notes when (now, on the monotonic
// clock). Only the first call counts.
func (c *Control) FreezeTraces(now int64) {
	if c.TraceFreeze.CompareAndSwap(0, 1) {
		c.FrozenNs.Store(now)
	}
}

func storeRelaxedInt64(p *atomic.Int64, v int64) { *(*int64)(unsafe.Pointer(p)) = v }
