// Package explore checks a mutual exclusion algorithm of package dmutex
// exhaustively for a small number of processes: it runs the state machines
// in one process under every order in which their messages can be
// delivered and their requests and exits can happen, and checks three
// properties in every reachable state:
//
//   - mutual exclusion: never two processes in the critical section;
//   - freedom from deadlock: whenever nothing can happen, every process has
//     made all its entries;
//   - every request is served: from every reachable state, some
//     continuation lets every process make all its entries (no trap, not
//     even a cycle, in which some request waits forever).
//
// A refused message (a process that could not accept what it was sent) is
// a failure too.
//
// The search is depth-first with state hashing: a state is every process's
// canonical state (dmutex.Node.AppendState) plus, per directed link, the
// messages in flight as the algorithm sees them (dmutex.Algorithm.
// AppendCanonical). Links are first-in first-out by default, as the stream
// sockets of a real run are; Config.Unordered lets a later message on a
// link overtake an earlier one. Strongly connected components (Tarjan's
// algorithm, on the fly) find the states from which no continuation
// finishes. On a failure, a breadth-first search from the start finds the
// shortest sequence of steps that leads to one of the same kind, and the
// result carries it as a trace.
//
// States are remembered as 128-bit hashes of their encoding: two different
// states with the same hash (a chance of about S^2/2^129 for S states)
// would make the search skip one of them. A search stopped by the state
// limit or by its context is not a proof, and Result.Complete says so.
package explore

import (
	"context"
	"fmt"
	"time"

	"mplock/dmutex"
)

// Limits of an exploration.
const (
	MaxProcs         = 6         // processes: beyond this no state space fits in memory
	MaxEntries       = 5         // entries per process
	DefaultMaxStates = 3_000_000 // about 200 MB of hashes and search state
)

// Config is one exploration.
type Config struct {
	Algorithm dmutex.Algorithm
	N         int // processes, 2 to MaxProcs
	Entries   int // critical-section entries each process makes, 1 to MaxEntries
	// MaxStates stops the search after that many distinct states; 0
	// means DefaultMaxStates.
	MaxStates int
	// Unordered lets messages on a link overtake each other. Real runs use
	// stream sockets, which keep order; so does the explorer by default.
	Unordered bool
	// Progress, when set, is called every 100,000 states.
	Progress func(Progress)

	// newNode, when set, builds the nodes instead of dmutex.New: tests use
	// it to explore a state machine that is not one of the algorithms.
	newNode func(cfg dmutex.Config) (dmutex.Node, error)
}

// Progress is a snapshot of a running search.
type Progress struct {
	States, Transitions int
	Elapsed             time.Duration
	Phase               string // "searching", or "shortest" while looking for the shortest counterexample
}

// FailureKind is what went wrong.
type FailureKind uint8

// Failure kinds.
const (
	Violation  FailureKind = iota + 1 // two processes in the critical section at once
	Deadlock                          // nothing can happen, and some process is still waiting
	Starvation                        // no continuation lets every process finish (a trap, possibly a cycle)
	Refused                           // a process refused a message, or sent one where it has no link
)

func (k FailureKind) String() string {
	switch k {
	case Violation:
		return "mutual exclusion violated"
	case Deadlock:
		return "deadlock"
	case Starvation:
		return "a request is never served"
	case Refused:
		return "a message was refused"
	}
	return fmt.Sprintf("failure(%d)", uint8(k))
}

// Failure is a counterexample: the shortest sequence of steps from the
// start to a state of its kind.
type Failure struct {
	Kind FailureKind
	// What says what the last state shows: who is inside, who waits for
	// what, which message was refused and why.
	What  string
	Trace []Step
	// Waiting lists, for a deadlock or starvation, the processes that
	// still want the critical section at the end of the trace.
	Waiting []int
}

// Result is what an exploration found.
type Result struct {
	Config
	States      int // distinct states reached
	Transitions int // steps taken (edges of the state graph)
	Final       int // states in which every process made all its entries
	MaxDepth    int // the longest path the depth-first search followed
	// Elapsed is the whole exploration; Search the depth-first search
	// alone (without the search for the shortest counterexample).
	Elapsed, Search time.Duration
	// Complete is true when every reachable state was checked (or a
	// failure was found): only then does "no failure" prove anything.
	Complete bool
	// Stopped says why a search is not complete: the state limit, or the
	// context's end.
	Stopped string
	Failure *Failure
	// ShortestStates counts the states the breadth-first search for the
	// shortest counterexample visited.
	ShortestStates int
}

// StatesPerSecond is the depth-first search's speed.
func (r *Result) StatesPerSecond() float64 {
	if r.Search <= 0 {
		return 0
	}
	return float64(r.States) / r.Search.Seconds()
}

// Proved reports whether the search covered every state and found no
// failure.
func (r *Result) Proved() bool { return r.Complete && r.Failure == nil }

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	switch {
	case c.Algorithm == 0 || c.Algorithm.String() == fmt.Sprintf("algorithm(%d)", uint8(c.Algorithm)):
		return fmt.Errorf("explore: unknown algorithm %v", c.Algorithm)
	case c.N < 2 || c.N > MaxProcs:
		return fmt.Errorf("explore: %d processes: want 2 to %d (the states grow exponentially with them)", c.N, MaxProcs)
	case c.Entries < 1 || c.Entries > MaxEntries:
		return fmt.Errorf("explore: %d entries per process: want 1 to %d", c.Entries, MaxEntries)
	case c.MaxStates < 0:
		return fmt.Errorf("explore: state limit %d: must not be negative", c.MaxStates)
	}
	if c.MaxStates == 0 {
		c.MaxStates = DefaultMaxStates
	}
	return nil
}

// Explore searches every interleaving of cfg. It returns an error only for
// an invalid configuration; everything the search finds, including a
// search cut short by ctx or by the state limit, is in the result.
func Explore(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := newSearch(ctx, cfg)
	res := &Result{Config: cfg}
	start := time.Now()
	found, err := s.dfs(res)
	if err != nil {
		return nil, err
	}
	res.States, res.Transitions, res.Final, res.MaxDepth = len(s.lowlink), s.transitions, s.final, s.maxDepth
	res.Search = time.Since(start)
	if found != 0 {
		res.Complete = true
		res.Failure, err = s.shortest(found, res)
		if err != nil {
			return nil, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}
