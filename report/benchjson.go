package report

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"mplock/coordinator"
	"mplock/machine"
)

// BenchDoc is the JSON document of `mplock bench --json`: the machine, the
// plan, and one entry per finished cell with its summary and every measured
// run in full. Times are in nanoseconds, rates per second.
type BenchDoc struct {
	Machine     machine.Info   `json:"machine"`
	Plan        BenchPlanDoc   `json:"plan"`
	Started     time.Time      `json:"started"`
	ElapsedNs   int64          `json:"elapsed_ns"`
	Interrupted bool           `json:"interrupted"`
	Cells       []BenchCellDoc `json:"cells"`
	// Verdict is BenchVerdict: what the matrix found, in plain language.
	Verdict []string `json:"verdict"`
}

// BenchPlanDoc is the matrix as it ran, defaults filled in.
type BenchPlanDoc struct {
	Kinds        []string `json:"kinds"`
	Workers      []int    `json:"workers"`
	HoldNs       []int64  `json:"hold_ns"`
	ThinkNs      []int64  `json:"think_ns"`
	DurationNs   int64    `json:"duration_ns"`    // per run; 0 with ops_per_worker
	OpsPerWorker int64    `json:"ops_per_worker"` // per run; 0 with duration_ns
	Repeat       int      `json:"repeat"`
	Warmup       int      `json:"warmup"`
	Latency      bool     `json:"latency_recorded"`
}

// BenchCellDoc is one cell: its coordinates, the summary over its repeats,
// and the runs.
type BenchCellDoc struct {
	Name          string     `json:"name"` // kind=sem/workers=2/hold=0, as in the gobench lines
	Lock          string     `json:"lock"`
	Workers       int        `json:"workers"`
	HoldNs        int64      `json:"hold_ns"`
	ThinkNs       int64      `json:"think_ns"`
	OpsPerSecond  StatDoc    `json:"ops_per_second"`
	AcquireNs     *Latencies `json:"acquire_ns"` // null for lock-free kinds or without latency
	HandoffsPer1k float64    `json:"handoffs_per_1k_ops"`
	MaxRun        int64      `json:"max_run"`
	CPUNsPerOp    int64      `json:"cpu_ns_per_op"`
	CPUsBusy      float64    `json:"cpus_busy"`
	Fairness      float64    `json:"fairness"`
	LostUpdates   int64      `json:"lost_updates"`
	// BackgroundCPUs is the median over the runs of the CPUs other
	// processes kept busy during each run, StealCPUs of the CPUs the
	// hypervisor took; the per-run values follow, in the order of runs
	// (empty where /proc/stat cannot be read).
	BackgroundCPUs     float64   `json:"background_cpus"`
	StealCPUs          float64   `json:"steal_cpus"`
	RunsBackgroundCPUs []float64 `json:"runs_background_cpus"`
	Runs               []BankRun `json:"runs"`
}

// StatDoc is a figure over a cell's repeats. Spread is the largest distance
// of a repeat from the median, as a fraction of the median.
type StatDoc struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Spread float64 `json:"spread"`
}

// NewBenchDoc converts a matrix result to its JSON document.
func NewBenchDoc(b Bench) BenchDoc {
	res, p := b.Result, b.Result.Plan
	doc := BenchDoc{
		Machine: b.Machine, Started: res.Started, ElapsedNs: int64(res.Elapsed), Interrupted: res.Interrupted,
		Plan: BenchPlanDoc{
			Workers: p.Workers, DurationNs: int64(p.Duration), OpsPerWorker: p.Ops,
			Repeat: p.Repeat, Warmup: p.Warmup, Latency: !p.NoLatency,
			HoldNs: nanos(p.Holds), ThinkNs: nanos(p.Thinks),
		},
		Cells:   []BenchCellDoc{},
		Verdict: BenchVerdict(b),
	}
	if doc.Verdict == nil {
		doc.Verdict = []string{}
	}
	for _, k := range p.Kinds {
		doc.Plan.Kinds = append(doc.Plan.Kinds, k.String())
	}
	for _, c := range res.Cells {
		doc.Cells = append(doc.Cells, benchCell(c))
	}
	return doc
}

func benchCell(c *coordinator.BenchCellResult) BenchCellDoc {
	out := BenchCellDoc{
		Name: c.Cell.String(), Lock: c.Cell.Kind.String(), Workers: c.Cell.Workers,
		HoldNs: int64(c.Cell.Hold), ThinkNs: int64(c.Cell.Think),
		OpsPerSecond: StatDoc{
			Median: c.OpsPerSecond.Median, Min: c.OpsPerSecond.Min, Max: c.OpsPerSecond.Max,
			Spread: c.OpsPerSecond.Spread(),
		},
		HandoffsPer1k: c.HandoffsPer1k, MaxRun: c.MaxRun, CPUNsPerOp: int64(c.CPUPerOp),
		CPUsBusy: c.CPUs, Fairness: c.Fairness, LostUpdates: c.LostUpdates,
		BackgroundCPUs: c.BackgroundCPUs, StealCPUs: c.StealCPUs,
		RunsBackgroundCPUs: append([]float64{}, c.Background...), Runs: []BankRun{},
	}
	if h := c.Latency; h != nil && h.TotalCount() > 0 {
		out.AcquireNs = &Latencies{
			P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
			P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: h.Mean(), Count: h.TotalCount(),
		}
	}
	for _, r := range c.Runs {
		out.Runs = append(out.Runs, bankRun(r))
	}
	return out
}

func nanos(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = int64(d)
	}
	return out
}

// BenchJSON writes the JSON document, indented.
func BenchJSON(w io.Writer, b Bench) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewBenchDoc(b))
}

// BenchCSVHeader is the header row of BenchCSV, in column order; the
// columns are documented in BENCHMARKS.md. Each row is one cell; the machine
// columns repeat on every row, so CSV files from several machines can be
// concatenated and still be told apart.
var BenchCSVHeader = []string{
	"name", "lock", "workers", "hold_ns", "think_ns", "duration_ns", "ops_per_worker", "repeats",
	"ops_per_second", "ops_per_second_min", "ops_per_second_max", "spread",
	"acquire_p50_ns", "acquire_p99_ns", "acquire_max_ns",
	"handoffs_per_1k_ops", "max_run", "cpu_ns_per_op", "cpus_busy", "fairness", "lost_updates",
	"background_cpus", "steal_cpus", "latency_recorded", "cpu_model", "cpus", "gomaxprocs", "kernel", "cpuidle_governor", "mplock_version",
}

// BenchCSV writes a header and one row per finished cell. The acquire
// columns are empty for the lock-free kinds and without latency recording.
func BenchCSV(w io.Writer, b Bench) error {
	doc := NewBenchDoc(b)
	m := doc.Machine
	cw := csv.NewWriter(w)
	cw.Write(BenchCSVHeader)
	for _, c := range doc.Cells {
		var p50, p99, pmax string
		if a := c.AcquireNs; a != nil {
			p50, p99, pmax = i64(a.P50), i64(a.P99), i64(a.Max)
		}
		cw.Write([]string{
			c.Name, c.Lock, strconv.Itoa(c.Workers), i64(c.HoldNs), i64(c.ThinkNs),
			i64(doc.Plan.DurationNs), i64(doc.Plan.OpsPerWorker), strconv.Itoa(len(c.Runs)),
			f0(c.OpsPerSecond.Median), f0(c.OpsPerSecond.Min), f0(c.OpsPerSecond.Max),
			strconv.FormatFloat(c.OpsPerSecond.Spread, 'f', 4, 64),
			p50, p99, pmax,
			strconv.FormatFloat(c.HandoffsPer1k, 'f', 2, 64), i64(c.MaxRun), i64(c.CPUNsPerOp),
			strconv.FormatFloat(c.CPUsBusy, 'f', 3, 64), strconv.FormatFloat(c.Fairness, 'f', 4, 64),
			i64(c.LostUpdates), strconv.FormatFloat(c.BackgroundCPUs, 'f', 3, 64),
			strconv.FormatFloat(c.StealCPUs, 'f', 3, 64), strconv.FormatBool(doc.Plan.Latency),
			m.CPUModel, strconv.Itoa(m.CPUs), strconv.Itoa(m.GOMAXPROCS), m.Kernel, m.Governor, m.Version,
		})
	}
	cw.Flush()
	return cw.Error()
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
