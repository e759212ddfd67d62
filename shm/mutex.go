package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// MutexVersion is the version of the mutex layout this binary reads and
// writes.
const MutexVersion uint32 = 1

// Limits of a mutex region.
const (
	MaxMutexSlots = 128      // peers and the lock server
	MaxMutexLog   = 16 << 20 // intervals: 768 MiB of address space, touched only as used
)

// MutexPhase is where a mutex run is; the coordinator moves it forward and
// wakes every process waiting on the word.
type MutexPhase uint32

// Phases, in order.
const (
	PhaseBarrier MutexPhase = iota // processes connect and register; nobody asks yet
	PhaseRun                       // the workload runs
	PhaseStop                      // finish the current request, ask no more, keep answering
	PhaseExit                      // close the links and exit
)

func (p MutexPhase) String() string {
	switch p {
	case PhaseBarrier:
		return "barrier"
	case PhaseRun:
		return "run"
	case PhaseStop:
		return "stop"
	case PhaseExit:
		return "exit"
	}
	return fmt.Sprintf("phase(%d)", uint32(p))
}

// MutexControl is a mutex run's control line, and the independent safety
// check's occupancy counter: every process increments Inside on entering the
// critical section and decrements it on leaving, whatever the algorithm.
type MutexControl struct {
	Phase     atomic.Uint32 // a MutexPhase (futex word)
	Ready     atomic.Uint32 // processes connected and registered (futex word)
	Inside    atomic.Int32  // processes in the critical section now
	MaxInside atomic.Int32  // the most ever inside at once
	Overlaps  atomic.Uint64 // entries that found another process inside
	LogNext   atomic.Uint64 // intervals claimed in the log, including those that did not fit
	LogCap    uint64        // intervals the log holds
	_         [LineSize - 40]byte
}

// MutexSlot is one process's record, written only by that process and read
// by the coordinator at any time, also after the process died: how far it
// got and whom it is waiting for.
type MutexSlot struct {
	Pid         atomic.Int32
	State       atomic.Uint32    // a SlotState
	Proc        atomic.Uint32    // the algorithm's state (dmutex.State)
	_           uint32           // alignment
	Entries     atomic.Uint64    // critical-section entries made
	Sent        atomic.Uint64    // algorithm messages sent
	Rejected    atomic.Uint64    // malformed or unexpected messages refused
	RequestedAt atomic.Int64     // monotonic ns of the current request; 0 when none
	Clock       atomic.Uint64    // Lamport clock
	Awaiting    [2]atomic.Uint64 // ids whose message the current request needs (dmutex.Set words)
	Token       atomic.Uint32    // 1 while the process holds the token (token ring)
	_           [LineSize - 76]byte
}

// MutexInterval is one stay in the critical section, on the monotonic clock
// every process on the machine shares. Exited is 0 while the process is
// inside (or if it died there).
type MutexInterval struct {
	Proc      uint32
	_         uint32
	TS        uint64 // the request's Lamport timestamp
	Requested int64  // ns
	Entered   int64  // ns
	Exited    int64  // ns
	_         int64
}

// Every record has its intended size: these fail to compile otherwise.
var (
	_ [LineSize - unsafe.Sizeof(MutexControl{})]byte
	_ [unsafe.Sizeof(MutexControl{}) - LineSize]byte
	_ [LineSize - unsafe.Sizeof(MutexSlot{})]byte
	_ [unsafe.Sizeof(MutexSlot{}) - LineSize]byte
	_ [48 - unsafe.Sizeof(MutexInterval{})]byte
	_ [unsafe.Sizeof(MutexInterval{}) - 48]byte
)

// Mutex is the typed view of a mutex region: header, control line, one slot
// per process, then the interval log.
type Mutex struct {
	Header  *Header
	Control *MutexControl
	slots   []MutexSlot
	log     []MutexInterval
}

const (
	mutexControl = LineSize
	mutexSlots   = 2 * LineSize
)

// MutexSize returns the bytes a mutex region needs for slots processes and a
// log of logCap intervals.
func MutexSize(slots, logCap int) int {
	return mutexSlots + slots*int(unsafe.Sizeof(MutexSlot{})) + logCap*int(unsafe.Sizeof(MutexInterval{}))
}

// NewMutex writes a fresh mutex layout into r. r must be zero-filled and at
// least MutexSize(slots, logCap) bytes; no other process may use it yet.
func NewMutex(r *Region, slots, logCap int) (*Mutex, error) {
	if slots < 1 || slots > MaxMutexSlots {
		return nil, fmt.Errorf("shm: mutex: %d slots, want 1 to %d", slots, MaxMutexSlots)
	}
	if logCap < 1 || logCap > MaxMutexLog {
		return nil, fmt.Errorf("shm: mutex: log of %d intervals, want 1 to %d", logCap, MaxMutexLog)
	}
	h, err := at[Header](r, 0)
	if err != nil {
		return nil, err
	}
	*h = Header{Magic: Magic, Version: MutexVersion, Layout: LayoutMutex, Workers: uint32(slots), Size: uint64(MutexSize(slots, logCap))}
	ctl, err := at[MutexControl](r, mutexControl)
	if err != nil {
		return nil, err
	}
	ctl.LogCap = uint64(logCap)
	return viewMutex(r, h)
}

// OpenMutex checks that r holds a mutex layout of this version and returns
// its typed view. It fails with ErrLayout for anything else.
func OpenMutex(r *Region) (*Mutex, error) {
	h, err := at[Header](r, 0)
	if err != nil {
		return nil, err
	}
	if err := h.check(LayoutMutex, MutexVersion, r.Size()); err != nil {
		return nil, err
	}
	return viewMutex(r, h)
}

func viewMutex(r *Region, h *Header) (*Mutex, error) {
	m := &Mutex{Header: h}
	var err error
	if m.Control, err = at[MutexControl](r, mutexControl); err != nil {
		return nil, err
	}
	slots, logCap := int(h.Workers), m.Control.LogCap
	if slots < 1 || slots > MaxMutexSlots || logCap < 1 || logCap > MaxMutexLog ||
		h.Size != uint64(MutexSize(slots, int(logCap))) {
		return nil, fmt.Errorf("%w: mutex of %d slots and %d intervals cannot be %d bytes", ErrLayout, slots, logCap, h.Size)
	}
	first, err := at[MutexSlot](r, mutexSlots)
	if err != nil {
		return nil, err
	}
	logOff := uintptr(mutexSlots) + uintptr(slots)*unsafe.Sizeof(MutexSlot{})
	if _, err := at[MutexSlot](r, logOff-unsafe.Sizeof(MutexSlot{})); err != nil {
		return nil, err
	}
	rec, err := at[MutexInterval](r, logOff)
	if err != nil {
		return nil, err
	}
	if _, err := at[MutexInterval](r, logOff+uintptr(logCap-1)*unsafe.Sizeof(MutexInterval{})); err != nil {
		return nil, err
	}
	m.slots = unsafe.Slice(first, slots)
	m.log = unsafe.Slice(rec, int(logCap))
	return m, nil
}

// Slots returns the number of process slots.
func (m *Mutex) Slots() int { return len(m.slots) }

// Slot returns process i's slot; it panics when i is out of range.
func (m *Mutex) Slot(i int) *MutexSlot { return &m.slots[i] }

// Phase returns the run's phase.
func (m *Mutex) Phase() MutexPhase { return MutexPhase(m.Control.Phase.Load()) }

// Entry is a process's handle on its interval in the log.
type Entry struct{ rec int64 }

// Enter records that proc entered the critical section at entered (ns, on
// the shared monotonic clock) for the request stamped ts at requested. It
// counts the process in Inside and reports whether it found it empty: false
// is a violation of mutual exclusion, also counted in Control.Overlaps.
//
// Call it after the algorithm allowed the entry and before touching the
// protected resource; call Exit before letting anyone else in. Then, for a
// correct algorithm, the logged intervals never overlap.
func (m *Mutex) Enter(proc int, ts uint64, requested, entered int64) (Entry, bool) {
	ctl := m.Control
	n := ctl.Inside.Add(1)
	for old := ctl.MaxInside.Load(); n > old && !ctl.MaxInside.CompareAndSwap(old, n); old = ctl.MaxInside.Load() {
	}
	alone := n == 1
	if !alone {
		ctl.Overlaps.Add(1)
	}
	i := int64(ctl.LogNext.Add(1) - 1)
	if i >= int64(len(m.log)) {
		return Entry{rec: -1}, alone
	}
	m.log[i] = MutexInterval{Proc: uint32(proc), TS: ts, Requested: requested, Entered: entered}
	return Entry{rec: i}, alone
}

// Exit records that the process of e left the critical section at exited.
func (m *Mutex) Exit(e Entry, exited int64) {
	if e.rec >= 0 {
		m.log[e.rec].Exited = exited
	}
	m.Control.Inside.Add(-1)
}

// Intervals returns the logged intervals, in the order they were claimed
// (which is entry order only when the processes excluded each other).
// Read it when no process writes any more.
func (m *Mutex) Intervals() []MutexInterval {
	n := min(m.Control.LogNext.Load(), uint64(len(m.log)))
	return m.log[:n]
}

// Dropped returns how many entries did not fit in the log.
func (m *Mutex) Dropped() uint64 {
	n := m.Control.LogNext.Load()
	return n - min(n, uint64(len(m.log)))
}
