package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/proctest"
	"mplock/lock"
	"mplock/shm"
	"mplock/worker"
)

func runBank(t *testing.T, ctx context.Context, p BankPlan) *BankResult {
	t.Helper()
	res, err := RunBank(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := semaphoreLeft(res); err != nil {
		t.Error(err)
	}
	return res
}

// semaphoreLeft fails when a sysv run's own semaphore outlived the run. It
// looks at that semaphore only, by its id: other tests and processes make
// and remove semaphores concurrently, and the kernel does not hand a
// removed id out again until its sequence number wraps. Id 0 is a real id:
// the first set made in an IPC namespace gets it (which is how a fresh
// machine once failed this check when it refused ids <= 0).
func semaphoreLeft(res *BankResult) error {
	if res.Kind == lock.SysV && (res.SemID < 0 || lock.SysVExists(res.SemID)) {
		return fmt.Errorf("System V semaphore %d not removed after the run", res.SemID)
	}
	return nil
}

// TestSemaphoreCheckCatchesLeak shows semaphoreLeft catching what it is
// for: a run's semaphore still there after it.
func TestSemaphoreCheckCatchesLeak(t *testing.T) {
	id, err := lock.CreateSysV()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.RemoveSysV(id)
	if semaphoreLeft(&BankResult{Kind: lock.SysV, SemID: id}) == nil {
		t.Fatalf("semaphore %d exists, but the check passed", id)
	}
	lock.RemoveSysV(id)
	if err := semaphoreLeft(&BankResult{Kind: lock.SysV, SemID: id}); err != nil {
		t.Fatalf("after removing it: %v", err)
	}
}

// TestSysVRunInFreshIPCNamespace runs a sysv bank run where it gets
// semaphore id 0: in an IPC namespace of its own, as on a freshly booted
// machine. The run and its check must work with that id.
func TestSysVRunInFreshIPCNamespace(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MPLOCK_TEST_SYSV_HELPER=1", "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
	if os.Getuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Skipf("cannot start a process in a new IPC namespace here: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "semaphore 0: ok") {
		t.Fatalf("sysv run in a fresh IPC namespace: %v\n%s", err, out)
	}
}

// sysvHelper is TestSysVRunInFreshIPCNamespace's child: one sysv run,
// then "semaphore ID: ok" or the check's error.
func sysvHelper() int {
	res, err := RunBank(context.Background(), BankPlan{Kind: lock.SysV, Workers: 2, Ops: 500, Amount: 5, Initial: 600})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if !res.Consistent || res.Failed() {
		fmt.Printf("run failed: consistent %v, procs %+v\n", res.Consistent, res.Procs)
		return 1
	}
	if err := semaphoreLeft(res); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("semaphore %d: ok\n", res.SemID)
	return 0
}

// checkBooks checks what must hold for every run, locked or not: the
// counts add up, every worker is a distinct real process, and the final
// balance is what the surviving chain of writes adds up to.
func checkBooks(t *testing.T, r *BankResult) {
	t.Helper()
	var ops int64
	pids := map[int]bool{}
	for _, p := range r.Procs {
		ops += p.Ops
		if p.Pid <= 0 || pids[p.Pid] || p.Pid == os.Getpid() {
			t.Errorf("worker %d has pid %d: want a distinct child process", p.Slot, p.Pid)
		}
		pids[p.Pid] = true
	}
	if ops != r.Ops || r.Ops != r.Deposits+r.Withdrawals {
		t.Errorf("ops %d, procs sum %d, deposits+withdrawals %d", r.Ops, ops, r.Deposits+r.Withdrawals)
	}
	if r.Expected != r.Initial+r.Amount*(r.Deposits-r.Withdrawals) {
		t.Errorf("expected balance %d does not follow from %d deposits and %d withdrawals", r.Expected, r.Deposits, r.Withdrawals)
	}
	if r.LostUpdates < 0 || r.LostUpdates > r.Ops {
		t.Errorf("lost updates %d of %d", r.LostUpdates, r.Ops)
	}
}

// TestUnlockedRunLosesUpdates is the race itself: a hold between the read
// and the write (a sleep, so the other worker runs even on one CPU) makes
// overlapping read-modify-writes certain.
func TestUnlockedRunLosesUpdates(t *testing.T) {
	leakCheck(t)
	r := runBank(t, context.Background(), BankPlan{Kind: lock.None, Workers: 2, Ops: 200, Hold: 100 * time.Microsecond, Amount: 5, Initial: 600})
	checkBooks(t, r)
	if r.LostUpdates == 0 || r.Consistent {
		t.Fatalf("unlocked run with a hold lost %d updates (consistent=%v); want some lost", r.LostUpdates, r.Consistent)
	}
	if r.Ops != 400 {
		t.Fatalf("committed %d operations, want 400", r.Ops)
	}
	// The version chain explains the final balance: lost writes are missing
	// from it, and the balance differs from the books by their net amount.
	if r.Final == r.Expected && r.LostUpdates%2 == 1 {
		t.Errorf("odd number (%d) of lost updates but the balance matches the books", r.LostUpdates)
	}
}

// TestLockedRunsNeverLoseUpdates runs every kind that excludes under the
// same widened window that makes the unlocked run lose updates.
func TestLockedRunsNeverLoseUpdates(t *testing.T) {
	leakCheck(t)
	for _, kind := range []lock.Kind{lock.Flock, lock.Fcntl, lock.Sem, lock.SysV, lock.Spin, lock.Atomic} {
		t.Run(kind.String(), func(t *testing.T) {
			r := runBank(t, context.Background(), BankPlan{Kind: kind, Workers: 3, Ops: 3000, Hold: 2 * time.Microsecond, Amount: 5, Initial: 600})
			checkBooks(t, r)
			if !r.Consistent || r.LostUpdates != 0 || r.Final != r.Expected {
				t.Fatalf("%s: lost %d, final %d, expected %d, consistent %v", kind, r.LostUpdates, r.Final, r.Expected, r.Consistent)
			}
			// Two depositors and a withdrawer of 3000 each: 600 + 5*3000.
			if r.Ops != 9000 || r.Final != 600+5*3000 {
				t.Fatalf("%s: %d ops, final %d; want 9000 and %d", kind, r.Ops, r.Final, 600+5*3000)
			}
			if r.Failed() {
				t.Fatalf("%s: a worker failed: %+v", kind, r.Procs)
			}
			if kind == lock.Atomic {
				return
			}
			// Every acquisition is in the latency histogram, sampled or not.
			if r.Latency == nil || r.Latency.TotalCount() != r.Ops {
				t.Fatalf("%s: latency histogram counts %v acquisitions, want %d", kind, r.Latency, r.Ops)
			}
			if r.Handoffs < 1 || r.MaxRun < 1 || r.MaxRun > 3000 {
				t.Fatalf("%s: handoffs %d, max run %d", kind, r.Handoffs, r.MaxRun)
			}
			if r.FairnessAt != "first worker done" || r.Fairness <= 0 || r.Fairness > 1 {
				t.Fatalf("%s: fairness %v at %q", kind, r.Fairness, r.FairnessAt)
			}
		})
	}
}

// TestWorkerKilledHoldingLock kills a worker with SIGKILL at the worst
// moment: holding the lock, after writing the balance, before counting it.
// The run must finish, name the dead worker, and account for its last write.
func TestWorkerKilledHoldingLock(t *testing.T) {
	leakCheck(t)
	for _, kind := range []lock.Kind{lock.Flock, lock.Fcntl, lock.Sem, lock.SysV, lock.Spin} {
		t.Run(kind.String(), func(t *testing.T) {
			// Worker 1 dies holding the lock in its first operation. The
			// survivor must take the lock over (sem, spin: recover it from
			// the dead holder; the kernel frees the others) whenever it
			// takes the lock after that death. An unfair lock on a loaded
			// machine can keep worker 1 out until the survivor's last
			// operation: then nothing was left to recover, the run shows
			// nothing, and it is made again.
			for attempt := 1; ; attempt++ {
				r := runBank(t, context.Background(), BankPlan{
					Kind: kind, Workers: 2, Ops: 20_000, Hold: 10 * time.Microsecond, Amount: 5, Initial: 600,
					KillAt: &KillAt{Slot: 1, Op: 1},
				})
				checkBooks(t, r)
				dead, alive := r.Procs[1], r.Procs[0]
				if !dead.Died || dead.Exit != "killed by SIGKILL" || dead.Ops != 0 {
					t.Fatalf("killed worker: died %v, exit %q, ops %d; want SIGKILL in its first operation", dead.Died, dead.Exit, dead.Ops)
				}
				if alive.Died || alive.Ops != 20_000 {
					t.Fatalf("surviving worker: died %v, ops %d; want all 20,000", alive.Died, alive.Ops)
				}
				if !r.Consistent || r.InDoubt != 1 || r.LostUpdates != 0 {
					t.Fatalf("consistent %v, in doubt %d, lost %d; want the dead worker's last write in doubt", r.Consistent, r.InDoubt, r.LostUpdates)
				}
				if r.LastHolder == dead.Slot {
					if attempt == 5 {
						t.Fatalf("in 5 runs the survivor never took the lock after its peer died: recovery untested")
					}
					t.Logf("run %d: worker 1 got the lock only after the survivor's last operation; again", attempt)
					continue
				}
				wantRecoveries := 0
				if kind == lock.Sem || kind == lock.Spin {
					wantRecoveries = 1 // the survivor took the lock over from the dead holder
				}
				if r.Recoveries != wantRecoveries {
					t.Fatalf("recoveries %d, want %d", r.Recoveries, wantRecoveries)
				}
				if wantRecoveries == 1 && (len(alive.Recovered) != 1 || alive.Recovered[0] != dead.Pid) {
					t.Fatalf("survivor recovered from %v, want [%d]", alive.Recovered, dead.Pid)
				}
				return
			}
		})
	}
}

// TestWorkerKilledFromOutside kills a worker with a real SIGKILL from
// another process while a timed run is going: nothing hangs, the rest goes on.
func TestWorkerKilledFromOutside(t *testing.T) {
	leakCheck(t)
	killed := false
	r := runBank(t, context.Background(), BankPlan{
		Kind: lock.Sem, Workers: 3, Duration: 800 * time.Millisecond, Amount: 5,
		Progress: func(p BankProgress) {
			if !killed && p.Ops > 0 {
				killed = true
				kids := proctest.ChildrenRunning(os.Getpid(), "worker", "bank")
				if len(kids) != 3 {
					t.Errorf("found workers %v, want 3", kids)
					return
				}
				syscall.Kill(kids[0], syscall.SIGKILL)
			}
		},
	})
	checkBooks(t, r)
	var died int
	for _, p := range r.Procs {
		if p.Died {
			died++
		}
	}
	if !killed || died != 1 {
		t.Fatalf("killed %v, %d workers died; want exactly 1", killed, died)
	}
	if !r.Consistent {
		t.Fatalf("inconsistent after a worker died: lost %d, in doubt %d", r.LostUpdates, r.InDoubt)
	}
}

func TestInterruptedRunReportsWhatFinished(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := runBank(t, ctx, BankPlan{
		Kind: lock.Flock, Workers: 2, Ops: 100_000_000, Amount: 5,
		Progress: func(p BankProgress) {
			if p.Ops > 0 {
				cancel()
			}
		},
	})
	checkBooks(t, r)
	if !r.Interrupted || r.Ops == 0 || r.Ops >= r.Planned || !r.Consistent || r.Failed() {
		t.Fatalf("interrupted %v, ops %d of %d, consistent %v, failed %v", r.Interrupted, r.Ops, r.Planned, r.Consistent, r.Failed())
	}
}

// TestStalledRunIsStopped stops (SIGSTOP) a worker so that it never
// finishes, and possibly holds the lock forever: the coordinator must notice
// the lack of progress, stop the run, kill what does not stop, and say so.
func TestStalledRunIsStopped(t *testing.T) {
	leakCheck(t)
	stopped := false
	r := runBank(t, context.Background(), BankPlan{
		Kind: lock.Sem, Workers: 2, Ops: 1_000_000, Hold: 10 * time.Millisecond, Amount: 5,
		StallTimeout: 300 * time.Millisecond,
		Progress: func(p BankProgress) {
			if !stopped && p.Ops > 0 {
				stopped = true
				for _, pid := range proctest.ChildrenRunning(os.Getpid(), "worker", "bank") {
					syscall.Kill(pid, syscall.SIGSTOP)
				}
			}
		},
	})
	if !r.Stalled || !r.Failed() {
		t.Fatalf("stalled %v, failed %v; want the run stopped as stalled", r.Stalled, r.Failed())
	}
}

// TestCoordinatorKilled kills a coordinator with SIGKILL mid-run. Its
// workers must die with it, and its janitor must remove what the run made:
//
//	sem:   nothing but memory and the named region, so only the
//	       parent-death signal can end the workers;
//	sysv:  the System V semaphore;
//	flock: the private run directory and its lock file.
func TestCoordinatorKilled(t *testing.T) {
	for _, kind := range []lock.Kind{lock.Sem, lock.SysV, lock.Flock} {
		t.Run(kind.String(), func(t *testing.T) {
			leakCheck(t)
			testCoordinatorKilled(t, kind)
		})
	}
}

func testCoordinatorKilled(t *testing.T, kind lock.Kind) {
	name := testShmPrefix()
	coord := proctest.StartHelper(t, "MPLOCK_TEST_COORDINATOR=1", "MPLOCK_TEST_SHM="+name, "MPLOCK_TEST_KIND="+kind.String())
	coord.Expect(t, "running")
	workers := proctest.ChildrenRunning(coord.Pid(), "worker", "bank")
	if len(workers) != 2 {
		t.Fatalf("found %d workers, want 2", len(workers))
	}
	if _, err := os.Stat(shm.NamedPath(name)); err != nil {
		t.Fatalf("named region not there while running: %v", err)
	}
	// The workers' command lines name the run's semaphore or lock file.
	args := workerArgs(workers[0])
	semID, _ := strconv.Atoi(args["-sem-id"])
	lockFile := args["-lock-file"]
	switch kind {
	case lock.SysV:
		if !lock.SysVExists(semID) {
			t.Fatalf("no live semaphore in the worker's command line (%v)", args)
		}
	case lock.Flock:
		if _, err := os.Stat(lockFile); err != nil {
			t.Fatalf("lock file of the run: %v", err)
		}
	}

	coord.Cmd.Process.Kill()
	coord.Cmd.Wait()
	proctest.Eventually(t, "the workers to die", func() bool {
		for _, pid := range workers {
			if proctest.Alive(pid) {
				return false
			}
		}
		return true
	})
	proctest.Eventually(t, "the janitor to remove the named region", func() bool {
		_, err := os.Stat(shm.NamedPath(name))
		return errors.Is(err, os.ErrNotExist)
	})
	switch kind {
	case lock.SysV:
		proctest.Eventually(t, "the janitor to remove the semaphore", func() bool { return !lock.SysVExists(semID) })
	case lock.Flock:
		proctest.Eventually(t, "the janitor to remove the run directory", func() bool {
			_, err := os.Stat(lockFile)
			ents, _ := os.ReadDir(os.Getenv("TMPDIR"))
			return errors.Is(err, os.ErrNotExist) && len(ents) == 0
		})
	}
}

// workerArgs returns a worker's "-flag value" arguments by flag.
func workerArgs(pid int) map[string]string {
	args := proctest.Cmdline(pid)
	m := map[string]string{}
	for i, a := range args {
		if strings.HasPrefix(a, "-") && i+1 < len(args) {
			m[a] = args[i+1]
		}
	}
	return m
}

func TestPlanValidation(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	bad := []BankPlan{
		{Kind: lock.Sem, Workers: -1, Amount: 1},
		{Kind: lock.Sem, Workers: 100000, Amount: 1},
		{Kind: lock.Sem, Ops: -5, Amount: 1},
		{Kind: lock.Sem, Ops: 10, Duration: time.Second, Amount: 1},
		{Kind: lock.Sem, Hold: -time.Second, Amount: 1},
		{Kind: lock.Sem, Amount: 0},
		{Kind: lock.Sem, Amount: 1, Ops: 1 << 40},
		{Kind: lock.Sem, Amount: 1, ShmName: "../etc"},
		{Kind: lock.Flock, Amount: 1, LockFile: dir + "/sub/x.lock"},
		{Kind: lock.Kind(99), Amount: 1},
	}
	if os.Getuid() != 0 { // root writes anywhere
		bad = append(bad, BankPlan{Kind: lock.Flock, Amount: 1, LockFile: dir + "/x.lock"})
	}
	for _, p := range bad {
		if err := p.Validate(); !errors.Is(err, ErrPlan) {
			t.Errorf("Validate(%+v) = %v, want ErrPlan", p, err)
		}
	}
	ok := BankPlan{Kind: lock.Sem, Amount: 1}
	if err := ok.Validate(); err != nil || ok.Ops != DefaultBankOps || ok.Workers != DefaultBankWorkers {
		t.Fatalf("defaults: %v, ops %d, workers %d", err, ok.Ops, ok.Workers)
	}
}

func TestAccountCheck(t *testing.T) {
	tests := []struct {
		name                  string
		committed, netC       int64
		version               uint32
		netF, deadDep, deadWd int64
		lost, inDoubt         int64
		consistent            bool
	}{
		{"clean", 10, 0, 10, 0, 0, 0, 0, 0, true},
		{"lost three", 10, 0, 7, 1, 0, 0, 3, 0, false},
		{"dead depositor's write landed", 10, 2, 11, 3, 1, 0, 0, 1, true},
		{"dead withdrawer's write landed", 10, 2, 11, 1, 0, 1, 0, 1, true},
		{"extra write with nobody dead", 10, 2, 11, 3, 0, 0, 0, 0, false},
		{"extra write of the wrong sign", 10, 2, 11, 1, 1, 0, 0, 0, false},
		{"two dead, both landed", 10, 0, 12, 0, 1, 1, 0, 2, true},
	}
	for _, tt := range tests {
		lost, inDoubt, ok := accountCheck(tt.committed, tt.netC, tt.version, tt.netF, tt.deadDep, tt.deadWd)
		if lost != tt.lost || inDoubt != tt.inDoubt || ok != tt.consistent {
			t.Errorf("%s: got lost %d, in doubt %d, consistent %v", tt.name, lost, inDoubt, ok)
		}
	}
}

func TestJain(t *testing.T) {
	if j := jain([]int64{5, 5, 5}); j != 1 {
		t.Errorf("equal shares: %v, want 1", j)
	}
	if j := jain([]int64{10, 0}); j != 0.5 {
		t.Errorf("one of two did all: %v, want 0.5", j)
	}
}

// TestPinnedWorkers binds each worker to its own CPU and checks it twice:
// in the report (what the worker read back from the kernel), and from
// outside, in /proc, while the run goes on: one of each worker's threads
// may run only on its CPU.
func TestPinnedWorkers(t *testing.T) {
	leakCheck(t)
	cpus, err := worker.AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]string{} // pid: the CPUs one of its threads is allowed
	r := runBank(t, context.Background(), BankPlan{
		Kind: lock.Sem, Workers: 3, Duration: 500 * time.Millisecond, Amount: 1, Pin: true,
		Progress: func(p BankProgress) {
			for _, pid := range proctest.ChildrenRunning(os.Getpid(), "worker", "bank") {
				tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
				for _, task := range tasks {
					b, _ := os.ReadFile(task)
					for _, line := range strings.Split(string(b), "\n") {
						if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && !strings.ContainsAny(strings.TrimSpace(v), ",-") {
							seen[pid] = strings.TrimSpace(v)
						}
					}
				}
			}
		},
	})
	checkBooks(t, r)
	if !r.Pinned || !r.Consistent {
		t.Fatalf("pinned %v, consistent %v", r.Pinned, r.Consistent)
	}
	for i, p := range r.Procs {
		want := cpus[i%len(cpus)]
		if p.PinnedTo != want {
			t.Errorf("worker %d pinned to %d, want %d", i, p.PinnedTo, want)
		}
		if got := seen[p.Pid]; got != strconv.Itoa(want) {
			t.Errorf("worker %d (pid %d): /proc shows a thread allowed only on CPU %q, want %d", i, p.Pid, got, want)
		}
	}
}

// TestTimedRunStopsAtTheCap runs for an hour with a cap of a few thousand
// operations per worker: the run must end at the cap, say so, and balance.
func TestTimedRunStopsAtTheCap(t *testing.T) {
	leakCheck(t)
	r := runBank(t, context.Background(), BankPlan{Kind: lock.Sem, Workers: 2, Duration: time.Hour, Amount: 1, capOverride: 5000})
	checkBooks(t, r)
	if !r.Capped || !r.Consistent || r.Failed() {
		t.Fatalf("capped %v, consistent %v, failed %v", r.Capped, r.Consistent, r.Failed())
	}
	for _, p := range r.Procs {
		if p.Ops != 5000 {
			t.Errorf("worker %d did %d operations, want the cap, 5000", p.Slot, p.Ops)
		}
	}
}

// TestOneWorkerHandsOffToNobody: a lone worker's acquisitions never change
// the holder, the first one included.
func TestOneWorkerHandsOffToNobody(t *testing.T) {
	leakCheck(t)
	r := runBank(t, context.Background(), BankPlan{Kind: lock.Sem, Workers: 1, Ops: 1000, Amount: 1})
	if r.Handoffs != 0 || r.MaxRun != 1000 {
		t.Fatalf("handoffs %d, max run %d; want 0 and 1000", r.Handoffs, r.MaxRun)
	}
}

// TestStopEndsALongThink: workers thinking for 10s between operations must
// see the deadline's stop at once, and finish cleanly, not be killed after
// the grace period.
func TestStopEndsALongThink(t *testing.T) {
	leakCheck(t)
	r := runBank(t, context.Background(), BankPlan{Kind: lock.Sem, Workers: 2, Duration: 200 * time.Millisecond, Think: 10 * time.Second, Amount: 1})
	if r.Failed() || !r.Consistent {
		t.Fatalf("failed %v (%+v), consistent %v", r.Failed(), r.Procs, r.Consistent)
	}
	if r.Ops != 0 { // the stop came during the think before each worker's first operation
		t.Fatalf("%d operations, want none", r.Ops)
	}
}

// openNamedBank maps a running run's named region, as any tool could, to
// watch its workers; nil while it does not exist yet.
func openNamedBank(t *testing.T, name string) *shm.Bank {
	t.Helper()
	f, err := os.Open(shm.NamedPath(name))
	if err != nil {
		return nil
	}
	r, err := shm.Open(f)
	if err != nil {
		f.Close()
		return nil
	}
	b, err := shm.OpenBank(r)
	if err != nil {
		r.Close()
		return nil
	}
	t.Cleanup(func() { r.Close() })
	return b
}

// holding returns the slot of a worker in the middle of an operation, or -1.
func holding(b *shm.Bank) int {
	for i := range b.Workers() {
		if b.Slot(i).State.Load() == uint32(shm.SlotRunning) && shm.SlotPhase(b.Slot(i).Phase.Load()) == shm.PhaseHolding {
			return i
		}
	}
	return -1
}

// TestStopEndsALongHold: a stop (here Ctrl-C's cancellation) ends an hour's
// hold at once, the workers exit on their own with the operation abandoned
// before its write, and the run reports what finished. It used to wait out
// the hold (and then a grace of twice the hold).
func TestStopEndsALongHold(t *testing.T) {
	for _, kind := range []lock.Kind{lock.None, lock.Sem, lock.Flock} {
		t.Run(kind.String(), func(t *testing.T) {
			leakCheck(t)
			name := testShmPrefix() + "-hold"
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				r   *BankResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := RunBank(ctx, BankPlan{Kind: kind, Workers: 2, Ops: 3, Hold: time.Hour, Amount: 5, Initial: 600, ShmName: name})
				done <- result{r, err}
			}()
			var b *shm.Bank
			proctest.Eventually(t, "a worker holding", func() bool {
				if b == nil {
					b = openNamedBank(t, name)
				}
				return b != nil && holding(b) >= 0
			})
			cancel()
			var res result
			select {
			case res = <-done:
			case <-time.After(time.Minute): // a bound on a hang: the hold is an hour
				t.Fatal("the run did not end when stopped: the hold went on")
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			r := res.r
			if !r.Interrupted || r.Failed() || r.Ops != 0 || !r.Consistent || r.Final != 600 {
				t.Fatalf("interrupted %v, failed %v (%+v), ops %d, consistent %v, final %d; want an interrupted run, every worker exited, nothing written",
					r.Interrupted, r.Failed(), r.Procs, r.Ops, r.Consistent, r.Final)
			}
		})
	}
}

// TestStalledHolderIsNamed stops (SIGSTOP) the worker that holds the lock.
// The others wait for it; the run stalls, is stopped, and must say that
// the stopped worker held the lock and the others waited for it. A waiter
// gets the lock of a holder that died (the kernel releases a flock, sem
// recovers it): the run kills its workers in slot order, so with the first
// one the holder and seven waiters after it, one of them could take the
// lock before its own SIGKILL and be named the holder, and be noted
// holding, unless the run notes everything before it kills anything.
func TestStalledHolderIsNamed(t *testing.T) {
	for _, kind := range []lock.Kind{lock.Sem, lock.Flock} {
		t.Run(kind.String(), func(t *testing.T) { stalledHolderIsNamed(t, kind, 2, -1) })
		t.Run(kind.String()+"/first-of-8", func(t *testing.T) { stalledHolderIsNamed(t, kind, 8, 0) })
	}
}

// stalledHolderIsNamed runs TestStalledHolderIsNamed with workers workers,
// stopping the worker in slot only (-1: any) when it holds the lock.
func stalledHolderIsNamed(t *testing.T, kind lock.Kind, workers, slot int) {
	leakCheck(t)
	name := testShmPrefix() + "-stall"
	stopped, stoppedPid := -1, 0
	r := runBank(t, context.Background(), BankPlan{
		Kind: kind, Workers: workers, Ops: 1_000_000, Hold: 5 * time.Millisecond, Amount: 5, ShmName: name,
		StallTimeout: 300 * time.Millisecond,
		Progress: func(p BankProgress) {
			if stopped >= 0 || p.Ops == 0 {
				return
			}
			b := openNamedBank(t, name)
			if b == nil {
				return
			}
			// Stop the holder in its hold: its phase is read again once
			// the stop has taken effect (kill returns before the worker's
			// threads have handled it, and it could still leave its hold
			// and let the lock go), so a worker caught leaving is retried.
			for i := range b.Workers() {
				pid := int(b.Slot(i).Pid.Load())
				if slot >= 0 && i != slot || shm.SlotPhase(b.Slot(i).Phase.Load()) != shm.PhaseHolding {
					continue
				}
				syscall.Kill(pid, syscall.SIGSTOP)
				proctest.Eventually(t, fmt.Sprintf("worker %d (pid %d) to stop", i, pid), func() bool { return proctest.Stopped(pid) })
				if shm.SlotPhase(b.Slot(i).Phase.Load()) == shm.PhaseHolding {
					stopped, stoppedPid = i, pid
					return
				}
				syscall.Kill(pid, syscall.SIGCONT)
			}
		},
	})
	if stopped < 0 {
		t.Fatal("never caught a worker holding the lock")
	}
	if !r.Stalled || r.LastHolder != stopped {
		t.Fatalf("stalled %v, last holder %d; want stalled and worker %d (pid %d)", r.Stalled, r.LastHolder, stopped, stoppedPid)
	}
	holder := r.Procs[stopped]
	if !holder.KilledByRun || !holder.Stopped || holder.Phase != shm.PhaseHolding {
		t.Errorf("stopped holder: killed by run %v, stopped %v, phase %v; want killed, stopped, holding the lock", holder.KilledByRun, holder.Stopped, holder.Phase)
	}
	for i, waiter := range r.Procs {
		if i != stopped && (!waiter.KilledByRun || waiter.Stopped || waiter.Phase != shm.PhaseWaiting) {
			t.Errorf("worker %d: killed by run %v, stopped %v, phase %v; want killed while waiting for the lock", i, waiter.KilledByRun, waiter.Stopped, waiter.Phase)
		}
	}
}

// TestJanitorKilledMidRun kills the janitor of a run that made a run
// directory (flock): the run goes on and finishes, cleans up after itself,
// and says that cleanup after a crash was no longer guaranteed.
func TestJanitorKilledMidRun(t *testing.T) {
	leakCheck(t)
	killed := 0
	r := runBank(t, context.Background(), BankPlan{
		Kind: lock.Flock, Workers: 2, Duration: 600 * time.Millisecond, Amount: 5,
		Progress: func(p BankProgress) {
			if killed == 0 && p.Ops > 0 {
				for _, pid := range proctest.ChildrenRunning(os.Getpid(), "worker", "janitor") {
					syscall.Kill(pid, syscall.SIGKILL)
					killed++
				}
			}
		},
	})
	if killed != 1 {
		t.Fatalf("killed %d janitors, want 1", killed)
	}
	if !r.Consistent || r.Failed() || r.Ops == 0 {
		t.Fatalf("consistent %v, failed %v, ops %d: the run should go on", r.Consistent, r.Failed(), r.Ops)
	}
	if !strings.Contains(r.Unguarded, "killed by SIGKILL") {
		t.Fatalf("unguarded %q; want the janitor's death noted", r.Unguarded)
	}
}

// TestUnlockedTraceShowsALostUpdate: the traces of an unlocked run hold a
// write that another overwrote, shown as it happened, and it agrees with
// the account word: the overwriting write replaced exactly the balance and
// version the overwritten one wrote.
func TestUnlockedTraceShowsALostUpdate(t *testing.T) {
	leakCheck(t)
	r := runBank(t, context.Background(), BankPlan{Kind: lock.None, Workers: 2, Ops: 300, Hold: 100 * time.Microsecond, Amount: 5, Initial: 600, Trace: true})
	if r.LostUpdates == 0 || r.Trace == nil {
		t.Fatalf("lost %d, trace %v; want lost updates and a trace", r.LostUpdates, r.Trace)
	}
	lu := r.Trace.Lost
	if lu == nil {
		t.Fatalf("%d updates lost, but the trace shows none: %+v", r.LostUpdates, r.Trace.Workers)
	}
	x, by := lu.Overwritten, lu.By
	if x.Slot == by.Slot || !by.Overwrote || by.SeenVersion != x.WroteVersion || by.SeenBalance != x.WroteBalance {
		t.Fatalf("overwritten %+v, by %+v: the overwriting write must have replaced what the other wrote", x, by)
	}
	if by.Read > x.Wrote {
		t.Fatalf("overwritten %+v, by %+v: the overwriting write must have read before the other wrote", x, by)
	}
	// Unless the overwritten write was a stale one itself (Writes below 1:
	// with stale writes landing, versions go back and forth), By read a
	// version below the one it overwrote.
	if lu.Writes >= 1 && (by.ReadVersion >= x.WroteVersion || by.WroteVersion > x.WroteVersion) {
		t.Fatalf("overwritten %+v, by %+v, writes %d: the versions do not tell one story", x, by, lu.Writes)
	}
	if want := x.ReadBalance + map[worker.Role]int64{worker.Depositor: 5, worker.Withdrawer: -5}[x.Role]; x.WroteBalance != want {
		t.Fatalf("overwritten %+v wrote %d, want %d", x, x.WroteBalance, want)
	}
	if lu.Writes != int64(x.WroteVersion)-int64(by.ReadVersion) {
		t.Fatalf("writes %d", lu.Writes)
	}
}

// TestLockedTraceIsSerialized: with a lock, the traced operations never
// overlap and no write overwrites another.
func TestLockedTraceIsSerialized(t *testing.T) {
	leakCheck(t)
	for _, kind := range []lock.Kind{lock.Sem, lock.Flock} {
		r := runBank(t, context.Background(), BankPlan{Kind: kind, Workers: 3, Ops: 2000, Hold: time.Microsecond, Amount: 5, Initial: 600, Trace: true})
		if r.Trace == nil || r.Trace.Lost != nil {
			t.Fatalf("%s: trace %+v; want one, with no lost update", kind, r.Trace)
		}
		var all []TraceOp
		for _, ops := range r.Trace.Workers {
			if len(ops) == 0 {
				t.Fatalf("%s: a worker traced nothing", kind)
			}
			all = append(all, ops...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Read < all[j].Read })
		for i, op := range all {
			if op.Overwrote {
				t.Fatalf("%s: %+v overwrote a write with the lock held", kind, op)
			}
			if i > 0 && all[i-1].Wrote > op.Read {
				t.Fatalf("%s: operations overlap: %+v and %+v", kind, all[i-1], op)
			}
		}
	}
}
