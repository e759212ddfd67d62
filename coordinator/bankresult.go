package coordinator

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"mplock/lock"
	"mplock/shm"
	"mplock/worker"
)

// BankResult is everything one bank run found out.
type BankResult struct {
	Kind     lock.Kind
	Workers  int
	Ops      int64 // operations committed by all workers
	Planned  int64 // operations planned (0 for a timed run)
	Duration time.Duration
	Think    time.Duration
	Hold     time.Duration
	Amount   int64
	Initial  int64

	Deposits    int64
	Withdrawals int64
	// Expected is the balance the committed operations add up to; Final is
	// the balance in shared memory at the end.
	Expected int64
	Final    int64
	// LostUpdates counts committed writes that a concurrent write
	// overwrote: exact, from the account word's version (see shm.Account).
	LostUpdates int64
	// InDoubt counts operations of killed workers that reached the balance
	// before the worker could count them: neither lost nor committed.
	InDoubt int64
	// Consistent is true when no update was lost and Final is explained by
	// the committed (and in-doubt) operations.
	Consistent bool

	Wall         time.Duration // from the start barrier to the last worker's end
	OpsPerSecond float64
	// Latency of lock acquisition, all workers merged; nil when not
	// recorded (the lock-free kinds, or NoLatency).
	Latency *hdrhistogram.Histogram
	// Handoffs counts acquisitions that changed the holder; MaxRun is the
	// longest streak of acquisitions by one worker.
	Handoffs int64
	MaxRun   int64
	// Fairness is Jain's index (1 = equal shares, 1/n = one worker did all)
	// over the workers' operations at FairnessAt.
	Fairness   float64
	FairnessAt string
	// CPUPerOp is the workers' CPU time (user and system) per operation.
	CPUPerOp time.Duration

	// SemID is the System V semaphore set of a sysv run, removed when the
	// run ended; LockFile the lock file of a flock or fcntl run.
	SemID    int
	LockFile string
	// Pinned is true when each worker was bound to a CPU (ProcResult.PinnedTo).
	Pinned bool

	Procs       []ProcResult
	Recoveries  int  // locks taken over from dead holders (sem, spin)
	Interrupted bool // stopped early by Ctrl-C or SIGTERM
	Capped      bool // a timed run stopped a worker at its share of the account's range
	// Stalled is set when no worker made progress for StallTimeout, or
	// when workers did not stop when asked and were killed
	// (ProcResult.KilledByRun).
	Stalled bool
	// LastHolder is the slot of the worker that took the lock last, -1 for
	// none (or a kind that does not exclude): with a stalled run, the one
	// everyone waited for.
	LastHolder int
	// Trace is what the workers' traces recorded (BankPlan.Trace); nil
	// when not traced.
	Trace *BankTrace
	// Unguarded says why cleanup after a crash of this process was not
	// guaranteed for part of the run ("" when it was): the janitor that
	// would have removed the run's semaphore and files died.
	Unguarded string
}

// ProcResult is one worker process's part.
type ProcResult struct {
	Slot        int
	Pid         int
	Role        worker.Role
	Ops         int64
	Deposits    int64
	Withdrawals int64
	Handoffs    int64
	MaxRun      int64
	CPU         time.Duration
	Exit        string // "exit 0", "killed by SIGKILL", ...
	Died        bool   // ended by a signal or an error, without a report
	Recovered   []int  // pids of dead holders it took the lock over from
	PinnedTo    int    // the CPU it was bound to, as the kernel reported; -1 when not pinned
	// KilledByRun is set when the run killed the worker because it did not
	// stop when asked; Stopped when it was stopped by a signal (SIGSTOP)
	// then. Phase is what it was doing when it ended.
	KilledByRun bool
	Stopped     bool
	Phase       shm.SlotPhase
}

// Failed reports whether any worker ended without finishing its work.
func (r *BankResult) Failed() bool {
	for _, p := range r.Procs {
		if p.Died {
			return true
		}
	}
	return false
}

// Percentile returns the acquire-latency percentile q (0-100), 0 when none
// was recorded.
func (r *BankResult) Percentile(q float64) time.Duration {
	if r.Latency == nil || r.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Latency.ValueAtQuantile(q))
}

// MaxLatency returns the longest acquisition recorded.
func (r *BankResult) MaxLatency() time.Duration {
	if r.Latency == nil || r.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Latency.Max())
}

// accountCheck decides lost updates and consistency from the account word.
//
// Every write sets the version to the version it read plus one, so the final
// version is the number of writes the final balance descends from; any other
// write was overwritten: lost. A worker killed between its write and its
// count leaves one write that landed but was not counted (in doubt); with d
// such depositors and w withdrawers dead, up to d+w extra writes are
// explained, each moving the net count by its role's sign.
func accountCheck(committed, netCommitted int64, version uint32, netFinal int64, deadDepositors, deadWithdrawers int64) (lost, inDoubt int64, consistent bool) {
	chain := int64(version)
	if chain < committed {
		return committed - chain, 0, false
	}
	extra, dnet := chain-committed, netFinal-netCommitted
	if (extra+dnet)%2 != 0 {
		return 0, 0, false
	}
	d, w := (extra+dnet)/2, (extra-dnet)/2
	if d < 0 || w < 0 || d > deadDepositors || w > deadWithdrawers {
		return 0, 0, false
	}
	return 0, extra, true
}

// jain returns Jain's fairness index of xs: (sum x)^2 / (n * sum x^2).
func jain(xs []int64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(xs)) * sq)
}
