package report

import (
	"encoding/json"
	"io"
	"time"

	"mplock/coordinator"
)

// DeadlockDoc is the JSON document of `mplock deadlock --json`. Times are in
// milliseconds: durations as such, points in time (at_ms, since_ms,
// formed_ms, detected_ms) from the start of the run. Fields are only ever
// added to.
type DeadlockDoc struct {
	Deadlock   bool   `json:"deadlock"`   // a deadlock was detected (and confirmed)
	Strategy   string `json:"strategy"`   // reverse, ordered or trylock
	Resolution string `json:"resolution"` // what --resolve asked: abort, victim or none
	// Outcome is how the run ended: "aborted" (deadlock, resolve abort),
	// "victim" (deadlock, a victim killed, the others finished), "hung"
	// (deadlock left alone until the timeout), "completed" (no deadlock,
	// every process finished), "timed-out", "interrupted" or "failed".
	Outcome string `json:"outcome"`
	Procs   int    `json:"procs"`

	Cycle      []CycleEdgeDoc `json:"cycle"`       // empty without a deadlock
	Members    []string       `json:"members"`     // processes stuck behind the cycle too, when there are more
	Servers    int            `json:"servers"`     // lock servers the cycle spans; 0 without a deadlock
	FormedMs   *float64       `json:"formed_ms"`   // when the cycle formed (its latest wait began); null without
	DetectedMs *float64       `json:"detected_ms"` // when the detector confirmed it; null without
	DetectMs   *float64       `json:"detect_ms"`   // detection latency: detected_ms - formed_ms; null without
	Looks      int            `json:"looks"`       // detector looks, each asking every server once

	Victim          *VictimDoc `json:"victim"` // null unless a victim was killed
	Completed       int        `json:"completed"`
	Retries         int        `json:"retries"`          // timed acquires given up (trylock)
	TransientCycles int        `json:"transient_cycles"` // cycles through timed waits: not deadlocks

	Holders  []HolderDoc   `json:"holders"`
	LockSrvs []ServerDoc   `json:"lock_servers"`
	Timeline []EventDoc    `json:"timeline"`
	Settings DeadlockPlanD `json:"settings"`

	ElapsedMs   float64 `json:"elapsed_ms"`
	Interrupted bool    `json:"interrupted"`
	TimedOut    bool    `json:"timed_out"`
	Failure     string  `json:"failure"` // "" unless a process died or the run could not go on
	ExitCode    int     `json:"exit_code"`
}

// CycleEdgeDoc is one process of the cycle: it holds Holds (which the
// previous process waits for) and waits for WaitsFor, held by HeldBy.
type CycleEdgeDoc struct {
	Proc         string  `json:"proc"`
	PID          int     `json:"pid"`
	Holds        string  `json:"holds"` // "" when it is only ahead of the previous one in a queue
	HoldsAt      string  `json:"holds_at"`
	HoldsToken   uint64  `json:"holds_token"` // the fencing token of that grant
	HoldsSinceMs float64 `json:"holds_since_ms"`
	WaitsFor     string  `json:"waits_for"`
	WaitsAt      string  `json:"waits_at"`
	WaitsSinceMs float64 `json:"waits_since_ms"`
	HeldBy       string  `json:"held_by"` // the next process of the cycle
	HeldByPID    int     `json:"held_by_pid"`
	Blocked      string  `json:"blocked"` // "held by", or "queued behind" (FIFO queue, conflicting mode)
}

// VictimDoc is the process killed to end the deadlock.
type VictimDoc struct {
	Proc   string   `json:"proc"`
	PID    int      `json:"pid"`
	Held   []string `json:"held"`
	Reason string   `json:"reason"`
}

// HolderDoc is one holder process.
type HolderDoc struct {
	Proc      string   `json:"proc"`
	PID       int      `json:"pid"`
	Locks     []string `json:"locks"` // in the order it takes them
	Completed bool     `json:"completed"`
	Retries   int      `json:"retries"`
	Victim    bool     `json:"victim"`
	Stopped   string   `json:"stopped"` // what it was doing when stopped; "" if not stopped
	Exit      string   `json:"exit"`
}

// ServerDoc is one lock server process.
type ServerDoc struct {
	Lock string `json:"lock"`
	Addr string `json:"addr"`
	PID  int    `json:"pid"`
	Exit string `json:"exit"`
}

// EventDoc is one line of the timeline; Text is the line as the human
// report prints it.
type EventDoc struct {
	AtMs     float64 `json:"at_ms"`
	Event    string  `json:"event"`
	Proc     string  `json:"proc,omitempty"`
	PID      int     `json:"pid,omitempty"`
	Lock     string  `json:"lock,omitempty"`
	Addr     string  `json:"addr,omitempty"`
	Token    uint64  `json:"token,omitempty"`
	WaitedMs float64 `json:"waited_ms,omitempty"`
	Other    string  `json:"other,omitempty"`
	OtherPID int     `json:"other_pid,omitempty"`
	Text     string  `json:"text"`
}

// DeadlockPlanD is the run's settings.
type DeadlockPlanD struct {
	BasePort      int     `json:"base_port"` // 0: ports chosen by the kernel
	HoldMs        float64 `json:"hold_ms"`
	DetectEveryMs float64 `json:"detect_every_ms"`
	TimeoutMs     float64 `json:"timeout_ms"`
	TryTimeoutMs  float64 `json:"try_timeout_ms"` // trylock only
	BackoffMs     float64 `json:"backoff_ms"`     // trylock only
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msPtr(d time.Duration) *float64 {
	v := ms(d)
	return &v
}

// Outcome names how a run ended, as DeadlockDoc.Outcome.
func Outcome(r *coordinator.DeadlockResult) string {
	switch {
	case r.Interrupted:
		return "interrupted"
	case r.Failure != "":
		return "failed"
	case r.Deadlock != nil && r.Plan.Resolve == coordinator.Abort:
		return "aborted"
	case r.Deadlock != nil && r.Plan.Resolve == coordinator.None:
		return "hung"
	case r.Deadlock != nil:
		return "victim"
	case r.TimedOut:
		return "timed-out"
	}
	return "completed"
}

// NewDeadlockDoc builds the JSON document of a run.
func NewDeadlockDoc(d Deadlock) DeadlockDoc {
	r := d.Result
	p := r.Plan
	doc := DeadlockDoc{
		Deadlock: r.Deadlock != nil, Strategy: p.Strategy.String(), Resolution: p.Resolve.String(), Outcome: Outcome(r),
		Procs: p.Procs, Cycle: []CycleEdgeDoc{}, Looks: r.Looks, Completed: r.Completed(), Retries: r.Retries(),
		TransientCycles: r.TransientCycles, Holders: []HolderDoc{}, LockSrvs: []ServerDoc{}, Timeline: []EventDoc{},
		Settings:  DeadlockPlanD{BasePort: p.BasePort, HoldMs: ms(p.Hold), DetectEveryMs: ms(p.DetectEvery), TimeoutMs: ms(p.Timeout)},
		ElapsedMs: ms(r.Elapsed), Interrupted: r.Interrupted, TimedOut: r.TimedOut, Failure: r.Failure, ExitCode: d.ExitCode,
	}
	if p.Strategy == coordinator.TryLock {
		doc.Settings.TryTimeoutMs, doc.Settings.BackoffMs = ms(p.TryTimeout), ms(p.Backoff)
	}
	if dl := r.Deadlock; dl != nil {
		for _, e := range dl.Cycle {
			doc.Cycle = append(doc.Cycle, CycleEdgeDoc{
				Proc: e.Proc, PID: e.PID, Holds: e.Holds, HoldsAt: e.HoldsAt, HoldsToken: e.HoldsToken, HoldsSinceMs: ms(e.HoldsSince),
				WaitsFor: e.WaitsFor, WaitsAt: e.WaitsAt, WaitsSinceMs: ms(e.WaitsSince),
				HeldBy: e.Blocker, HeldByPID: e.BlockerPID, Blocked: e.Kind.String(),
			})
		}
		doc.Members, doc.Servers = dl.Members, dl.Servers
		doc.FormedMs, doc.DetectedMs, doc.DetectMs = msPtr(dl.Formed), msPtr(dl.Detected), msPtr(dl.Latency)
	}
	if v := r.Victim; v != nil {
		doc.Victim = &VictimDoc{Proc: v.Proc, PID: v.PID, Held: v.Held, Reason: v.Reason}
	}
	for _, h := range r.Holders {
		doc.Holders = append(doc.Holders, HolderDoc{Proc: h.Proc, PID: h.PID, Locks: h.Locks, Completed: h.Completed,
			Retries: h.Retries, Victim: h.Victim, Stopped: h.Stopped, Exit: h.Exit})
	}
	for _, s := range r.Servers {
		doc.LockSrvs = append(doc.LockSrvs, ServerDoc{Lock: s.Lock, Addr: s.Addr, PID: s.PID, Exit: s.Exit})
	}
	for _, e := range r.Events {
		doc.Timeline = append(doc.Timeline, EventDoc{AtMs: ms(e.At), Event: e.Kind.String(), Proc: e.Proc, PID: e.PID,
			Lock: e.Lock, Addr: e.Addr, Token: e.Token, WaitedMs: ms(e.Waited), Other: e.Other, OtherPID: e.OtherPID,
			Text: DeadlockEventText(e)})
	}
	return doc
}

// DeadlockJSON writes the document, indented.
func DeadlockJSON(w io.Writer, d Deadlock) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewDeadlockDoc(d))
}
