package shm

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// reopen maps the same memory through a second, independent descriptor and
// mapping, as a worker process does with the descriptor it inherits.
func reopen(t *testing.T, r *Region) *Region {
	t.Helper()
	fd, err := unix.Dup(int(r.File().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(os.NewFile(uintptr(fd), "dup"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	return r2
}

func newBankRegion(t *testing.T, workers int) (*Region, *Bank) {
	t.Helper()
	r, err := Create(CreateOptions{Size: BankSize(workers)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	b, err := NewBank(r, workers, 600, 5)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

func TestBankLayoutRoundTrip(t *testing.T) {
	r, b := newBankRegion(t, 3)
	b.Control.Start.Store(1)
	b.Control.Recoveries.Store(2)
	b.Account.Word.Store(PackAccount(7, -3))
	b.Account.Holder.Store(2)
	b.Sem.Word.Store(4242)
	b.Spin.Word.Store(4343)
	for i := range 3 {
		s := b.Slot(i)
		s.Pid.Store(int32(100 + i))
		s.State.Store(uint32(SlotRunning))
		s.Deposits.Store(uint64(10 * i))
		s.Withdrawals.Store(uint64(i))
	}

	b2, err := OpenBank(reopen(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if b2.Workers() != 3 || b2.Control.Initial != 600 || b2.Control.Amount != 5 {
		t.Fatalf("header: workers %d initial %d amount %d", b2.Workers(), b2.Control.Initial, b2.Control.Amount)
	}
	if b2.Control.Start.Load() != 1 || b2.Control.Recoveries.Load() != 2 || b2.Account.Holder.Load() != 2 {
		t.Fatal("control or account fields did not round-trip")
	}
	if b2.Sem.Word.Load() != 4242 || b2.Spin.Word.Load() != 4343 {
		t.Fatal("lock words did not round-trip")
	}
	for i := range 3 {
		s := b2.Slot(i)
		if s.Pid.Load() != int32(100+i) || SlotState(s.State.Load()) != SlotRunning ||
			s.Deposits.Load() != uint64(10*i) || s.Withdrawals.Load() != uint64(i) {
			t.Fatalf("slot %d did not round-trip", i)
		}
	}
	if bal, v := b2.Balance(); bal != 600-15 || v != 7 {
		t.Fatalf("balance %d version %d, want 585 and 7", bal, v)
	}
	// The mappings share memory: a write through one is seen through the other.
	b2.Slot(1).Deposits.Add(1)
	if b.Slot(1).Deposits.Load() != 11 {
		t.Fatal("second mapping does not share memory with the first")
	}
}

func TestOpenBankRefusesUnknownLayouts(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(h *Header)
	}{
		{"magic", func(h *Header) { h.Magic = 0xdeadbeef }},
		{"version", func(h *Header) { h.Version = BankVersion + 1 }},
		// A worker of this binary must not run in a region laid out for
		// version 1, which has no traces after its slots.
		{"version 1", func(h *Header) { h.Version = 1 }},
		{"layout", func(h *Header) { h.Layout = LayoutMutex }},
		{"size", func(h *Header) { h.Size = 1 << 40 }},
		{"workers", func(h *Header) { h.Workers = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, b := newBankRegion(t, 2)
			tt.corrupt(b.Header)
			if _, err := OpenBank(reopen(t, r)); !errors.Is(err, ErrLayout) {
				t.Fatalf("OpenBank = %v, want ErrLayout", err)
			}
		})
	}
}

func TestAccountWordArithmetic(t *testing.T) {
	// The deltas must move version and net together for a plain add (the
	// locked read-modify-write) and an atomic add alike, across zero.
	w := PackAccount(0, 0)
	var b Bank
	b.Account = &Account{}
	b.Account.Word.Store(w)
	for range 3 {
		b.Account.Word.Add(Withdraw)
	}
	b.Account.Word.Store(b.Account.Word.Load() + Deposit)
	v, net := UnpackAccount(b.Account.Word.Load())
	if v != 4 || net != -2 {
		t.Fatalf("after 3 withdrawals and a deposit: version %d net %d, want 4 and -2", v, net)
	}
	for _, n := range []int32{0, 1, -1, 1 << 30, -(1 << 30)} {
		if _, got := UnpackAccount(PackAccount(9, n)); got != n {
			t.Fatalf("net %d round-tripped to %d", n, got)
		}
	}
}

func TestNamedRegionIsPrivateAndRemoved(t *testing.T) {
	name := "mplock-test-" + unixPid()
	r, err := Create(CreateOptions{Size: 100, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(NamedPath(name))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if st.Size() != int64(r.Size()) || r.Size()%unix.Getpagesize() != 0 {
		t.Errorf("size %d, region %d: want one page-rounded size", st.Size(), r.Size())
	}
	if _, err := Create(CreateOptions{Size: 100, Name: name}); err == nil {
		t.Error("creating an existing named region succeeded; want an error")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(NamedPath(name)); !os.IsNotExist(err) {
		t.Errorf("after Close: %v, want the file gone", err)
	}
}

func TestValidName(t *testing.T) {
	for _, bad := range []string{"", ".hidden", "a/b", "../x", "a b", string(make([]byte, 201))} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) = nil, want an error", bad)
		}
	}
	for _, good := range []string{"bank", "mplock-1.run_2"} {
		if err := ValidName(good); err != nil {
			t.Errorf("ValidName(%q) = %v", good, err)
		}
	}
}

func unixPid() string { return strconv.Itoa(os.Getpid()) }

func TestReadOnlyInspection(t *testing.T) {
	name := "mplock-test-ro-" + strconv.Itoa(os.Getpid())
	r, err := Create(CreateOptions{Size: BankSize(2), Name: name})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := NewBank(r, 2, 600, 5)
	if err != nil {
		t.Fatal(err)
	}
	b.Account.Word.Store(PackAccount(3, 1))
	f, err := os.Open(NamedPath(name)) // read-only, as an inspecting tool would
	if err != nil {
		t.Fatal(err)
	}
	ro, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	b2, err := OpenBank(ro)
	if err != nil {
		t.Fatal(err)
	}
	if bal, v := b2.Balance(); bal != 605 || v != 3 {
		t.Fatalf("read-only view: balance %d version %d, want 605 and 3", bal, v)
	}
}

// TestTraceRing: a worker's trace keeps its latest TraceLen operations in
// order, readable through another mapping, and a record counts only once
// written whole.
func TestTraceRing(t *testing.T) {
	r, b := newBankRegion(t, 2)
	tr := b.Trace(1)
	for i := range uint64(TraceLen + 72) {
		tr.Add(PackAccount(uint32(i), 0), PackAccount(uint32(i), 1), int64(10*i), int64(10*i+5))
	}
	b.Slot(1).Phase.Store(uint32(PhaseHolding))
	b2, err := OpenBank(reopen(t, r))
	if err != nil {
		t.Fatal(err)
	}
	ops := b2.Trace(1).Snapshot()
	if len(ops) != TraceLen {
		t.Fatalf("%d operations, want the last %d", len(ops), TraceLen)
	}
	for k, op := range ops {
		i := uint64(72 + k)
		if op.Read != PackAccount(uint32(i), 0) || op.Seen != PackAccount(uint32(i), 1) || op.ReadNs != int64(10*i) || op.WriteNs != int64(10*i+5) {
			t.Fatalf("operation %d: %+v", k, op)
		}
	}
	if n := len(b2.Trace(0).Snapshot()); n != 0 {
		t.Fatalf("worker 0 traced nothing, but %d operations read back", n)
	}
	if got := SlotPhase(b2.Slot(1).Phase.Load()); got != PhaseHolding || got.String() != "holding the lock" {
		t.Fatalf("phase %v", got)
	}
	// The traces lie past the slots, inside the region's size.
	b2.Trace(1).Records[TraceLen-1].WriteNs.Store(1)
}

// TestFreezeTraces: only the first freeze counts, with its time.
func TestFreezeTraces(t *testing.T) {
	_, b := newBankRegion(t, 1)
	b.Control.FreezeTraces(100)
	b.Control.FreezeTraces(200)
	if b.Control.TraceFreeze.Load() != 1 || b.Control.FrozenNs.Load() != 100 {
		t.Fatalf("freeze %d at %d, want 1 at 100", b.Control.TraceFreeze.Load(), b.Control.FrozenNs.Load())
	}
}
