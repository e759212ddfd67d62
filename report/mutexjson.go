package report

import (
	"encoding/json"
	"io"
	"math"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/machine"
)

// MutexDoc is the JSON document of `mplock mutex --json`. Times are in
// nanoseconds, rates per second. The event log (--verbose) is not part of
// it; it goes to stderr.
type MutexDoc struct {
	Machine machine.Info `json:"machine"`
	Runs    []MutexRun   `json:"runs"`
	Verdict []string     `json:"verdict"`
}

// MutexRun is one run in MutexDoc.
type MutexRun struct {
	Algorithm        string  `json:"algorithm"`
	Procs            int     `json:"procs"`
	DurationNs       int64   `json:"duration_ns"`
	CSNs             int64   `json:"cs_ns"`
	ThinkMinNs       int64   `json:"think_min_ns"`
	ThinkMaxNs       int64   `json:"think_max_ns"`
	Transport        string  `json:"transport"`
	Entries          int64   `json:"entries"`
	WallNs           int64   `json:"wall_ns"`
	EntriesPerSecond float64 `json:"entries_per_second"`
	WaitNs           Summary `json:"wait_ns"`

	Messages               int64   `json:"messages"`
	MessagesPerEntry       float64 `json:"messages_per_entry"`
	TheoryMessagesPerEntry float64 `json:"theory_messages_per_entry"` // heavy load (its upper end when a range)
	TheoryExact            bool    `json:"theory_exact"`
	TheoryFormula          string  `json:"theory_formula"`
	MessagesMatchTheory    bool    `json:"messages_match_theory"`
	// The theory in full, messages per entry: at light and heavy load, the
	// bounds any run keeps (for Maekawa weighted by this run's entries),
	// and what the figures rest on.
	TheoryLight  RangeDoc `json:"theory_light"`
	TheoryHeavy  RangeDoc `json:"theory_heavy"`
	TheoryBounds RangeDoc `json:"theory_bounds"`
	TheoryBasis  string   `json:"theory_basis"`
	// Load is the share of requests that found the critical section busy;
	// Regime names it: light, heavy or mixed.
	Load   float64 `json:"load"`
	Regime string  `json:"regime"`

	SyncDelayNs    Summary      `json:"sync_delay_ns"`
	DeliveryNs     *DeliveryDoc `json:"delivery_ns"`      // during the run; null when not measured
	DeliveryIdleNs *DeliveryDoc `json:"delivery_idle_ns"` // before the start, every process idle
	SyncDelayRatio float64      `json:"sync_delay_ratio"`
	TheorySync     RangeDoc     `json:"theory_sync_delay"` // in delivery times
	// UncontendedWaitNs is the wait of the entries whose request found the
	// critical section free; ResponseRatio its median in delivery times,
	// beside TheoryResponse.
	UncontendedWaitNs Summary  `json:"uncontended_wait_ns"`
	ResponseRatio     float64  `json:"response_ratio"`
	TheoryResponse    RangeDoc `json:"theory_response"`

	Violations        int64  `json:"violations"`
	OccupancyOverlaps uint64 `json:"occupancy_overlaps"`
	MaxInside         int32  `json:"max_inside"`
	IntervalsLogged   int    `json:"intervals_logged"`
	IntervalsDropped  uint64 `json:"intervals_dropped"`
	OpenIntervals     int    `json:"open_intervals"`
	Inversions        int64  `json:"inversions"`

	Rejected    int64          `json:"rejected"`
	Problems    []ProblemDoc   `json:"problems"`
	Processes   []MutexProcDoc `json:"processes"`
	Server      *MutexProcDoc  `json:"server"`  // null unless central
	Failure     *FailureDoc    `json:"failure"` // null when the run did not fail
	Interrupted bool           `json:"interrupted"`
	Ok          bool           `json:"ok"`
}

// RangeDoc is a span of values; Hi is null when unbounded.
type RangeDoc struct {
	Lo float64  `json:"lo"`
	Hi *float64 `json:"hi"`
}

func rangeDoc(r dmutex.Range) RangeDoc {
	d := RangeDoc{Lo: r.Lo}
	if !math.IsInf(r.Hi, 1) {
		hi := r.Hi
		d.Hi = &hi
	}
	return d
}

// Summary is a set of durations in nanoseconds.
type Summary struct {
	Count int64 `json:"count"`
	Mean  int64 `json:"mean"`
	P50   int64 `json:"p50"`
	P99   int64 `json:"p99"`
	Max   int64 `json:"max"`
}

// DeliveryDoc is one message's delivery time: half a ping round trip.
type DeliveryDoc struct {
	Rounds int   `json:"rounds"`
	Median int64 `json:"median"`
	Mean   int64 `json:"mean"`
	Min    int64 `json:"min"`
}

// ProblemDoc is a refused message or connection, or a broken link.
type ProblemDoc struct {
	AtNs int64  `json:"at_ns"`
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// MutexProcDoc is one process.
type MutexProcDoc struct {
	Name     string  `json:"name"`
	ID       int     `json:"id"`
	Pid      int     `json:"pid"`
	Entries  int64   `json:"entries"`
	WaitNs   Summary `json:"wait_ns"`
	Messages int64   `json:"messages"`
	Rejected int64   `json:"rejected"`
	CPUNs    int64   `json:"cpu_ns"`
	Exit     string  `json:"exit"`
	Died     bool    `json:"died"`
}

// FailureDoc says why a run failed.
type FailureDoc struct {
	What        string   `json:"what"`
	Culprit     string   `json:"culprit"`
	CulpritPid  int      `json:"culprit_pid"`
	How         string   `json:"how"`
	AtNs        int64    `json:"at_ns"`
	Waiters     []string `json:"waiters"`
	Explanation string   `json:"explanation"`
}

// NewMutexDoc converts results to the JSON document.
func NewMutexDoc(m Mutex) MutexDoc {
	doc := MutexDoc{Machine: m.Machine, Runs: []MutexRun{}, Verdict: MutexVerdict(m.Runs)}
	for _, r := range m.Runs {
		doc.Runs = append(doc.Runs, mutexRun(r))
	}
	return doc
}

func summary(d coordinator.Durations) Summary {
	return Summary{Count: d.Count, Mean: int64(d.Mean), P50: int64(d.P50), P99: int64(d.P99), Max: int64(d.Max)}
}

func mutexProc(p coordinator.MutexProc) MutexProcDoc {
	return MutexProcDoc{Name: p.Name(), ID: p.ID, Pid: p.Pid, Entries: p.Entries, WaitNs: summary(p.Wait),
		Messages: p.Sent, Rejected: p.Rejected, CPUNs: int64(p.CPU), Exit: p.Exit, Died: p.Died}
}

func mutexRun(r *coordinator.MutexResult) MutexRun {
	out := MutexRun{
		Algorithm: r.Algorithm.String(), Procs: r.Procs, DurationNs: int64(r.Duration), CSNs: int64(r.CS),
		ThinkMinNs: int64(r.ThinkMin), ThinkMaxNs: int64(r.ThinkMax), Transport: r.Network,
		Entries: r.Entries, WallNs: int64(r.Wall), EntriesPerSecond: r.EntriesPerSecond, WaitNs: summary(r.Wait),
		Messages: r.Messages, MessagesPerEntry: r.MessagesPerEntry, TheoryMessagesPerEntry: r.Theory,
		TheoryExact: r.TheoryExact, TheoryFormula: r.TheoryText, MessagesMatchTheory: r.MessagesMatch,
		SyncDelayNs: summary(r.SyncDelay), SyncDelayRatio: r.SyncRatio(),
		TheoryLight: rangeDoc(r.Cost.Light), TheoryHeavy: rangeDoc(r.Cost.Heavy), TheoryBounds: rangeDoc(r.Bounds),
		TheoryBasis: r.Cost.Basis, Load: r.Load, Regime: r.Regime(), TheorySync: rangeDoc(r.Cost.Sync),
		UncontendedWaitNs: summary(r.Uncontended), ResponseRatio: responseRatio(r), TheoryResponse: rangeDoc(r.Cost.Response),
		Violations: r.Violations, OccupancyOverlaps: r.Overlaps, MaxInside: r.MaxInside,
		IntervalsLogged: r.Logged, IntervalsDropped: r.Dropped, OpenIntervals: r.Open, Inversions: r.Inversions,
		Rejected: r.Rejected, Problems: []ProblemDoc{}, Processes: []MutexProcDoc{},
		Interrupted: r.Interrupted, Ok: r.Ok(),
	}
	if d := r.Delivery; d != nil {
		out.DeliveryNs = &DeliveryDoc{Rounds: d.Rounds, Median: d.Median, Mean: d.Mean, Min: d.Min}
	}
	if d := r.DeliveryIdle; d != nil {
		out.DeliveryIdleNs = &DeliveryDoc{Rounds: d.Rounds, Median: d.Median, Mean: d.Mean, Min: d.Min}
	}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, ProblemDoc{AtNs: int64(p.At), Kind: p.Kind, Text: p.Text})
	}
	for _, p := range r.Peers {
		out.Processes = append(out.Processes, mutexProc(p))
	}
	if r.Server != nil {
		s := mutexProc(*r.Server)
		out.Server = &s
	}
	if f := r.Failure; f != nil {
		fd := &FailureDoc{What: f.What, CulpritPid: f.CulpritPid, How: f.How, AtNs: int64(f.At),
			Waiters: []string{}, Explanation: f.Explanation}
		if f.Culprit >= 0 {
			fd.Culprit = coordinator.MutexProc{ID: f.Culprit}.Name()
		}
		for _, w := range f.Waiters {
			fd.Waiters = append(fd.Waiters, coordinator.MutexProc{ID: w}.Name())
		}
		out.Failure = fd
	}
	return out
}

// MutexJSON writes the JSON document, indented.
func MutexJSON(w io.Writer, m Mutex) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewMutexDoc(m))
}
