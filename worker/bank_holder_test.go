//go:build amd64 && !race

package worker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"mplock/lock"
	"mplock/shm"
)

// turnLock is a lock.Locker for two goroutines that hands the lock over on
// every release: slot i may take it only on its turn, and its Unlock gives
// the turn to the other. Every operation then changes the holder.
type turnLock struct {
	slot  int
	turns [2]chan struct{} // turns[i] has a token when slot i may take the lock
}

func (l *turnLock) Lock(ctx context.Context) error {
	select {
	case <-l.turns[l.slot]:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (l *turnLock) TryLock() (bool, error) { panic("not used") }
func (l *turnLock) Unlock() error          { l.turns[1-l.slot] <- struct{}{}; return nil }
func (l *turnLock) Close() error           { return nil }

// TestBankHolderNamedBeforeHolding: whenever a worker's phase says it holds
// the lock, the account's holder word already names it. A stalled run names
// the worker its holder word holds; the stalled-holder test stops a worker
// it saw holding, and once named the worker it took over from, stopped in
// between (the phase was written before the holder word).
//
// Two workers hand the lock over on every operation while this test reads,
// in this order, a worker's count, its phase, the holder word, its phase and
// its count again: when both phases say holding and both counts agree, the
// worker held the lock all along (it counts an operation before leaving the
// holding phase, and must leave it for the other to take over), so the
// holder word must name it. The reads rely on amd64's ordering of stores
// (the workers write their words with plain stores, shm.StoreRelaxed32),
// and the race detector would rightly report them.
func TestBankHolderNamedBeforeHolding(t *testing.T) {
	const ops = 200_000
	r, err := shm.Create(shm.CreateOptions{Size: shm.BankSize(2)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bank, err := shm.NewBank(r, 2, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	turns := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
	turns[0] <- struct{}{}
	var wg sync.WaitGroup
	var running atomic.Int32
	errs := make([]error, 2)
	for i := range 2 {
		running.Add(1)
		wg.Go(func() {
			defer running.Add(-1)
			spec := BankSpec{Slot: i, Kind: lock.Flock, Ops: ops, NoLatency: true}
			_, errs[i] = bankLoop(context.Background(), bank, spec, &turnLock{slot: i, turns: turns}, &BankReport{})
		})
	}
	checked, wrong := 0, 0
	var example string
	for running.Load() == 2 {
		for i := range 2 {
			s := bank.Slot(i)
			c1 := s.Deposits.Load() + s.Withdrawals.Load()
			p1 := shm.SlotPhase(s.Phase.Load())
			h := bank.Account.Holder.Load()
			p2 := shm.SlotPhase(s.Phase.Load())
			c2 := s.Deposits.Load() + s.Withdrawals.Load()
			if p1 != shm.PhaseHolding || p2 != shm.PhaseHolding || c1 != c2 {
				continue
			}
			checked++
			if h != uint32(i+1) {
				wrong++
				example = fmt.Sprintf("worker %d holding, holder word %d (worker %d)", i, h, int(h)-1)
			}
		}
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	t.Logf("%d readings of a worker holding the lock over %d handovers", checked, 2*ops)
	if checked == 0 {
		t.Fatal("never read a worker holding the lock")
	}
	if wrong > 0 {
		t.Fatalf("%d of %d readings of a worker holding the lock found the holder word naming another, such as %s", wrong, checked, example)
	}
}
