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
	Runs    []BankRun    `json:"runs"`
	Verdict []string     `json:"verdict"`
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
	Procs           []BankProc `json:"procs"`
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
}

// NewBankDoc converts results to the JSON document.
func NewBankDoc(b Bank) BankDoc {
	doc := BankDoc{Machine: b.Machine, Runs: []BankRun{}, Verdict: Verdict(b.Runs)}
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
		})
	}
	return out
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
