package coordinator

import (
	"slices"
	"time"

	"mplock/dmutex"
	"mplock/shm"
	"mplock/worker"
)

// MutexResult is everything one mutex run found out.
type MutexResult struct {
	Algorithm dmutex.Algorithm
	Procs     int
	Duration  time.Duration
	CS        time.Duration
	ThinkMin  time.Duration
	ThinkMax  time.Duration
	Network   string

	Entries          int64         // critical-section entries, all peers
	Wall             time.Duration // from the start barrier to the last exit
	EntriesPerSecond float64
	Wait             Durations // from request to entry, all peers

	// Messages counts the algorithm's messages, server included (pings and
	// introductions excluded); Theory is what the algorithm's analysis says
	// per entry under heavy load (see dmutex.Algorithm.MessagesPerEntry),
	// and Cost everything it says.
	Messages         int64
	MessagesPerEntry float64
	Theory           float64
	TheoryExact      bool
	TheoryText       string
	Cost             dmutex.Cost
	// Bounds is what the messages per entry of this very run must lie
	// within: the theory's bounds, for Maekawa weighted by each process's
	// quorum and entries. MessagesMatch is false when they do not.
	Bounds        dmutex.Range
	MessagesMatch bool

	// Load is the share of entries whose request found the critical
	// section busy (another process inside or waiting): 0 is the theory's
	// light load, 1 its heavy load.
	Load float64
	// Uncontended is the wait (request to entry) of the entries whose
	// request found nobody inside or waiting: the light-load response
	// time, less the time inside.
	Uncontended Durations

	// SyncDelay is the time from one process's exit to the next one's
	// entry, over the handoffs where the next one was already waiting.
	SyncDelay Durations
	// Delivery is one message's delivery time, measured with pings during
	// the run, under its load; DeliveryIdle with pings before the start,
	// when every process was idle. Nil when not measured.
	Delivery     *worker.Delivery
	DeliveryIdle *worker.Delivery

	// The independent safety check. Violations counts logged intervals that
	// began while another was still open (two processes inside at once);
	// Overlaps counts entries that found the occupancy counter above zero;
	// MaxInside is the most processes ever inside at once.
	Violations int64
	Overlaps   uint64
	MaxInside  int32
	Logged     int    // intervals in the log
	Dropped    uint64 // entries that did not fit in the log
	Open       int    // intervals never closed: the process died inside

	// Inversions counts pairs of entries granted out of (timestamp, id)
	// order. Ricart-Agrawala has none by construction.
	Inversions int64

	Rejected int64     // malformed or unexpected messages and connections refused
	Problems []Problem // what was rejected and which links broke, in time order

	Peers     []MutexProc
	Server    *MutexProc // the central algorithm's lock server
	Intervals []shm.MutexInterval
	Events    []TimedEvent // with Verbose, every event, in time order
	StartNs   int64        // the start barrier, on the shared monotonic clock

	Failure     *MutexFailure // why the run failed; nil when it did not
	Interrupted bool
}

// Durations summarises a set of durations.
type Durations struct {
	Count int64
	Mean  time.Duration
	P50   time.Duration
	P99   time.Duration
	Max   time.Duration
}

// MutexProc is one process of the run.
type MutexProc struct {
	ID       int
	Pid      int
	Entries  int64
	Wait     Durations
	Sent     int64 // algorithm messages
	Rejected int64
	CPU      time.Duration
	Exit     string
	Died     bool // ended by a signal or an error, or before the run's end
}

// Name is how reports call the process.
func (p MutexProc) Name() string { return dmutex.Name(p.ID) }

// Problem is a message a process refused, or a link that broke.
type Problem struct {
	At   time.Duration // since the start
	Kind string        // "rejected" or "lost"
	Text string
}

// TimedEvent is an algorithm event with its time since the start.
type TimedEvent struct {
	At time.Duration
	dmutex.Event
}

// MutexFailure explains why a run could not go on.
type MutexFailure struct {
	// What happened: a process "died", the run "stalled" (no entry while
	// someone waited), or did "not finish" after the stop.
	What string
	// Culprit is the process everyone waits for; -1 when none is known.
	Culprit    int
	CulpritPid int
	How        string // "killed by SIGKILL", "stopped (SIGSTOP)", ...
	At         time.Duration
	// Waiters are the processes waiting for the culprit, directly or
	// through another waiter.
	Waiters []int
	// After counts the entries the others made after the culprit died.
	After int64
	// Explanation is the whole story in one sentence or two.
	Explanation string
}

// Ok reports whether the run passed every check: no failure, no violation,
// messages per entry within the theory's bounds (exactly the theory's
// count where it is exact), and no entry out of timestamp order for an
// algorithm that grants in that order.
func (r *MutexResult) Ok() bool {
	if r.Failure != nil || r.Violations > 0 || r.Overlaps > 0 || !r.MessagesMatch {
		return false
	}
	return !r.Algorithm.GrantsInOrder() || r.Inversions == 0
}

// Regime names the run's load as the theory does: "light" when at most a
// tenth of the requests found the critical section busy, "heavy" when at
// least nine tenths did, else "mixed".
func (r *MutexResult) Regime() string {
	switch {
	case r.Entries == 0:
		return "-"
	case r.Load <= 0.1:
		return "light"
	case r.Load >= 0.9:
		return "heavy"
	}
	return "mixed"
}

// Expected is the theory's messages per entry for the run's regime: the
// light-load figure, the heavy-load one, or the span of both.
func (r *MutexResult) Expected() dmutex.Range {
	c := r.Cost
	switch r.Regime() {
	case "light":
		return c.Light
	case "heavy":
		return c.Heavy
	}
	return dmutex.Range{Lo: min(c.Light.Lo, c.Heavy.Lo), Hi: max(c.Light.Hi, c.Heavy.Hi)}
}

// SyncRatio is the median synchronization delay in one-message delivery
// times, as measured during the run (before it, when the run was too short
// for a ping); 0 when either is unknown.
func (r *MutexResult) SyncRatio() float64 {
	d := r.DeliveryBasis()
	if d == nil || d.Median <= 0 || r.SyncDelay.Count == 0 {
		return 0
	}
	return float64(r.SyncDelay.P50) / float64(d.Median)
}

// DeliveryBasis is the delivery time the synchronization delay is compared
// with: the one measured during the run, else the one before.
func (r *MutexResult) DeliveryBasis() *worker.Delivery {
	if r.Delivery != nil {
		return r.Delivery
	}
	return r.DeliveryIdle
}

func (r *mutexRun) result() *MutexResult {
	r.notes.Wait()
	p := r.plan
	res := &MutexResult{
		Algorithm: p.Algorithm, Procs: p.Procs, Duration: p.Duration, CS: p.CS,
		ThinkMin: p.ThinkMin, ThinkMax: p.ThinkMax, Network: p.Network,
		Delivery: r.delivery, DeliveryIdle: r.deliveryIdle, StartNs: r.startNs, Failure: r.failure, Interrupted: r.interrupted,
		Overlaps: r.mx.Control.Overlaps.Load(), MaxInside: r.mx.Control.MaxInside.Load(),
		Dropped: r.mx.Dropped(),
	}
	res.Intervals = slices.Clone(r.mx.Intervals())
	res.Logged = len(res.Intervals)
	check := checkIntervals(res.Intervals, p.Procs, r.endNs)
	res.Violations, res.Inversions, res.Open = check.violations, check.inversions, check.open
	res.Wait = summarize(check.waits)
	res.SyncDelay = summarize(check.sync)
	res.Uncontended = summarize(check.uncontended)
	if n := len(check.waits); n > 0 {
		res.Load = float64(n-len(check.uncontended)) / float64(n)
	}

	for _, c := range r.procs {
		s := r.mx.Slot(c.slot)
		mp := MutexProc{
			ID: c.id, Pid: c.pid(), Entries: int64(s.Entries.Load()), Sent: int64(s.Sent.Load()),
			Rejected: int64(s.Rejected.Load()), CPU: c.cpu, Exit: c.describe(),
			Died: c.lateExit || !c.exitedCleanly(),
		}
		if c.id < p.Procs {
			mp.Wait = summarize(check.procWaits[c.id])
		}
		res.Messages += mp.Sent
		res.Rejected += mp.Rejected
		if c.id == dmutex.ServerID {
			res.Server = &mp
			continue
		}
		res.Entries += mp.Entries
		res.Peers = append(res.Peers, mp)
	}
	end := max(check.lastExit, r.startNs)
	if res.Entries == 0 || end == r.startNs {
		end = r.endNs
	}
	res.Wall = time.Duration(end - r.startNs)
	if res.Wall > 0 {
		res.EntriesPerSecond = float64(res.Entries) / res.Wall.Seconds()
	}
	if res.Entries > 0 {
		res.MessagesPerEntry = float64(res.Messages) / float64(res.Entries)
	}
	res.Theory, res.TheoryExact = p.Algorithm.MessagesPerEntry(p.Procs)
	res.TheoryText = p.Algorithm.Theory()
	res.Cost = p.Algorithm.Cost(p.Procs)
	res.Bounds = runBounds(p.Algorithm, res.Cost, res.Peers)
	res.MessagesMatch = res.Failure != nil || res.Entries == 0 && res.Messages == 0 || res.Entries > 0 && res.Bounds.Contains(res.MessagesPerEntry)
	if res.TheoryExact && res.Failure == nil {
		res.MessagesMatch = res.Messages == int64(res.Theory)*res.Entries
	}

	for _, e := range r.events {
		e.At -= time.Duration(r.startNs)
		res.Events = append(res.Events, e)
	}
	slices.SortStableFunc(res.Events, func(a, b TimedEvent) int { return cmpDur(a.At, b.At) })
	for _, pr := range r.problems {
		pr.At -= time.Duration(r.startNs)
		res.Problems = append(res.Problems, pr)
	}
	slices.SortStableFunc(res.Problems, func(a, b Problem) int { return cmpDur(a.At, b.At) })
	return res
}

// runBounds is the theory's bounds on messages per entry for the entries
// this run made. Maekawa's least cost differs by quorum: 3(K-1) for a
// process whose quorum has K members, weighted here by its entries.
func runBounds(a dmutex.Algorithm, c dmutex.Cost, peers []MutexProc) dmutex.Range {
	b := c.Bounds
	if a != dmutex.Maekawa && a != dmutex.MaekawaNaive {
		return b
	}
	g := dmutex.NewGrid(len(peers))
	var least float64
	var entries int64
	for _, p := range peers {
		least += 3 * float64(len(g.Quorum(p.ID))-1) * float64(p.Entries)
		entries += p.Entries
	}
	if entries > 0 {
		b.Lo = least / float64(entries)
	}
	return b
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
