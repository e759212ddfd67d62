package coordinator

import (
	"fmt"
	"strings"
	"time"

	"mplock/worker"
)

// Deadlock defaults, in one place. The ports are the seed's (6000, 6001,
// ...); Hold is long enough to read the timeline, and the deadlock does
// not depend on it (the holders synchronize on their first locks);
// DetectEvery keeps detection well under 100ms at a cost of one STATUS per
// server per look.
const (
	DefaultDeadlockProcs    = 2
	MaxDeadlockProcs        = 64
	DefaultDeadlockHost     = "127.0.0.1"
	DefaultDeadlockBasePort = 6000
	DefaultDeadlockHold     = 100 * time.Millisecond
	DefaultDetectEvery      = 10 * time.Millisecond
	DefaultDeadlockTimeout  = 10 * time.Second
	MinDetectEvery          = time.Millisecond
	MaxDetectEvery          = 10 * time.Second
	minTryTimeout           = 10 * time.Millisecond
	minBackoff              = time.Millisecond
)

// Strategy is how the holders order their locks.
type Strategy uint8

// Strategies.
const (
	// Reverse: holder i takes lock i, then lock i+1 (mod K): every holder
	// holds the lock the previous one asks for next. The deadlock.
	Reverse Strategy = iota + 1
	// Ordered: every holder takes its two locks in one global order (the
	// lower-numbered first), so no cycle of waits can form.
	Ordered
	// TryLock: the reverse order, but every acquire after the first is
	// timed: a holder that is not granted its next lock in time releases
	// what it holds, backs off for a random time and starts over.
	TryLock
)

var strategyNames = [...]string{Reverse: "reverse", Ordered: "ordered", TryLock: "trylock"}

func (s Strategy) String() string {
	if int(s) < len(strategyNames) && s > 0 {
		return strategyNames[s]
	}
	return fmt.Sprintf("strategy(%d)", uint8(s))
}

// Description says what the strategy does, for help texts.
func (s Strategy) Description() string {
	switch s {
	case Reverse:
		return "each process takes its own lock, then the next one's: opposite orders, a deadlock"
	case Ordered:
		return "every process takes its locks in one global order (lock1 before lock2 ...): no cycle can form"
	case TryLock:
		return "reverse order, but later locks are timed acquires: on timeout release all, back off at random, retry"
	}
	return ""
}

// ParseStrategy reads a strategy name.
func ParseStrategy(s string) (Strategy, error) {
	for i, n := range strategyNames {
		if n != "" && strings.EqualFold(strings.TrimSpace(s), n) {
			return Strategy(i), nil
		}
	}
	return 0, fmt.Errorf("coordinator: unknown strategy %q: want reverse, ordered or trylock", s)
}

// Resolution is what the coordinator does about a deadlock it detects.
type Resolution uint8

// Resolutions.
const (
	// Abort stops every process: the run ends with the deadlock reported.
	Abort Resolution = iota + 1
	// Victim kills one process of the cycle with SIGKILL; the servers
	// release its locks when its connections drop, and the others go on.
	Victim
	// None leaves the processes stuck, as the seed does, until the timeout.
	None
)

var resolutionNames = [...]string{Abort: "abort", Victim: "victim", None: "none"}

func (r Resolution) String() string {
	if int(r) < len(resolutionNames) && r > 0 {
		return resolutionNames[r]
	}
	return fmt.Sprintf("resolution(%d)", uint8(r))
}

// Description says what the resolution does, for help texts.
func (r Resolution) Description() string {
	switch r {
	case Abort:
		return "stop every process and report the deadlock (exit status 3)"
	case Victim:
		return "kill one process of the cycle (SIGKILL); its locks return when its connections drop; the rest finish"
	case None:
		return "leave them stuck, as the original did, until --timeout (exit status 3)"
	}
	return ""
}

// ParseResolution reads a resolution name.
func ParseResolution(s string) (Resolution, error) {
	for i, n := range resolutionNames {
		if n != "" && strings.EqualFold(strings.TrimSpace(s), n) {
			return Resolution(i), nil
		}
	}
	return 0, fmt.Errorf("coordinator: unknown resolution %q: want abort, victim or none", s)
}

// DeadlockPlan is one `mplock deadlock` run: K lock servers with one lock
// each (lock1 on the first ... lockK on the last) and K holders P1..PK.
type DeadlockPlan struct {
	Procs int // holders and servers, 2 to MaxDeadlockProcs
	// Host is the address the servers listen on; DefaultDeadlockHost when
	// empty.
	Host string
	// BasePort is the first server's port; server i listens on BasePort+i.
	// Zero lets the kernel choose a free port for each.
	BasePort int
	Strategy Strategy   // Reverse when zero
	Resolve  Resolution // Abort when zero
	// Hold is how long a holder keeps each lock before asking for the
	// next one (and, holding all, before releasing them).
	Hold time.Duration
	// DetectEvery is the detector's poll interval; DefaultDetectEvery when
	// zero.
	DetectEvery time.Duration
	// Timeout ends the run: a deadlock left alone (None) is then reported,
	// a run that did not finish fails. DefaultDeadlockTimeout when zero.
	Timeout time.Duration
	// TryTimeout bounds each timed acquire (TryLock); zero means twice
	// Hold, at least 10ms.
	TryTimeout time.Duration
	// Backoff is the base of the randomized backoff (TryLock); zero means
	// Hold, at least 1ms.
	Backoff time.Duration
	// Seed makes the backoffs repeatable; zero picks one at random.
	Seed uint64
	// OnEvent, when set, is told every event of the timeline as it
	// happens, from one goroutine.
	OnEvent func(DeadlockEvent)
}

// Validate checks the plan and fills in defaults. Its errors wrap ErrPlan.
func (p *DeadlockPlan) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, args...))
	}
	if p.Strategy == 0 {
		p.Strategy = Reverse
	}
	if p.Resolve == 0 {
		p.Resolve = Abort
	}
	if p.Host == "" {
		p.Host = DefaultDeadlockHost
	}
	if p.DetectEvery == 0 {
		p.DetectEvery = DefaultDetectEvery
	}
	if p.Timeout == 0 {
		p.Timeout = DefaultDeadlockTimeout
	}
	switch {
	case p.Procs < 2 || p.Procs > MaxDeadlockProcs:
		return bad("%d processes: want 2 to %d", p.Procs, MaxDeadlockProcs)
	case p.BasePort < 0 || p.BasePort > 65535-(p.Procs-1):
		return bad("base port %d: the %d servers need ports %d to %d; want 1 to %d, or 0 for free ports", p.BasePort, p.Procs,
			p.BasePort, p.BasePort+p.Procs-1, 65535-(p.Procs-1))
	case p.Strategy < Reverse || p.Strategy > TryLock:
		return bad("unknown strategy %v", p.Strategy)
	case p.Resolve < Abort || p.Resolve > None:
		return bad("unknown resolution %v", p.Resolve)
	case p.Hold < 0:
		return bad("hold %v: must not be negative", p.Hold)
	case p.DetectEvery < MinDetectEvery || p.DetectEvery > MaxDetectEvery:
		return bad("detect every %v: want %v to %v", p.DetectEvery, MinDetectEvery, MaxDetectEvery)
	case p.Timeout < 0:
		return bad("timeout %v: must be positive", p.Timeout)
	case p.TryTimeout < 0 || p.Backoff < 0:
		return bad("try timeout and backoff must not be negative")
	}
	if p.TryTimeout == 0 {
		p.TryTimeout = max(2*p.Hold, minTryTimeout)
	}
	if p.Backoff == 0 {
		p.Backoff = max(p.Hold, minBackoff)
	}
	return nil
}

// LockName names the lock of server i (from 0): "lock1".
func LockName(i int) string { return fmt.Sprintf("lock%d", i+1) }

// HolderName names holder i (from 0): "P1".
func HolderName(i int) string { return fmt.Sprintf("P%d", i+1) }

// LockOrder returns the servers (from 0) holder i takes its locks from, in
// the order it takes them.
func (p *DeadlockPlan) LockOrder(i int) []int {
	first, next := i, (i+1)%p.Procs
	if p.Strategy == Ordered && next < first {
		first, next = next, first
	}
	return []int{first, next}
}

// holderSpec is what holder i is told to do, given the servers' addresses.
func (p *DeadlockPlan) holderSpec(i int, addrs []string, seed uint64) worker.HolderSpec {
	s := worker.HolderSpec{Name: HolderName(i), Hold: p.Hold, Seed: seed + uint64(i)*0x9e3779b97f4a7c15}
	for _, k := range p.LockOrder(i) {
		s.Locks = append(s.Locks, worker.HolderLock{Name: LockName(k), Addr: addrs[k]})
	}
	// Every holder gets its first lock before any asks for the next: the
	// deadlock (and, with try-locks, the conflict) is certain, whatever
	// the scheduler does. Ordered holders share first locks, so they
	// cannot all hold one at once.
	s.Sync = p.Strategy != Ordered
	if p.Strategy == TryLock {
		s.TryTimeout, s.Backoff = p.TryTimeout, p.Backoff
	}
	return s
}
