package report

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"

	"mplock/coordinator"
	"mplock/machine"
)

// BankDoc is the JSON document of `mplock bank --json`. Times are in
// nanoseconds, rates per second.
type BankDoc struct {
	Machine machine.Info `json:"machine"`
	// Clock is the clock acquire times were measured with; null if unknown.
	Clock   *ClockDoc `json:"clock"`
	Runs    []BankRun `json:"runs"`
	Verdict []string  `json:"verdict"`
}

// ClockDoc is worker.Clock in BankDoc.
type ClockDoc struct {
	Source       string `json:"source"`
	ResolutionNs int64  `json:"resolution_ns"`
	StepNs       int64  `json:"step_ns"`
	ReadNs       int64  `json:"read_ns"`
}

// LostUpdateDoc is coordinator.LostUpdate: Overwritten's write, which no
// one read, replaced by By's.
type LostUpdateDoc struct {
	Text        string     `json:"text"`
	SameRead    bool       `json:"same_read"`
	Writes      int64      `json:"writes"`
	Overwritten TraceOpDoc `json:"overwritten"`
	By          TraceOpDoc `json:"by"`
}

// TraceOpDoc is one traced read-modify-write; times are since the run's
// start.
type TraceOpDoc struct {
	Worker       int    `json:"worker"`
	Pid          int    `json:"pid"`
	Role         string `json:"role"`
	ReadBalance  int64  `json:"read_balance"`
	ReadVersion  uint32 `json:"read_version"`
	ReadNs       int64  `json:"read_ns"`
	WroteBalance int64  `json:"wrote_balance"`
	WroteVersion uint32 `json:"wrote_version"`
	WroteNs      int64  `json:"wrote_ns"`
}

// BankRun is one run in BankDoc.
type BankRun struct {
	Lock            string     `json:"lock"`
	Workers         int        `json:"workers"`
	Ops             int64      `json:"ops"`
	PlannedOps      int64      `json:"planned_ops"`
	DurationNs      int64      `json:"duration_ns"`
	ThinkNs         int64      `json:"think_ns"`
	HoldNs          int64      `json:"hold_ns"`
	Amount          int64      `json:"amount"`
	InitialBalance  int64      `json:"initial_balance"`
	ExpectedBalance int64      `json:"expected_balance"`
	FinalBalance    int64      `json:"final_balance"`
	LostUpdates     int64      `json:"lost_updates"`
	InDoubt         int64      `json:"in_doubt"`
	Consistent      bool       `json:"consistent"`
	WallNs          int64      `json:"wall_ns"`
	OpsPerSecond    float64    `json:"ops_per_second"`
	AcquireNs       *Latencies `json:"acquire_ns"` // null for lock-free kinds
	Handoffs        int64      `json:"handoffs"`
	MaxRun          int64      `json:"max_run"`
	Fairness        float64    `json:"fairness"`
	FairnessAt      string     `json:"fairness_at"`
	CPUNsPerOp      int64      `json:"cpu_ns_per_op"`
	Recoveries      int        `json:"recoveries"`
	Interrupted     bool       `json:"interrupted"`
	Stalled         bool       `json:"stalled"`
	Pinned          bool       `json:"pinned"`
	Capped          bool       `json:"capped"`
	// LastHolder is the worker that took the lock last (-1: none).
	LastHolder int `json:"last_holder"`
	// LostUpdate is one lost update of this run, as its traces recorded
	// it; null when not traced or none could be shown.
	LostUpdate *LostUpdateDoc `json:"lost_update"`
	// Unguarded says how the janitor died, if it did ("" otherwise).
	Unguarded string     `json:"unguarded"`
	Procs     []BankProc `json:"procs"`
}

// Latencies summarises a latency histogram, in nanoseconds.
type Latencies struct {
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p999"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
	Count int64   `json:"count"`
}

// BankProc is one worker process in BankRun.
type BankProc struct {
	Slot          int    `json:"slot"`
	Pid           int    `json:"pid"`
	Role          string `json:"role"`
	Ops           int64  `json:"ops"`
	Deposits      int64  `json:"deposits"`
	Withdrawals   int64  `json:"withdrawals"`
	Handoffs      int64  `json:"handoffs"`
	MaxRun        int64  `json:"max_run"`
	CPUNs         int64  `json:"cpu_ns"`
	Exit          string `json:"exit"`
	Died          bool   `json:"died"`
	RecoveredFrom []int  `json:"recovered_from"`
	PinnedTo      int    `json:"pinned_to"` // -1 when not pinned
	// Phase is what it was doing when it ended; KilledByRun whether the run
	// killed it for not stopping, Stopped whether it was stopped (SIGSTOP).
	Phase       string `json:"phase"`
	KilledByRun bool   `json:"killed_by_run"`
	Stopped     bool   `json:"stopped"`
}

// NewBankDoc converts results to the JSON document.
func NewBankDoc(b Bank) BankDoc {
	doc := BankDoc{Machine: b.Machine, Runs: []BankRun{}, Verdict: Verdict(b.Runs)}
	if c := b.Clock; c != nil {
		doc.Clock = &ClockDoc{Source: c.Source, ResolutionNs: int64(c.Resolution), StepNs: int64(c.Step), ReadNs: int64(c.ReadCost)}
	}
	for _, r := range b.Runs {
		doc.Runs = append(doc.Runs, bankRun(r))
	}
	return doc
}

func bankRun(r *coordinator.BankResult) BankRun {
	out := BankRun{
		Lock: r.Kind.String(), Workers: r.Workers, Ops: r.Ops, PlannedOps: r.Planned,
		DurationNs: int64(r.Duration), ThinkNs: int64(r.Think), HoldNs: int64(r.Hold),
		Amount: r.Amount, InitialBalance: r.Initial, ExpectedBalance: r.Expected, FinalBalance: r.Final,
		LostUpdates: r.LostUpdates, InDoubt: r.InDoubt, Consistent: r.Consistent,
		WallNs: int64(r.Wall), OpsPerSecond: r.OpsPerSecond,
		Handoffs: r.Handoffs, MaxRun: r.MaxRun, Fairness: r.Fairness, FairnessAt: r.FairnessAt,
		CPUNsPerOp: int64(r.CPUPerOp), Recoveries: r.Recoveries,
		Interrupted: r.Interrupted, Stalled: r.Stalled, Pinned: r.Pinned, Capped: r.Capped, Procs: []BankProc{},
		LastHolder: r.LastHolder, Unguarded: r.Unguarded,
	}
	if r.Trace != nil && r.Trace.Lost != nil {
		lu := r.Trace.Lost
		out.LostUpdate = &LostUpdateDoc{Text: LostUpdateText(lu, r.Workers), SameRead: lu.SameRead, Writes: lu.Writes,
			Overwritten: traceOpDoc(lu.Overwritten), By: traceOpDoc(lu.By)}
	}
	if h := r.Latency; h != nil && h.TotalCount() > 0 {
		out.AcquireNs = &Latencies{
			P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
			P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: h.Mean(), Count: h.TotalCount(),
		}
	}
	for _, p := range r.Procs {
		rec := p.Recovered
		if rec == nil {
			rec = []int{}
		}
		out.Procs = append(out.Procs, BankProc{
			Slot: p.Slot, Pid: p.Pid, Role: p.Role.String(), Ops: p.Ops, Deposits: p.Deposits,
			Withdrawals: p.Withdrawals, Handoffs: p.Handoffs, MaxRun: p.MaxRun, CPUNs: int64(p.CPU),
			Exit: p.Exit, Died: p.Died, RecoveredFrom: rec, PinnedTo: p.PinnedTo,
			Phase: p.Phase.String(), KilledByRun: p.KilledByRun, Stopped: p.Stopped,
		})
	}
	return out
}

func traceOpDoc(op coordinator.TraceOp) TraceOpDoc {
	return TraceOpDoc{Worker: op.Slot, Pid: op.Pid, Role: op.Role.String(),
		ReadBalance: op.ReadBalance, ReadVersion: op.ReadVersion, ReadNs: int64(op.Read),
		WroteBalance: op.WroteBalance, WroteVersion: op.WroteVersion, WroteNs: int64(op.Wrote)}
}

// BankJSON writes the JSON document, indented.
func BankJSON(w io.Writer, b Bank) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewBankDoc(b))
}

// bankCSVHeader is the header row of BankCSV, in column order (documented
// in the README; columns are only ever added at the end).
var bankCSVHeader = [...]string{
	"lock", "workers", "ops", "planned_ops", "duration_ns", "think_ns", "hold_ns", "amount",
	"initial_balance", "expected_balance", "final_balance", "lost_updates", "in_doubt", "consistent",
	"wall_ns", "ops_per_second", "acquire_p50_ns", "acquire_p99_ns", "acquire_max_ns",
	"handoffs", "max_run", "fairness", "cpu_ns_per_op", "recoveries", "workers_died", "interrupted", "stalled", "pinned", "capped",
}

// BankCSV writes a header and one row per run. Acquire columns are empty for
// the lock-free kinds.
func BankCSV(w io.Writer, b Bank) error {
	cw := csv.NewWriter(w)
	cw.Write(bankCSVHeader[:])
	for _, r := range b.Runs {
		run := bankRun(r)
		var p50, p99, pmax string
		if a := run.AcquireNs; a != nil {
			p50, p99, pmax = i64(a.P50), i64(a.P99), i64(a.Max)
		}
		died := 0
		for _, p := range run.Procs {
			if p.Died {
				died++
			}
		}
		cw.Write([]string{
			run.Lock, strconv.Itoa(run.Workers), i64(run.Ops), i64(run.PlannedOps), i64(run.DurationNs),
			i64(run.ThinkNs), i64(run.HoldNs), i64(run.Amount), i64(run.InitialBalance),
			i64(run.ExpectedBalance), i64(run.FinalBalance), i64(run.LostUpdates), i64(run.InDoubt),
			strconv.FormatBool(run.Consistent), i64(run.WallNs), strconv.FormatFloat(run.OpsPerSecond, 'f', 0, 64),
			p50, p99, pmax, i64(run.Handoffs), i64(run.MaxRun), strconv.FormatFloat(run.Fairness, 'f', 4, 64),
			i64(run.CPUNsPerOp), strconv.Itoa(run.Recoveries), strconv.Itoa(died),
			strconv.FormatBool(run.Interrupted), strconv.FormatBool(run.Stalled), strconv.FormatBool(run.Pinned),
			strconv.FormatBool(run.Capped),
		})
	}
	cw.Flush()
	return cw.Error()
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }
