package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"mplock/lock"
	"mplock/shm"
)

// Latency histogram range: 1 ns to 100 s at 3 significant digits.
const (
	latencyMin    = 1
	latencyMax    = 100 * int64(time.Second)
	latencyDigits = 3
)

// NewLatencyHistogram returns an empty acquire-latency histogram with the
// range and precision workers record with.
func NewLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(latencyMin, latencyMax, latencyDigits)
}

// RunBank is a bank worker's whole life: open the region and the lock,
// register in its slot, wait at the start barrier, run the operation loop,
// and write a BankReport to report.
//
// Each operation takes the lock, reads the account word, optionally holds,
// writes the word back with its deposit or withdrawal applied, counts the
// operation in its slot, and releases the lock. The loop ends after spec.Ops
// operations, or when the coordinator sets the stop flag, or when ctx ends.
func RunBank(ctx context.Context, region *shm.Region, spec BankSpec, report io.Writer) error {
	bank, err := shm.OpenBank(region)
	if err != nil {
		return err
	}
	if spec.Slot < 0 || spec.Slot >= bank.Workers() {
		return fmt.Errorf("worker: slot %d outside the region's %d slots", spec.Slot, bank.Workers())
	}
	pid := os.Getpid()
	rep := &BankReport{Slot: spec.Slot, Pid: pid, Role: RoleOf(spec.Slot), PinnedTo: -1}
	word := bank.Sem
	if spec.Kind == lock.Spin {
		word = bank.Spin
	}
	lk, err := lock.Open(spec.Kind, lock.Config{
		Path:  spec.LockFile,
		SemID: spec.SemID,
		Word:  &word.Word,
		Pid:   pid,
		OnRecover: func(dead int) {
			rep.Recovered = append(rep.Recovered, dead)
			bank.Control.Recoveries.Add(1)
		},
	})
	if err != nil {
		return err
	}
	defer lk.Close()

	// One goroutine does all the work: keep it on one thread, and keep the
	// garbage collector out of the timed loop (it allocates nothing).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if spec.Pin {
		if rep.PinnedTo, err = pinThread(spec.CPU); err != nil {
			return err
		}
	}

	slot := bank.Slot(spec.Slot)
	slot.Pid.Store(int32(pid))
	slot.State.Store(uint32(shm.SlotReady))
	ctl := bank.Control
	ctl.Ready.Add(1)
	if _, err := shm.Wake(&ctl.Ready, 1); err != nil {
		return err
	}
	for ctl.Start.Load() == 0 {
		if ctl.Stop.Load() != 0 || ctx.Err() != nil {
			return writeReport(report, rep)
		}
		if err := shm.Wait(&ctl.Start, 0, 100*time.Millisecond); err != nil && err != shm.ErrTimeout {
			return err
		}
	}
	slot.State.Store(uint32(shm.SlotRunning))

	rep.Start = nanotime()
	hist, err := bankLoop(ctx, bank, spec, lk, rep)
	rep.End = nanotime()
	if err != nil {
		return err
	}
	if hist != nil {
		if rep.Latency, err = hist.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err != nil {
			return fmt.Errorf("worker: encode latency: %w", err)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		rep.UserNs, rep.SysNs = ru.Utime.Nano(), ru.Stime.Nano()
	}
	slot.State.Store(uint32(shm.SlotDone))
	return writeReport(report, rep)
}

// bankLoop runs the operations and returns the acquire-latency histogram in
// nanoseconds (nil when not recorded).
func bankLoop(ctx context.Context, bank *shm.Bank, spec BankSpec, lk lock.Locker, rep *BankReport) (*hdrhistogram.Histogram, error) {
	slot, ctl, acct := bank.Slot(spec.Slot), bank.Control, bank.Account
	role := RoleOf(spec.Slot)
	delta, counter := shm.Deposit, &slot.Deposits
	if role == Withdrawer {
		delta, counter = shm.Withdraw, &slot.Withdrawals
	}
	me := uint32(spec.Slot + 1)
	excludes := !spec.Kind.LockFree()
	var tm timer
	if !spec.NoLatency && !spec.Kind.LockFree() {
		// In ticks: 1e12 covers 100s at any clock rate below 10 GHz.
		tm = timer{hist: hdrhistogram.New(1, 1e12, latencyDigits), clock: newTicks()}
	}
	timing := tm.hist != nil
	limit := int64(math.MaxInt64)
	switch {
	case spec.Ops > 0:
		limit = spec.Ops
	case spec.Cap > 0:
		limit = spec.Cap
	}
	// The trace records every operation until the freeze flag is up (the
	// first worker is done; the others go on alone), then half a ring more,
	// so that every ring keeps the last operations the workers made
	// together, and what came just after.
	trace := bank.Trace(spec.Slot)
	recorded, recordUntil := uint64(0), uint64(math.MaxUint64)
	var ops, run int64
	for ops < limit {
		if ctl.Stop.Load() != 0 {
			break
		}
		if spec.Think >= spinBelow {
			// A long think waits on the stop word, so that a stop (the
			// deadline, Ctrl-C) ends it at once rather than Think later.
			if stopped, err := waitStop(ctl, spec.Think); err != nil || stopped {
				if err != nil {
					return nil, err
				}
				break
			}
		} else if spec.Think > 0 {
			pause(spec.Think)
		}
		if spec.Kind == lock.Atomic {
			acct.Word.Add(delta)
			ops++
			shm.StoreRelaxed64(counter, uint64(ops))
			continue
		}
		shm.StoreRelaxed32(&slot.Phase, uint32(shm.PhaseWaiting))
		if err := acquire(ctx, lk, &tm); err != nil {
			if ctx.Err() != nil {
				break
			}
			return nil, err
		}
		if excludes {
			// Who held the lock before? Read inside the critical section, so
			// exact for every kind that excludes. Written before the phase:
			// a worker whose phase says holding is the one the holder word
			// names, even if it is stopped or killed between the two (a
			// stalled run names its holder from this word).
			if h := acct.Holder.Load(); h != me {
				shm.StoreRelaxed32(&acct.Holder, me)
				if h != 0 { // the run's first acquisition takes over from nobody
					rep.Handoffs++
				}
				run = 0
			}
			run++
			rep.MaxRun = max(rep.MaxRun, run)
		}
		shm.StoreRelaxed32(&slot.Phase, uint32(shm.PhaseHolding))
		if spec.Trace && recordUntil == math.MaxUint64 && ctl.TraceFreeze.Load() != 0 {
			recordUntil = recorded + shm.TraceLen/2
		}
		record := spec.Trace && recorded < recordUntil
		var readNs, writeNs int64
		if record && spec.Hold == 0 {
			readNs = nanotime() // before the read: no clock inside an empty window
		}
		w := acct.Word.Load()
		if spec.Hold > 0 {
			var stopped bool
			readNs, writeNs, stopped = hold(ctl, spec.Hold)
			if stopped {
				// A stop ends the hold at once: the operation is abandoned
				// before its write, as if it had not begun.
				shm.StoreRelaxed32(&slot.Phase, uint32(shm.PhaseIdle))
				if err := lk.Unlock(); err != nil {
					return nil, err
				}
				break
			}
		}
		// A plain store: inside the lock the release orders it; without one
		// (kind none) it is exactly the unprotected write being shown. A
		// traced write swaps instead, as blind as the store, to learn
		// exactly what it replaced: not w if another write came in between.
		var seen uint64
		if record {
			seen = acct.Word.Swap(w + delta)
		} else {
			shm.StoreRelaxed64(&acct.Word, w+delta)
		}
		if record {
			if spec.Hold == 0 {
				writeNs = nanotime()
			}
			trace.Add(w, seen, readNs, writeNs)
			recorded++
		}
		if ops+1 == spec.KillAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		ops++
		shm.StoreRelaxed64(counter, uint64(ops))
		shm.StoreRelaxed32(&slot.Phase, uint32(shm.PhaseIdle))
		if err := lk.Unlock(); err != nil {
			return nil, err
		}
		if timing {
			tm.commit()
		}
	}
	rep.Ops = ops
	rep.Capped = spec.Ops == 0 && ops == limit
	if role == Withdrawer {
		rep.Withdrawals = ops
	} else {
		rep.Deposits = ops
	}
	if spec.Ops > 0 && ops == spec.Ops && ctl.Finished.Add(1) == 1 {
		// The others go on alone: keep the traces of when all ran.
		ctl.FreezeTraces(nanotime())
		rep.FirstDoneOps = make([]int64, bank.Workers())
		for i := range rep.FirstDoneOps {
			s := bank.Slot(i)
			rep.FirstDoneOps[i] = int64(s.Deposits.Load() + s.Withdrawals.Load())
		}
	}
	if !timing {
		return nil, nil
	}
	return tm.finish(), nil
}

// sampleEvery is how often an uncontended acquisition is timed. Reading a
// clock costs 21-46ns on the development VM, about as much as an uncontended
// futex acquisition (35ns): timing every one would measure mostly the clock,
// and change the handoff pattern being measured.
const sampleEvery = 64

// timer records acquire latencies: every contended acquisition (the fast
// path failed) is timed, and one uncontended acquisition in sampleEvery is,
// recorded with the weight of the untimed ones it stands for. The histogram's
// count is therefore exactly the number of acquisitions; its tail, where the
// waits are, is exact; its body is an unbiased sample.
//
// Only the clock read that ends a wait happens while the lock is held; the
// measurement is recorded (commit) after the release.
type timer struct {
	hist     *hdrhistogram.Histogram // in ticks
	clock    *ticks
	untimed  int64 // uncontended acquisitions since the last timed one
	lastFast int64 // the last timed uncontended acquisition, in ticks
	pending  int64 // a measurement to record at commit, in ticks
	weight   int64 // how many acquisitions it stands for; 0: none
}

// commit records the pending measurement. RecordValues fails only above the
// histogram's range (100 s of ticks), a wait the stall check reports anyway.
func (t *timer) commit() {
	if t.weight > 0 {
		_ = t.hist.RecordValues(t.pending, t.weight)
		t.weight = 0
	}
}

// finish records what is left and returns the histogram in nanoseconds.
func (t *timer) finish() *hdrhistogram.Histogram {
	t.commit()
	if t.untimed > 0 {
		_ = t.hist.RecordValues(t.lastFast, t.untimed)
		t.untimed = 0
	}
	return t.clock.toNanos(t.hist)
}

// acquire takes lk, timing it as the timer's policy says.
func acquire(ctx context.Context, lk lock.Locker, t *timer) error {
	if t.hist == nil {
		return lk.Lock(ctx)
	}
	timed := t.lastFast == 0 || t.untimed >= sampleEvery-1
	var t0 int64
	if timed {
		t0 = t.clock.now()
	}
	ok, err := lk.TryLock()
	if err != nil {
		return err
	}
	if ok {
		if timed {
			t.lastFast = max(t.clock.now()-t0, 1)
			t.pending, t.weight = t.lastFast, t.untimed+1
			t.untimed = 0
		} else {
			t.untimed++
		}
		return nil
	}
	if !timed {
		t0 = t.clock.now()
	}
	if err := lk.Lock(ctx); err != nil {
		return err
	}
	t.pending, t.weight = t.clock.now()-t0, 1
	return nil
}

func writeReport(w io.Writer, rep *BankReport) error {
	if err := json.NewEncoder(w).Encode(rep); err != nil {
		return fmt.Errorf("worker: send report: %w", err)
	}
	return nil
}
