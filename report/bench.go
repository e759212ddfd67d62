package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mplock/coordinator"
	"mplock/machine"
)

// Bench is the report of one `mplock bench` matrix. Result may hold fewer
// cells than the plan when the matrix was interrupted or a run failed.
type Bench struct {
	Machine machine.Info
	Result  *coordinator.BenchResult
}

// BenchText writes the human table: one row per cell, with the median rate
// and its spread over the repeats, acquire latency, how the lock changed
// hands, and the CPU it cost; then the machine and a legend.
func BenchText(w io.Writer, b Bench) error {
	res := b.Result
	plan := res.Plan
	fmt.Fprintf(w, "mplock bench: %s\n", plan.Describe())
	fmt.Fprintf(w, "Machine: %s\n\n", machineLine(b.Machine))
	if len(res.Cells) == 0 {
		fmt.Fprintln(w, "No run finished.")
		return benchTrailer(w, res)
	}
	holds, thinks := varies(plan.Holds), varies(plan.Thinks)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"KIND", "WORKERS"}
	if holds {
		head = append(head, "HOLD")
	}
	if thinks {
		head = append(head, "THINK")
	}
	head = append(head, "OPS/S", "±", "ACQUIRE p50", "p99", "max", "HANDOFFS/1k", "LONGEST RUN", "CPU/OP", "CPUs", "RUNS")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, c := range res.Cells {
		row := []string{c.Cell.Kind.String(), fmt.Sprint(c.Cell.Workers)}
		if holds {
			row = append(row, shortDur(c.Cell.Hold))
		}
		if thinks {
			row = append(row, shortDur(c.Cell.Think))
		}
		p50, p99, pmax := "-", "-", "-"
		if c.Latency != nil {
			p50, p99, pmax = dur(c.Percentile(50)), dur(c.Percentile(99)), dur(c.MaxLatency())
		}
		hand, run := "-", "-"
		if c.Cell.Kind.Excludes() && !c.Cell.Kind.LockFree() {
			hand, run = fmt.Sprintf("%.1f", c.HandoffsPer1k), count(c.MaxRun)
		}
		row = append(row, rate(c.OpsPerSecond.Median), fmt.Sprintf("%.0f%%", 100*c.OpsPerSecond.Spread()),
			p50, p99, pmax, hand, run, dur(c.CPUPerOp), fmt.Sprintf("%.2f", c.CPUs), fmt.Sprint(len(c.Runs)))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, line := range benchLegend {
		fmt.Fprintln(w, line)
	}
	if line := backgroundLine(res); line != "" {
		fmt.Fprintln(w, line)
	}
	if lost := lostCells(res); lost != "" {
		fmt.Fprintf(w, "Without a lock (%s), updates were lost as expected: those rates are the race's, not a lock's.\n", lost)
	}
	if v := BenchVerdict(b); len(v) > 0 {
		fmt.Fprintln(w)
		for _, line := range v {
			fmt.Fprintln(w, line)
		}
	}
	return benchTrailer(w, res)
}

var benchLegend = []string{
	"OPS/S is the median over the repeats of operations per second, all workers together; ± is the",
	"largest distance of a repeat from it. ACQUIRE is the time to take the lock, over all runs.",
	"HANDOFFS/1k counts acquisitions per 1,000 that changed the holder, LONGEST RUN the most",
	"acquisitions in a row by one worker: a lock can be fast because it is unfair. CPUs is CPU time",
	"over wall time: two busy workers near 1.0 were sharing one CPU, taking turns instead of contending.",
}

func benchTrailer(w io.Writer, res *coordinator.BenchResult) error {
	if res.Interrupted {
		_, err := fmt.Fprintf(w, "Interrupted after %d of %d measured runs (%v): the rows above are what finished.\n",
			res.Runs(), len(res.Plan.Cells())*res.Plan.Repeat, res.Elapsed.Round(time.Millisecond))
		return err
	}
	return nil
}

// busyNeighbour is the background load, in CPUs, above which a report warns
// that the figures measure the neighbour as well as the lock.
const busyNeighbour = 0.25

// backgroundLine says how busy the rest of the machine was; a warning when
// it was busy enough to matter.
func backgroundLine(res *coordinator.BenchResult) string {
	known, worst := false, (*coordinator.BenchCellResult)(nil)
	for _, c := range res.Cells {
		if len(c.Background) == 0 {
			continue
		}
		known = true
		if worst == nil || c.BackgroundCPUs > worst.BackgroundCPUs {
			worst = c
		}
	}
	if !known {
		return ""
	}
	if worst.BackgroundCPUs < busyNeighbour {
		return fmt.Sprintf("Other processes kept at most %.2f CPUs busy during the runs (median per cell): the machine was quiet.", worst.BackgroundCPUs)
	}
	return fmt.Sprintf("WARNING: other processes kept up to %.2f CPUs busy during the runs (median, in %s): these figures measure them too. Rerun on a quiet machine.",
		worst.BackgroundCPUs, worst.Cell)
}

// machineLine is machine.Info's line plus what matters most for lock
// hand-offs: whether this is a VM, how idle CPUs sleep, and mplock's version.
func machineLine(m machine.Info) string {
	s := m.String()
	if m.IdleDriver != "" {
		s += " (driver " + m.IdleDriver + ")"
	}
	if m.Hypervisor != "" {
		s += ", virtual machine (" + m.Hypervisor + ")"
	}
	return s + "; mplock " + m.Version
}

func lostCells(res *coordinator.BenchResult) string {
	var names []string
	for _, c := range res.Cells {
		if c.LostUpdates > 0 {
			names = append(names, fmt.Sprintf("%d workers: %s lost", c.Cell.Workers, count(c.LostUpdates)))
		}
	}
	return strings.Join(names, "; ")
}

// varies reports whether a dimension is worth a column: more than one value,
// or one that is not zero.
func varies(ds []time.Duration) bool {
	return len(ds) > 1 || (len(ds) == 1 && ds[0] != 0)
}

func shortDur(d time.Duration) string { return coordinator.ShortDuration(d) }
