package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// BankVersion is the version of the bank layout this binary reads and writes.
// Version 2 added each worker's phase (Slot.Phase), the trace rings (Trace)
// and the flag that stops them (Control.TraceFreeze).
const BankVersion uint32 = 2

// MaxWorkers bounds the slots of a bank region.
const MaxWorkers = 1024

// Control is the run's control line: the start barrier, the stop flag, and
// counters the coordinator reads. Initial and Amount are constants written
// before the workers start, kept here so that a tool inspecting a named region
// can turn the account word into a balance.
type Control struct {
	Start      atomic.Uint32 // 0 until the coordinator opens the start barrier (futex word)
	Stop       atomic.Uint32 // set to 1 to ask every worker to finish its current operation and exit
	Ready      atomic.Uint32 // workers registered and waiting at the barrier (futex word)
	Recoveries atomic.Uint32 // locks taken over from a dead holder (sem, spin)
	Finished   atomic.Uint32 // workers that completed their operations
	// TraceFreeze, once set (by the first worker done), tells the workers
	// to record half a ring more of their operations and then stop, so that
	// the rings keep the last operations they made together.
	TraceFreeze atomic.Uint32
	Initial     int64
	Amount      int64
	// FrozenNs is the monotonic clock just before TraceFreeze was set.
	FrozenNs atomic.Int64
	_        [LineSize - 48]byte
}

// Account is the shared balance. Word packs two 32-bit halves:
//
//	high: version, incremented by every write (the length of the chain of
//	      writes that the current value descends from);
//	low:  the net number of deposits minus withdrawals in that chain, biased
//	      by 2^31 so that one atomic add can apply +1 or -1 to both halves.
//
// A worker reads Word, and writes back Word+Deposit or Word+Withdraw. When two
// workers race (no lock), one write overwrites the other and drops it from the
// chain: the number of lost updates is then exactly the number of committed
// operations minus the version's advance, which the net count alone (where a
// lost deposit and a lost withdrawal cancel) could not tell. The balance is
// Initial + Amount*net.
type Account struct {
	Word   atomic.Uint64
	Holder atomic.Uint32 // slot+1 of the worker that most recently took the lock
	_      [LineSize - 12]byte
}

// Deltas a worker adds to Account.Word; correct for a plain read-modify-write
// and for atomic.Uint64.Add alike (the withdraw delta's carry increments the
// version while the low half drops by one).
const (
	Deposit  uint64 = 1<<32 + 1
	Withdraw uint64 = 1<<32 - 1
	netBias         = 1 << 31
)

// PackAccount returns the account word for a version and net count.
func PackAccount(version uint32, net int32) uint64 {
	return uint64(version)<<32 | uint64(uint32(int64(net)+netBias))
}

// UnpackAccount splits an account word into version and net count.
func UnpackAccount(w uint64) (version uint32, net int32) {
	return uint32(w >> 32), int32(int64(uint32(w)) - netBias)
}

// LockWord is a 32-bit futex word on its own line, used by the lock kinds that
// live in the region (sem, spin).
type LockWord struct {
	Word atomic.Uint32
	_    [LineSize - 4]byte
}

// SlotState is a worker's life cycle as seen in its slot.
type SlotState uint32

// Slot states, in order.
const (
	SlotEmpty   SlotState = iota // not yet registered
	SlotReady                    // registered, waiting at the start barrier
	SlotRunning                  // past the barrier
	SlotDone                     // finished and reported
)

func (s SlotState) String() string {
	switch s {
	case SlotEmpty:
		return "empty"
	case SlotReady:
		return "ready"
	case SlotRunning:
		return "running"
	case SlotDone:
		return "done"
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// SlotPhase is where a running worker is in its operation, as its slot
// shows it: what it was doing when it was stopped, or killed.
type SlotPhase uint32

// Slot phases.
const (
	PhaseIdle    SlotPhase = iota // between operations, or thinking
	PhaseWaiting                  // asking for the lock
	PhaseHolding                  // holding the lock (or, without one, between its read and its write)
)

func (p SlotPhase) String() string {
	switch p {
	case PhaseIdle:
		return "between operations"
	case PhaseWaiting:
		return "waiting for the lock"
	case PhaseHolding:
		return "holding the lock"
	}
	return fmt.Sprintf("phase(%d)", uint32(p))
}

// Slot is one worker's record. Only that worker writes it; the coordinator
// reads it at any time, also after the worker died, which is why the committed
// counts live here and not only in the worker's final report.
type Slot struct {
	Pid         atomic.Int32
	State       atomic.Uint32 // a SlotState
	Deposits    atomic.Uint64 // deposits this worker committed
	Withdrawals atomic.Uint64 // withdrawals this worker committed
	Phase       atomic.Uint32 // a SlotPhase, stored without ordering (StoreRelaxed32)
	_           [LineSize - 28]byte
}

// Every record fills exactly one line: these fail to compile otherwise.
var (
	_ [LineSize - unsafe.Sizeof(Control{})]byte
	_ [unsafe.Sizeof(Control{}) - LineSize]byte
	_ [LineSize - unsafe.Sizeof(Account{})]byte
	_ [unsafe.Sizeof(Account{}) - LineSize]byte
	_ [LineSize - unsafe.Sizeof(LockWord{})]byte
	_ [unsafe.Sizeof(LockWord{}) - LineSize]byte
	_ [LineSize - unsafe.Sizeof(Slot{})]byte
	_ [unsafe.Sizeof(Slot{}) - LineSize]byte
)

// Bank is the typed view of a bank region.
type Bank struct {
	Header  *Header
	Control *Control
	Account *Account
	Sem     *LockWord // the futex semaphore (kind sem)
	Spin    *LockWord // the spinlock (kind spin)
	slots   []Slot
	traces  []Trace
}

// Bank record offsets, one record per line.
const (
	bankControl = LineSize * (iota + 1)
	bankAccount
	bankSem
	bankSpin
	bankSlots
)

// BankSize returns the bytes a bank region for workers needs: the records
// above, a slot per worker, then a trace per worker.
func BankSize(workers int) int {
	return bankSlots + workers*int(unsafe.Sizeof(Slot{})+unsafe.Sizeof(Trace{}))
}

// NewBank writes a fresh bank layout into r for workers workers with the
// given starting balance and amount per operation. r must be zero-filled and
// at least BankSize(workers) bytes; no other process may use it yet.
func NewBank(r *Region, workers int, initial, amount int64) (*Bank, error) {
	if workers < 1 || workers > MaxWorkers {
		return nil, fmt.Errorf("shm: bank: %d workers, want 1 to %d", workers, MaxWorkers)
	}
	h, err := at[Header](r, 0)
	if err != nil {
		return nil, err
	}
	*h = Header{Magic: Magic, Version: BankVersion, Layout: LayoutBank, Workers: uint32(workers), Size: uint64(BankSize(workers))}
	b, err := viewBank(r, h)
	if err != nil {
		return nil, err
	}
	b.Control.Initial, b.Control.Amount = initial, amount
	b.Account.Word.Store(PackAccount(0, 0))
	return b, nil
}

// OpenBank checks that r holds a bank layout of this version and returns its
// typed view. It fails with ErrLayout for anything else.
func OpenBank(r *Region) (*Bank, error) {
	h, err := at[Header](r, 0)
	if err != nil {
		return nil, err
	}
	if err := h.check(LayoutBank, BankVersion, r.Size()); err != nil {
		return nil, err
	}
	if h.Workers < 1 || h.Workers > MaxWorkers || h.Size != uint64(BankSize(int(h.Workers))) {
		return nil, fmt.Errorf("%w: bank of %d workers cannot be %d bytes", ErrLayout, h.Workers, h.Size)
	}
	return viewBank(r, h)
}

func viewBank(r *Region, h *Header) (*Bank, error) {
	b := &Bank{Header: h}
	var err error
	if b.Control, err = at[Control](r, bankControl); err != nil {
		return nil, err
	}
	if b.Account, err = at[Account](r, bankAccount); err != nil {
		return nil, err
	}
	if b.Sem, err = at[LockWord](r, bankSem); err != nil {
		return nil, err
	}
	if b.Spin, err = at[LockWord](r, bankSpin); err != nil {
		return nil, err
	}
	n := int(h.Workers)
	first, err := at[Slot](r, bankSlots)
	if err != nil {
		return nil, err
	}
	if _, err := at[Slot](r, bankSlots+uintptr(n-1)*unsafe.Sizeof(Slot{})); err != nil {
		return nil, err
	}
	b.slots = unsafe.Slice(first, n)
	traces := bankSlots + uintptr(n)*unsafe.Sizeof(Slot{})
	firstTrace, err := at[Trace](r, traces)
	if err != nil {
		return nil, err
	}
	if _, err := at[Trace](r, traces+uintptr(n-1)*unsafe.Sizeof(Trace{})); err != nil {
		return nil, err
	}
	b.traces = unsafe.Slice(firstTrace, n)
	return b, nil
}

// Workers returns the number of worker slots.
func (b *Bank) Workers() int { return len(b.slots) }

// Slot returns worker i's slot; it panics when i is out of range.
func (b *Bank) Slot(i int) *Slot { return &b.slots[i] }

// Trace returns worker i's trace ring; it panics when i is out of range.
func (b *Bank) Trace(i int) *Trace { return &b.traces[i] }

// Balance returns the current balance and the account's version.
func (b *Bank) Balance() (balance int64, version uint32) {
	v, net := UnpackAccount(b.Account.Word.Load())
	return b.Control.Initial + b.Control.Amount*int64(net), v
}
