package coordinator

import (
	"math"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"mplock/worker"
)

// BenchResult is what a matrix run found out: one entry per cell that
// finished at least one measured run, in the plan's cell order.
type BenchResult struct {
	Plan        BenchPlan // as validated: defaults filled in
	Cells       []*BenchCellResult
	Started     time.Time
	Elapsed     time.Duration
	Interrupted bool // stopped early by Ctrl-C or SIGTERM
}

// BackgroundCPUs is the highest median background load of any cell: the CPUs
// other processes kept busy while the matrix ran.
func (r *BenchResult) BackgroundCPUs() float64 {
	var m float64
	for _, c := range r.Cells {
		m = max(m, c.BackgroundCPUs)
	}
	return m
}

// Runs counts the measured runs that finished.
func (r *BenchResult) Runs() int {
	n := 0
	for _, c := range r.Cells {
		n += len(c.Runs)
	}
	return n
}

// BenchCellResult is one cell: its measured runs and their summary.
type BenchCellResult struct {
	Cell BenchCell
	Runs []*BankResult

	// OpsPerSecond over the runs: median, lowest and highest.
	OpsPerSecond Stat
	// Latency merges the runs' acquire-latency histograms; nil for the
	// lock-free kinds and when latency was not recorded.
	Latency *hdrhistogram.Histogram
	// HandoffsPer1k is the median number of acquisitions, per 1,000
	// operations, that changed the holder; MaxRun is the longest streak of
	// acquisitions by one worker in any run. Together they show what
	// operation counts hide: a lock that lets its holder take it again and
	// again is fast and unfair.
	HandoffsPer1k float64
	MaxRun        int64
	// CPUPerOp is the median CPU time (user and system, all workers) per
	// operation; CPUs the median CPU time over wall time: about the number
	// of CPUs the workers kept busy. Two spinning workers that share one
	// CPU show 1, not 2.
	CPUPerOp time.Duration
	CPUs     float64
	Fairness float64 // median Jain's index over workers' operations
	// LostUpdates sums the runs' lost updates: 0 for every kind but none.
	LostUpdates int64

	// Background holds, per run, the CPUs that other processes kept busy
	// on average during it, and Steal the CPUs the hypervisor took; both
	// empty where /proc/stat cannot be read. A run with a busy neighbour
	// is slower, or faster (two workers squeezed onto one CPU stop
	// contending), than the lock alone would make it.
	Background, Steal []float64
	// BackgroundCPUs and StealCPUs are their medians.
	BackgroundCPUs, StealCPUs float64
}

// Stat summarises one figure over a cell's repeats.
type Stat struct {
	Median, Min, Max float64
}

// Spread is the larger distance from the median to the lowest or highest
// value, as a fraction of the median: 0.05 means every repeat was within 5%.
func (s Stat) Spread() float64 {
	if s.Median == 0 {
		return 0
	}
	return max(s.Max-s.Median, s.Median-s.Min) / s.Median
}

// Percentile returns the merged acquire-latency percentile q (0-100), 0 when
// none was recorded.
func (c *BenchCellResult) Percentile(q float64) time.Duration {
	if c.Latency == nil || c.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(c.Latency.ValueAtQuantile(q))
}

// MaxLatency returns the longest acquisition in any run.
func (c *BenchCellResult) MaxLatency() time.Duration {
	if c.Latency == nil || c.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(c.Latency.Max())
}

// Summarize computes the summary fields from Runs, Background and Steal.
// RunBench calls it; it is exported for code that builds results itself
// (tests of reports, merged matrices).
func (c *BenchCellResult) Summarize() {
	var ops, hand, cpuOp, cpus, fair []float64
	c.Latency, c.MaxRun, c.LostUpdates = nil, 0, 0
	for _, r := range c.Runs {
		ops = append(ops, r.OpsPerSecond)
		if r.Ops > 0 {
			hand = append(hand, 1000*float64(r.Handoffs)/float64(r.Ops))
		}
		cpuOp = append(cpuOp, float64(r.CPUPerOp))
		cpus = append(cpus, CPUsBusy(r))
		fair = append(fair, r.Fairness)
		c.MaxRun = max(c.MaxRun, r.MaxRun)
		c.LostUpdates += r.LostUpdates
		if r.Latency != nil {
			if c.Latency == nil {
				c.Latency = worker.NewLatencyHistogram()
			}
			c.Latency.Merge(r.Latency)
		}
	}
	c.OpsPerSecond = Stat{Median: median(ops), Min: slices.Min(ops), Max: slices.Max(ops)}
	c.HandoffsPer1k = median(hand)
	c.CPUPerOp = time.Duration(math.Round(median(cpuOp)))
	c.CPUs = median(cpus)
	c.Fairness = median(fair)
	c.BackgroundCPUs, c.StealCPUs = median(c.Background), median(c.Steal)
}

// CPUsBusy is a run's CPU time, all workers, over its wall time: about how
// many CPUs the workers kept busy.
func CPUsBusy(r *BankResult) float64 {
	if r.Wall <= 0 {
		return 0
	}
	var cpu time.Duration
	for _, p := range r.Procs {
		cpu += p.CPU
	}
	return cpu.Seconds() / r.Wall.Seconds()
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
