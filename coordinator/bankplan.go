package coordinator

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"mplock/lock"
	"mplock/shm"
)

// Bank defaults, in one place. Amount and Initial are the seed's (5 and 600).
//
// Hold is the command line's default (a plan's zero Hold means none): with
// nothing between the read and the write, the race window is a few
// nanoseconds, and two workers finish before a time slice ends, so the
// unlocked run lost nothing in 10 of 12 default runs on the 2-CPU
// development VM while other work ran. A 1µs hold, a short piece of work
// on the balance, lost 20-49% of the updates in 12 of 12 runs, whether the
// workers shared one CPU (a worker preempted inside the window overwrites
// everything the other did meanwhile) or ran on two. Ops keeps the default
// comparison of three kinds near a second.
const (
	DefaultBankWorkers = 2
	DefaultBankOps     = 100_000
	DefaultBankHold    = time.Microsecond
	DefaultBankAmount  = 5
	DefaultBankInitial = 600
	MaxBankWorkers     = 256
)

// ErrPlan marks an invalid plan: bad input, nothing was started.
var ErrPlan = errors.New("invalid plan")

// BankPlan is one bank run: one lock kind, its workers and their workload.
type BankPlan struct {
	Kind     lock.Kind
	Workers  int           // worker processes; even slots deposit, odd slots withdraw
	Ops      int64         // operations per worker; 0 with Duration
	Duration time.Duration // run length instead of Ops
	Amount   int64         // money per operation
	Initial  int64         // starting balance
	Think    time.Duration // pause before each operation, outside the lock
	Hold     time.Duration // pause inside the lock, between read and write
	// LockFile is the lock file for flock and fcntl; empty means a file in a
	// private run directory, removed afterwards. A given file is kept.
	LockFile string
	// ShmName, when set, creates the region as /dev/shm/<ShmName> instead
	// of an anonymous memfd.
	ShmName string
	// NoLatency turns acquire-latency recording off (to measure its cost).
	NoLatency bool
	// Trace has the workers record their latest operations in the region
	// (shm.Trace), from which the result shows a lost update as it
	// happened (BankResult.Trace). It costs a few stores per operation, an
	// atomic swap for the write, and two clock reads without a hold;
	// benchmarks leave it off.
	Trace bool
	// Pin binds worker i to the i-th CPU this process may run on (modulo
	// their number), so that workers contend from separate CPUs rather than
	// sometimes take turns on one: the scheduler's choice between the two
	// regimes otherwise changes the figures by up to 3x.
	Pin bool
	// KillAt makes worker KillAt.Slot SIGKILL itself while holding the
	// lock at operation KillAt.Op (tests and demonstrations of recovery).
	KillAt *KillAt
	// StallTimeout aborts the run when no worker commits an operation for
	// that long; 0 means 5s plus 10 times Hold and Think.
	StallTimeout time.Duration
	// Progress, when set, is called about ten times a second while the run
	// is going.
	Progress func(BankProgress)
	// Log receives notices about the machine's state, such as resources of a
	// dead run that this run removed; nil discards them.
	Log io.Writer

	// capOverride replaces opsCap in tests, which cannot wait for 2^31
	// operations.
	capOverride int64
}

// opsCap is the most operations a worker of this plan may commit: the
// workers' shares of the account word's 2^31-1 net operations.
func (p *BankPlan) opsCap() int64 {
	if p.capOverride > 0 {
		return p.capOverride
	}
	return (math.MaxInt32 - 1) / int64(p.Workers)
}

func (p *BankPlan) log() io.Writer {
	if p.Log == nil {
		return io.Discard
	}
	return p.Log
}

// KillAt names a worker and the operation at which it kills itself.
type KillAt struct {
	Slot int
	Op   int64
}

// BankProgress is a snapshot during a run.
type BankProgress struct {
	Kind    lock.Kind
	Ops     int64 // committed so far, all workers
	Total   int64 // planned, all workers; 0 for a timed run
	Elapsed time.Duration
	Planned time.Duration // for a timed run
}

// Validate checks the plan and fills in defaults. Its errors wrap ErrPlan.
func (p *BankPlan) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, args...))
	}
	if p.Workers == 0 {
		p.Workers = DefaultBankWorkers
	}
	switch {
	case p.Workers < 1 || p.Workers > MaxBankWorkers:
		return bad("--workers %d: want 1 to %d", p.Workers, MaxBankWorkers)
	case p.Ops < 0:
		return bad("--ops %d: must not be negative", p.Ops)
	case p.Duration < 0:
		return bad("--duration %v: must not be negative", p.Duration)
	case p.Ops > 0 && p.Duration > 0:
		return bad("--ops and --duration: give one of them")
	case p.Think < 0 || p.Hold < 0:
		return bad("--think and --hold must not be negative")
	case p.Amount <= 0:
		return bad("--amount %d: must be positive", p.Amount)
	case p.Kind >= lock.Kind(len(lock.Kinds())):
		return bad("unknown lock kind %v", p.Kind)
	}
	if p.Ops == 0 && p.Duration == 0 {
		p.Ops = DefaultBankOps
	}
	// The account word counts net operations in 31 bits and the version in
	// 32: an ops run must fit; a timed run stops each worker at its share
	// (opsCap).
	if p.Ops > 0 && p.Ops > p.opsCap() {
		return bad("--ops %d x %d workers: more than %d operations in one run", p.Ops, p.Workers, math.MaxInt32-1)
	}
	if m := float64(p.Amount) * float64(math.MaxInt32); math.Abs(float64(p.Initial))+m > math.MaxInt64/2 {
		return bad("--initial %d and --amount %d: balances would overflow", p.Initial, p.Amount)
	}
	if p.ShmName != "" {
		if err := shm.ValidName(p.ShmName); err != nil {
			return bad("--shm-name: %v", err)
		}
		if _, err := os.Lstat(shm.NamedPath(p.ShmName)); err == nil {
			return bad("--shm-name %s: %s already exists", p.ShmName, shm.NamedPath(p.ShmName))
		}
	}
	if p.LockFile != "" && p.Kind.NeedsFile() {
		if err := checkLockFile(p.LockFile); err != nil {
			return bad("--lock-file: %v", err)
		}
	}
	if p.KillAt != nil && (p.KillAt.Slot < 0 || p.KillAt.Slot >= p.Workers || p.KillAt.Op < 1) {
		return bad("kill-at worker %d op %d: no such worker or operation", p.KillAt.Slot, p.KillAt.Op)
	}
	if p.StallTimeout == 0 {
		p.StallTimeout = 5*time.Second + 10*(p.Hold+p.Think)
	}
	return nil
}

// checkLockFile makes sure a user's lock file can be opened for locking,
// without creating it: its directory must exist and be writable. A
// symbolic link is refused, dangling or not (the workers would not follow
// it): to lock the file it points to, name that file.
func checkLockFile(path string) error {
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link; give the file it points to (--lock-file \"$(readlink -f %s)\")", path, path)
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		return f.Close()
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory of %s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	probe, err := os.CreateTemp(dir, ".mplock-probe-")
	if err != nil {
		return fmt.Errorf("cannot create %s: directory %s is not writable", path, dir)
	}
	probe.Close()
	return os.Remove(probe.Name())
}
