package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"mplock/janitor"
	"mplock/lock"
	"mplock/reexec"
	"mplock/shm"
	"mplock/worker"
)

// Timeouts of a bank run's supervision.
const (
	barrierTimeout = 30 * time.Second       // for every worker to register
	tick           = 100 * time.Millisecond // progress and stall checks
	stopGrace      = 2 * time.Second        // after the stop flag, before SIGKILL (a stop ends any hold or think at once)
)

// RunBank runs one bank plan: it creates the shared region and the lock,
// starts plan.Workers worker processes through a start barrier, supervises
// them until they finish, the duration ends, ctx is cancelled or the run
// stalls, and returns what happened. Every process it started has exited and
// every resource it made is removed when it returns, on every path.
//
// A worker that dies does not end the run: the others go on (the lock is
// released by the kernel or recovered by a waiter), and the result names the
// dead worker. A cancelled ctx stops the workers and returns a result with
// Interrupted set and no error. Errors wrap ErrPlan for an invalid plan.
func RunBank(ctx context.Context, plan BankPlan) (res *BankResult, err error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	var rs resources
	defer func() {
		if rerr := rs.release(); rerr != nil && err == nil {
			err = rerr
		}
		if res != nil && rs.unguarded != "" {
			res.Unguarded = rs.unguarded
		}
	}()

	// Runs of dead coordinators whose janitor died too left resources
	// behind; remove them before making new ones.
	janitor.Sweep(os.TempDir(), plan.log())
	if plan.ShmName != "" {
		// The run directory holds the manifest: make it before the file.
		if _, err := rs.runDir(); err != nil {
			return nil, err
		}
	}
	region, err := shm.Create(shm.CreateOptions{Size: shm.BankSize(plan.Workers), Name: plan.ShmName})
	if err != nil {
		return nil, err
	}
	if region.Path() != "" {
		if err := rs.trackFile(region.Path(), region.Close); err != nil {
			region.Close()
			return nil, err
		}
	} else {
		rs.onRelease(region.Close)
	}
	bank, err := shm.NewBank(region, plan.Workers, plan.Initial, plan.Amount)
	if err != nil {
		return nil, err
	}

	spec := worker.BankSpec{Kind: plan.Kind, Ops: plan.Ops, Think: plan.Think, Hold: plan.Hold, NoLatency: plan.NoLatency, Trace: plan.Trace}
	if plan.Ops == 0 {
		spec.Cap = plan.opsCap()
	}
	switch plan.Kind {
	case lock.Flock, lock.Fcntl:
		spec.LockFile = plan.LockFile
		if spec.LockFile == "" {
			dir, err := rs.runDir()
			if err != nil {
				return nil, err
			}
			spec.LockFile = filepath.Join(dir, "bank.lock")
		}
	case lock.SysV:
		if spec.SemID, err = rs.sysvSem(); err != nil {
			return nil, err
		}
	}

	r := &bankRun{plan: plan, bank: bank, spec: spec, exited: make(chan *child, plan.Workers)}
	defer r.reapAll()
	if err := r.start(region, spec); err != nil {
		return nil, err
	}
	if err := r.barrier(ctx); err != nil {
		return nil, err
	}
	r.supervise(ctx)
	return r.result(), nil
}

// bankRun is the state of one run between start and result.
type bankRun struct {
	plan     BankPlan
	spec     worker.BankSpec
	bank     *shm.Bank
	children []*child
	reports  []chan *worker.BankReport
	exited   chan *child
	startNs  int64
	endNs    int64

	interrupted, stalled bool
	// killed notes, per slot, the workers the run had to kill because they
	// did not stop when asked, and what each was doing then.
	killed map[int]killNote
	// holderAtKill is the account's holder word (slot+1) before the run
	// killed its first worker: once the holder is dead, a waiter may take
	// the lock over (sem recovers a dead holder's lock) before its own
	// SIGKILL lands, and the word would then name it.
	holderAtKill uint32
}

// killNote is what a worker was doing when the run killed it.
type killNote struct {
	phase   shm.SlotPhase
	stopped bool // stopped by a signal (SIGSTOP, SIGTSTP): state T
}

func (r *bankRun) start(region *shm.Region, spec worker.BankSpec) error {
	var cpus []int
	if r.plan.Pin {
		var err error
		if cpus, err = worker.AllowedCPUs(); err != nil {
			return err
		}
	}
	for i := range r.plan.Workers {
		s := spec
		s.Slot = i
		if cpus != nil {
			s.Pin, s.CPU = true, cpus[i%len(cpus)]
		}
		if k := r.plan.KillAt; k != nil && k.Slot == i {
			s.KillAt = k.Op
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("coordinator: report pipe: %w", err)
		}
		cmd := reexec.Command(reexec.Options{}, append([]string{"worker", "bank"}, s.Args()...)...)
		cmd.ExtraFiles = []*os.File{region.File(), pw} // worker.BankRegionFD, worker.BankReportFD
		c, err := startChild("worker "+strconv.Itoa(i), cmd, r.exited)
		pw.Close()
		if err != nil {
			pr.Close()
			return err
		}
		r.children = append(r.children, c)
		ch := make(chan *worker.BankReport, 1)
		r.reports = append(r.reports, ch)
		go func() {
			defer pr.Close()
			var rep worker.BankReport
			if json.NewDecoder(pr).Decode(&rep) == nil {
				ch <- &rep
			}
			close(ch)
		}()
	}
	return nil
}

// barrier waits until every worker registered, then opens the start barrier.
func (r *bankRun) barrier(ctx context.Context) error {
	ctl := r.bank.Control
	if err := waitReady(ctx, &ctl.Ready, r.children, "workers"); err != nil {
		return err
	}
	r.startNs = worker.Now()
	ctl.Start.Store(1)
	_, err := shm.Wake(&ctl.Start, len(r.children))
	return err
}

// supervise waits for the workers to finish, stopping them at the deadline,
// on ctx's cancellation, or when they stall, and killing those that do not
// stop within the grace period.
func (r *bankRun) supervise(ctx context.Context) {
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	var deadline <-chan time.Time
	if r.plan.Duration > 0 {
		t := time.NewTimer(r.plan.Duration)
		defer t.Stop()
		deadline = t.C
	}
	start := time.Now()
	var stopAt time.Time
	stop := func() {
		if stopAt.IsZero() {
			r.bank.Control.Stop.Store(1)
			shm.Wake(&r.bank.Control.Stop, len(r.children)) // workers thinking wait on it
			stopAt = time.Now()
		}
	}
	done := ctx.Done()
	lastOps, lastChange := int64(-1), time.Now()
	for running := len(r.children); running > 0; {
		select {
		case <-r.exited:
			running--
		case <-done:
			r.interrupted = true
			done = nil
			stop()
		case <-deadline:
			stop()
		case now := <-ticker.C:
			ops := r.committed()
			if r.plan.Progress != nil {
				r.plan.Progress(BankProgress{Kind: r.plan.Kind, Ops: ops, Total: r.plan.Ops * int64(r.plan.Workers),
					Elapsed: now.Sub(start), Planned: r.plan.Duration})
			}
			if ops != lastOps {
				lastOps, lastChange = ops, now
			} else if now.Sub(lastChange) > r.plan.StallTimeout && stopAt.IsZero() {
				r.stalled = true
				stop()
			}
			// A worker sees the stop flag between operations, and in any
			// hold or think: one that has not stopped by the grace is stuck.
			if !stopAt.IsZero() && now.Sub(stopAt) > stopGrace {
				r.killStuck()
			}
		}
	}
	r.endNs = worker.Now()
}

// killStuck kills the workers still running after a stop, noting what each
// was doing: one stopped (SIGSTOP) while holding the lock is why the others
// could not go on. Killing workers that would not stop makes the run
// stalled.
//
// Everything is noted before anything is killed: a worker killed first
// could otherwise change what the next one is noted as doing (its waiter
// taking over its lock).
func (r *bankRun) killStuck() {
	if r.killed == nil {
		r.killed = map[int]killNote{}
		r.holderAtKill = r.bank.Account.Holder.Load()
	}
	var stuck []*child
	for i, c := range r.children {
		if c.hasExited() {
			continue
		}
		if _, seen := r.killed[i]; !seen {
			r.killed[i] = killNote{phase: shm.SlotPhase(r.bank.Slot(i).Phase.Load()), stopped: processStopped(c.pid())}
		}
		stuck = append(stuck, c)
	}
	for _, c := range stuck {
		r.stalled = true
		c.kill()
	}
}

// committed sums the operations every worker committed so far.
func (r *bankRun) committed() int64 {
	var n int64
	for i := range r.children {
		s := r.bank.Slot(i)
		n += int64(s.Deposits.Load() + s.Withdrawals.Load())
	}
	return n
}

// reapAll kills any worker still running and waits for every one to be
// reaped: no run returns with a process of its own left behind.
func (r *bankRun) reapAll() {
	for _, c := range r.children {
		c.kill()
	}
	for _, c := range r.children {
		<-c.done
	}
}

func (r *bankRun) result() *BankResult {
	p := r.plan
	res := &BankResult{
		Kind: p.Kind, Workers: p.Workers, Planned: p.Ops * int64(p.Workers), Duration: p.Duration,
		Think: p.Think, Hold: p.Hold, Amount: p.Amount, Initial: p.Initial,
		Interrupted: r.interrupted, Stalled: r.stalled,
		Recoveries: int(r.bank.Control.Recoveries.Load()),
		SemID:      r.spec.SemID, LockFile: r.spec.LockFile, Pinned: p.Pin,
	}
	var deadDep, deadWd, cpu int64
	var opsAt []int64
	end := int64(0)
	for i, c := range r.children {
		<-c.done
		slot := r.bank.Slot(i)
		pr := ProcResult{
			Slot: i, Pid: c.pid(), Role: worker.RoleOf(i),
			Deposits: int64(slot.Deposits.Load()), Withdrawals: int64(slot.Withdrawals.Load()),
			Exit: c.describe(), PinnedTo: -1,
		}
		pr.Ops = pr.Deposits + pr.Withdrawals
		if note, ok := r.killed[i]; ok {
			pr.KilledByRun, pr.Stopped, pr.Phase = true, note.stopped, note.phase
		} else {
			pr.Phase = shm.SlotPhase(slot.Phase.Load())
		}
		rep := <-r.reports[i]
		if rep != nil && c.exitedCleanly() {
			pr.Handoffs, pr.MaxRun, pr.Recovered = rep.Handoffs, rep.MaxRun, rep.Recovered
			pr.CPU = time.Duration(rep.UserNs + rep.SysNs)
			pr.PinnedTo = rep.PinnedTo
			res.Capped = res.Capped || rep.Capped
			cpu += rep.UserNs + rep.SysNs
			end = max(end, rep.End)
			if rep.FirstDoneOps != nil {
				opsAt = rep.FirstDoneOps
			}
			if len(rep.Latency) > 0 {
				if h, err := hdrhistogram.Decode(rep.Latency); err == nil {
					if res.Latency == nil {
						res.Latency = worker.NewLatencyHistogram()
					}
					res.Latency.Merge(h)
				}
			}
		} else {
			pr.Died = true
			end = max(end, r.endNs)
			if pr.Role == worker.Withdrawer {
				deadWd++
			} else {
				deadDep++
			}
		}
		res.Deposits += pr.Deposits
		res.Withdrawals += pr.Withdrawals
		res.Handoffs += pr.Handoffs
		res.MaxRun = max(res.MaxRun, pr.MaxRun)
		res.Procs = append(res.Procs, pr)
	}
	res.Ops = res.Deposits + res.Withdrawals
	if end == 0 {
		end = r.endNs
	}
	res.Wall = time.Duration(end - r.startNs)
	if res.Wall > 0 {
		res.OpsPerSecond = float64(res.Ops) / res.Wall.Seconds()
	}
	if res.Ops > 0 {
		res.CPUPerOp = time.Duration(cpu / res.Ops)
	}

	netCommitted := res.Deposits - res.Withdrawals
	res.Expected = p.Initial + p.Amount*netCommitted
	version, net := shm.UnpackAccount(r.bank.Account.Word.Load())
	res.Final = p.Initial + p.Amount*int64(net)
	res.LostUpdates, res.InDoubt, res.Consistent = accountCheck(res.Ops, netCommitted, version, int64(net), deadDep, deadWd)

	res.FairnessAt = "end of run"
	if opsAt != nil {
		res.FairnessAt = "first worker done"
	} else {
		opsAt = make([]int64, len(res.Procs))
		for i, pr := range res.Procs {
			opsAt[i] = pr.Ops
		}
	}
	res.Fairness = jain(opsAt)
	h := r.bank.Account.Holder.Load()
	if r.killed != nil {
		h = r.holderAtKill
	}
	if h > 0 && p.Kind.Excludes() {
		res.LastHolder = int(h) - 1
	} else {
		res.LastHolder = -1
	}
	if p.Trace {
		res.Trace = traceOf(r.bank, res.Procs, r.startNs)
	}
	return res
}
