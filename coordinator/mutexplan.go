package coordinator

import (
	"fmt"
	"time"

	"mplock/dmutex"
	"mplock/worker"
)

// Mutex defaults, in one place. Procs and Duration are a short version of
// the seed's 15 processes for 10 seconds; CS and Think make the processes
// contend most of the time without the critical section dominating.
const (
	DefaultMutexProcs    = 5
	DefaultMutexDuration = 3 * time.Second
	DefaultMutexCS       = time.Millisecond
	DefaultMutexThinkMax = 10 * time.Millisecond
	DefaultMutexPings    = 200
	DefaultMutexLog      = 1 << 20
	MaxMutexProcs        = dmutex.MaxProcs
)

// MutexPlan is one mutex run: one algorithm, its peers and their workload.
type MutexPlan struct {
	Algorithm dmutex.Algorithm
	Procs     int           // peer processes, 2 to MaxMutexProcs
	Duration  time.Duration // how long the peers keep asking
	CS        time.Duration // stay in the critical section
	ThinkMin  time.Duration // pause before each request: uniform in [ThinkMin, ThinkMax]
	ThinkMax  time.Duration
	Network   string // worker.NetworkUnix (default) or worker.NetworkTCP
	Verbose   bool   // collect every event of every process
	// Pings is the number of ping round trips peer 0 times before the start
	// to measure one message's delivery time; 0 means DefaultMutexPings.
	Pings int
	// LogCap bounds the interval log; 0 means DefaultMutexLog. Entries
	// beyond it are still counted by the occupancy counter.
	LogCap int
	// StallTimeout stops the run when no process enters for that long while
	// one is waiting; 0 means 5s plus 10 times CS and ThinkMax.
	StallTimeout time.Duration
	// Fault, when set, injects a failure (tests and demonstrations).
	Fault *MutexFault
	// Seed makes think times repeatable; 0 picks one at random.
	Seed uint64
	// Progress, when set, is called from the supervising goroutine every
	// 20ms while the run is going.
	Progress func(MutexProgress)
	// Log, when set, receives every event and problem of every process
	// (events only with Verbose) while the run goes, in time order, about
	// a tenth of a second after each happened, from one goroutine at a
	// time; the last ones before RunMutex returns.
	Log func(MutexLogEntry)
}

// FaultKind is a failure a mutex run can inject.
type FaultKind uint8

// Faults.
const (
	FaultKill    FaultKind = iota + 1 // SIGKILL the peer after After entries in all
	FaultStop                         // SIGSTOP the peer after After entries in all: alive, silent
	FaultGarbage                      // the peer sends malformed lines on every link before the start
)

func (k FaultKind) String() string {
	switch k {
	case FaultKill:
		return "kill"
	case FaultStop:
		return "stop"
	case FaultGarbage:
		return "garbage"
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

// MutexFault is one injected failure.
type MutexFault struct {
	Kind  FaultKind
	Peer  int   // the peer (or dmutex.ServerID)
	After int64 // entries by all peers before a kill or stop
}

// MutexProgress is a snapshot during a run.
type MutexProgress struct {
	Algorithm dmutex.Algorithm
	Entries   int64
	Elapsed   time.Duration
	Planned   time.Duration
}

// Validate checks the plan and fills in defaults. Its errors wrap ErrPlan.
func (p *MutexPlan) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, args...))
	}
	if p.Algorithm == 0 {
		p.Algorithm = dmutex.RicartAgrawala
	}
	if p.Network == "" {
		p.Network = worker.NetworkUnix
	}
	switch {
	case p.Procs < 2 || p.Procs > MaxMutexProcs:
		return bad("%d processes: want 2 to %d", p.Procs, MaxMutexProcs)
	case p.Duration <= 0:
		return bad("duration %v: must be positive", p.Duration)
	case p.CS < 0:
		return bad("critical section %v: must not be negative", p.CS)
	case p.ThinkMin < 0 || p.ThinkMax < p.ThinkMin:
		return bad("think %v-%v: want 0 <= min <= max", p.ThinkMin, p.ThinkMax)
	case p.Network != worker.NetworkUnix && p.Network != worker.NetworkTCP:
		return bad("transport %q: want unix or tcp", p.Network)
	case p.Pings < 0 || p.LogCap < 0 || p.StallTimeout < 0:
		return bad("pings, log size and stall timeout must not be negative")
	}
	if _, err := dmutex.ParseAlgorithm(p.Algorithm.String()); err != nil {
		return bad("%v", err)
	}
	if f := p.Fault; f != nil {
		okPeer := f.Peer >= 0 && f.Peer < p.Procs || f.Peer == dmutex.ServerID && p.Algorithm.HasServer()
		if !okPeer || f.Kind < FaultKill || f.Kind > FaultGarbage || f.After < 0 {
			return bad("fault %v of %s after %d entries: no such process or fault", f.Kind, dmutex.Name(f.Peer), f.After)
		}
	}
	if p.Pings == 0 {
		p.Pings = DefaultMutexPings
	}
	if p.LogCap == 0 {
		p.LogCap = DefaultMutexLog
	}
	if p.StallTimeout == 0 {
		p.StallTimeout = 5*time.Second + 10*(p.CS+p.ThinkMax)
	}
	return nil
}
