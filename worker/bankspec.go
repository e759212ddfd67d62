package worker

import (
	"time"

	"mplock/lock"
)

// BankSpec is what a coordinator tells one bank worker.
type BankSpec struct {
	Slot int       // this worker's slot in the region, 0-based
	Kind lock.Kind // the lock kind guarding the balance
	Ops  int64     // operations to perform; 0 means until the stop flag
	// Cap, when positive, stops a timed run (Ops 0) after that many
	// operations, before the account word's counts could overflow.
	Cap      int64
	Think    time.Duration // pause before each operation, outside the lock
	Hold     time.Duration // pause inside the lock, between read and write
	LockFile string        // the lock file (flock, fcntl)
	SemID    int           // the System V semaphore set (sysv)
	// NoLatency turns acquire-latency recording off, to measure its cost.
	NoLatency bool
	// Trace records each operation in the worker's trace ring (shm.Trace),
	// from which the report shows a lost update as it happened.
	Trace bool
	// Pin, when set, binds the worker's thread to CPU: two workers then
	// contend from two CPUs instead of the scheduler sometimes putting both
	// on one CPU to take turns, a different regime with different figures.
	Pin bool
	CPU int
	// KillAt, when positive, makes the worker SIGKILL itself at that
	// operation, after writing the balance and before counting the write:
	// the worst moment to die, used to test recovery and accounting.
	KillAt int64
}

// BankReport is what a bank worker sends back on its report pipe when it
// finishes. A worker that dies sends nothing; its slot in the shared region
// still tells what it committed.
type BankReport struct {
	Slot        int   `json:"slot"`
	Pid         int   `json:"pid"`
	Role        Role  `json:"role"`
	Ops         int64 `json:"ops"`
	Deposits    int64 `json:"deposits"`
	Withdrawals int64 `json:"withdrawals"`
	// Handoffs counts acquisitions where the previous holder was another
	// worker; MaxRun is this worker's longest streak of acquisitions in a row.
	Handoffs int64 `json:"handoffs"`
	MaxRun   int64 `json:"max_run"`
	// Latency is the acquire-latency histogram (HdrHistogram V2, base64), in
	// nanoseconds; empty when not recorded.
	Latency []byte `json:"latency,omitempty"`
	// Recovered lists the pids of dead holders this worker took the lock from.
	Recovered []int `json:"recovered,omitempty"`
	// FirstDoneOps, set only by the first worker to finish its operations,
	// holds every worker's committed count at that moment: how far the others
	// had got when one was done, the fairness that final counts hide.
	FirstDoneOps []int64 `json:"first_done_ops,omitempty"`
	// Start and End bracket the operation loop on the shared monotonic clock.
	Start int64 `json:"start_ns"`
	End   int64 `json:"end_ns"`
	// CPU time of the whole worker process.
	UserNs int64 `json:"user_ns"`
	SysNs  int64 `json:"sys_ns"`
	// PinnedTo is the CPU the worker's thread was bound to, read back from
	// the kernel after binding it; -1 when not pinned.
	PinnedTo int `json:"pinned_to"`
	// Capped is set when a timed run stopped this worker at its Cap.
	Capped bool `json:"capped,omitempty"`
}
