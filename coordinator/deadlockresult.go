package coordinator

import (
	"fmt"
	"time"

	"mplock/waitfor"
)

// DeadlockResult is everything one deadlock run found out. Times named At,
// Since, Formed and Detected count from Start.
type DeadlockResult struct {
	Plan    DeadlockPlan
	Start   time.Time // wall clock when the run began
	Elapsed time.Duration

	Servers []DeadlockServer
	Holders []DeadlockHolder
	Events  []DeadlockEvent // the timeline, in time order

	// Deadlock is the first deadlock the detector confirmed; nil if none.
	Deadlock *Deadlock
	// Victim is the process killed to end it (Resolve Victim); nil
	// otherwise.
	Victim *DeadlockVictim

	// Graph is the look to draw: the one that confirmed the deadlock, or
	// else the one with the most waits; GraphAt is when it was taken.
	Graph   waitfor.Graph
	GraphAt time.Duration
	// Looks counts the detector's looks (each asks every server once).
	Looks int
	// TransientCycles counts distinct cycles seen that went through a
	// timed wait: they break by themselves and are not deadlocks.
	TransientCycles int

	Interrupted bool   // ctx was cancelled
	TimedOut    bool   // the plan's Timeout ended the run
	Failure     string // why the run could not go on (a process died); "" if it could
}

// Completed counts the holders that took and released all their locks.
func (r *DeadlockResult) Completed() int {
	n := 0
	for _, h := range r.Holders {
		if h.Completed {
			n++
		}
	}
	return n
}

// Retries counts the times holders gave up a timed acquire and started over.
func (r *DeadlockResult) Retries() int {
	n := 0
	for _, h := range r.Holders {
		n += h.Retries
	}
	return n
}

// DeadlockServer is one lock server of the run.
type DeadlockServer struct {
	Lock string // the lock it serves: "lock1"
	Addr string // where it listened: "127.0.0.1:6000"
	PID  int
	Exit string // how it ended: "exit 0"
}

// DeadlockHolder is one holder of the run.
type DeadlockHolder struct {
	Proc      string   // "P1"
	PID       int      //
	Locks     []string // in the order it takes them
	Completed bool     // took and released every lock
	Retries   int      // timed acquires it gave up (TryLock)
	Victim    bool     // killed to end the deadlock
	Stopped   string   // what it was doing when the run ended it ("waiting for lock2, holding lock1"); "" if it finished or died
	Exit      string   // how the process ended
}

// Deadlock is a confirmed cycle of waits.
type Deadlock struct {
	Cycle []CycleEdge
	// Members lists every process that waits, directly or not, for the
	// others of the cycle, when there are more than the cycle's own.
	Members  []string
	Servers  int           // distinct lock servers the cycle spans
	Formed   time.Duration // when its last wait began
	Detected time.Duration // when the detector confirmed it
	Latency  time.Duration // Detected - Formed
	Look     int           // the detector's look that confirmed it
}

// CycleEdge is one process of a cycle: what it holds, what it waits for,
// and who that is.
type CycleEdge struct {
	Proc string
	PID  int
	// Holds is the lock by which the previous process of the cycle waits
	// for this one; "" when this one is only ahead of it in the queue.
	Holds      string
	HoldsAt    string
	HoldsToken uint64
	HoldsSince time.Duration
	WaitsFor   string
	WaitsAt    string
	WaitsSince time.Duration
	// Blocker is the next process of the cycle: it holds WaitsFor
	// (Kind HeldBy) or is queued ahead for it (QueuedBehind).
	Blocker    string
	BlockerPID int
	Kind       waitfor.EdgeKind
}

// DeadlockVictim is the process killed to end a deadlock, and why.
type DeadlockVictim struct {
	Proc   string
	PID    int
	Held   []string // the locks it held, which the servers released
	Reason string   // why it was chosen
}

// DeadlockEventKind is what happened at one point of the timeline.
type DeadlockEventKind uint8

// Events.
const (
	EventServerUp DeadlockEventKind = iota + 1 // a lock server listens (Proc is the lock, Addr its address)
	EventGot                                   // a holder was granted Lock
	EventWaiting                               // a holder queued for Lock, held by Other (Text: "as its server reports" when the detector saw it first)
	EventGaveUp                                // a timed acquire of Lock ran out
	EventBackoff                               // a holder released everything and backs off for Waited
	EventReleased                              // a holder released Lock
	EventDone                                  // a holder took and released all its locks
	EventStopped                               // a holder stopped when told to (Text: what it was doing)
	EventExited                                // a process ended unexpectedly or was killed (Text: how)
	EventDeadlock                              // the detector confirmed a deadlock (Text: the cycle)
	EventVictim                                // a process was killed to end it (Text: why that one)
	EventLeft                                  // the deadlock is left alone until the timeout (Resolve None)
	EventAbort                                 // the run stops every process (Text: why)
)

var eventNames = [...]string{
	EventServerUp: "server-up", EventGot: "got", EventWaiting: "waiting", EventGaveUp: "gave-up",
	EventBackoff: "backoff", EventReleased: "released", EventDone: "done", EventStopped: "stopped",
	EventExited: "exited", EventDeadlock: "deadlock", EventVictim: "victim", EventLeft: "left", EventAbort: "stop",
}

func (k DeadlockEventKind) String() string {
	if int(k) < len(eventNames) && k > 0 {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// DeadlockEvent is one line of the timeline.
type DeadlockEvent struct {
	At       time.Duration
	Kind     DeadlockEventKind
	Proc     string // the holder, or the lock of a server
	PID      int
	Lock     string
	Addr     string
	Token    uint64
	Waited   time.Duration // got: how long it queued; gave-up: how long it tried; backoff: how long it waits
	Other    string        // waiting: who holds the lock
	OtherPID int
	Text     string
}
