package report

import (
	"fmt"
	"slices"
	"strings"

	"mplock/coordinator"
	"mplock/lock"
)

// BenchVerdict says in plain language what the matrix found: which lock was
// fastest and why, what the lock-free bound was, and in which of the two
// regimes the workers ran (side by side on their own CPUs, contending, or
// taking turns on one), which decides what the figures mean. It is printed
// after the table and is in the JSON document.
func BenchVerdict(b Bench) []string {
	res := b.Result
	var lines []string
	byWorkers := map[int][]*coordinator.BenchCellResult{}
	var counts []int
	for _, c := range res.Cells {
		if _, ok := byWorkers[c.Cell.Workers]; !ok {
			counts = append(counts, c.Cell.Workers)
		}
		byWorkers[c.Cell.Workers] = append(byWorkers[c.Cell.Workers], c)
	}
	slices.Sort(counts)

	// The fastest lock at each worker count, over its hold and think times.
	type best struct {
		kind lock.Kind
		cell *coordinator.BenchCellResult
	}
	fastest := map[int]best{}
	var slowest *coordinator.BenchCellResult
	for _, w := range counts {
		for _, c := range byWorkers[w] {
			if !isLock(c.Cell.Kind) {
				continue
			}
			if f, ok := fastest[w]; !ok || c.OpsPerSecond.Median > f.cell.OpsPerSecond.Median {
				fastest[w] = best{c.Cell.Kind, c}
			}
			if slowest == nil || c.OpsPerSecond.Median < slowest.OpsPerSecond.Median {
				slowest = c
			}
		}
	}
	if len(fastest) == 0 {
		return nil
	}
	var parts []string
	same := true
	first := fastest[counts[0]].kind
	for _, w := range counts {
		f, ok := fastest[w]
		if !ok {
			continue
		}
		same = same && f.kind == first
		parts = append(parts, fmt.Sprintf("%s with %s (%s ops/s)", f.kind, workersText(w), rate(f.cell.OpsPerSecond.Median)))
	}
	if same {
		var at []string
		for _, w := range counts {
			if f, ok := fastest[w]; ok {
				at = append(at, fmt.Sprintf("%s ops/s with %s", rate(f.cell.OpsPerSecond.Median), workersText(w)))
			}
		}
		lines = append(lines, fmt.Sprintf("Fastest lock: %s, at every worker count (%s).", first, strings.Join(at, ", ")))
	} else {
		lines = append(lines, "Fastest lock: "+strings.Join(parts, "; ")+".")
	}
	top := fastest[counts[len(counts)-1]]
	lines = append(lines, "Why: "+whyFast(top.kind, top.cell))
	if slowest != nil && slowest.Cell.Kind != top.kind && slowest.OpsPerSecond.Median > 0 {
		lines = append(lines, fmt.Sprintf("Slowest: %s with %s, %s ops/s, %.0fx slower than %s there: %s",
			slowest.Cell.Kind, workersText(slowest.Cell.Workers), rate(slowest.OpsPerSecond.Median),
			fastestAt(fastest[slowest.Cell.Workers].cell, slowest), fastest[slowest.Cell.Workers].kind, whySlow(slowest.Cell.Kind)))
	}
	for _, c := range res.Cells {
		if c.Cell.Kind == lock.Atomic && c.Cell.Workers == counts[len(counts)-1] {
			lines = append(lines, fmt.Sprintf("The bound: atomic, one atomic add and no lock at all, did %s ops/s with %s.",
				rate(c.OpsPerSecond.Median), workersText(c.Cell.Workers)))
			break
		}
	}
	if line := regimeLine(res, b.Machine.CPUs); line != "" {
		lines = append(lines, line)
	}
	return lines
}

func isLock(k lock.Kind) bool { return k.Excludes() && !k.LockFree() }

func workersText(n int) string {
	if n == 1 {
		return "1 worker"
	}
	return fmt.Sprintf("%d workers", n)
}

func fastestAt(f, c *coordinator.BenchCellResult) float64 {
	if f == nil || c.OpsPerSecond.Median == 0 {
		return 1
	}
	return f.OpsPerSecond.Median / c.OpsPerSecond.Median
}

// whyFast says why a kind is fast, with this cell's own figures.
func whyFast(k lock.Kind, c *coordinator.BenchCellResult) string {
	unfair := ""
	if c.Cell.Workers > 1 && c.MaxRun > 1000 {
		unfair = fmt.Sprintf(" It is also fast because it is unfair: only %.1f acquisitions in 1,000 changed hands, and one worker took it %s times in a row, so the lock's memory seldom moved between CPUs.",
			c.HandoffsPer1k, count(c.MaxRun))
	}
	switch k {
	case lock.Spin:
		return "spin takes a free lock with one compare-and-swap on a word in the shared memory, and a waiter spins (then yields) instead of sleeping: no system call at all." + unfair
	case lock.Sem:
		return "sem takes a free lock with one compare-and-swap on a word in the shared memory, and asks the kernel (futex) only to sleep when it must wait and to wake a waiter: no system call while it is free." + unfair
	case lock.Flock, lock.Fcntl:
		return fmt.Sprintf("%s is a system call for every acquisition and release, and the kernel's file lock table; here that still beat the others.", k) + unfair
	case lock.SysV:
		return "sysv is a semop system call for every acquisition and release; here that still beat the others." + unfair
	}
	return ""
}

// whySlow says what a slow kind pays for.
func whySlow(k lock.Kind) string {
	switch k {
	case lock.Flock, lock.Fcntl:
		return "a system call into the kernel's file lock table for every acquisition and every release, even with no one else waiting."
	case lock.SysV:
		return "a semop system call for every acquisition and every release, even with no one else waiting."
	case lock.Spin:
		return "a waiter spins, burning the CPU its holder may need: with more workers than CPUs, the holder waits for a time slice."
	case lock.Sem:
		return "each handoff to a sleeping waiter takes a futex wake and a trip through the scheduler."
	}
	return ""
}

// regimeLine says whether the contended cells' workers ran side by side on
// CPUs of their own, or took turns on one: CPUs (CPU time over wall time)
// against what they could have used.
func regimeLine(res *coordinator.BenchResult, cpus int) string {
	var turns []float64
	side := 0
	for _, c := range res.Cells {
		if c.Cell.Workers < 2 || c.Cell.Kind == lock.None {
			continue
		}
		could := float64(min(c.Cell.Workers, max(cpus, 1)))
		if c.CPUs < 0.75*could {
			turns = append(turns, c.CPUs)
		} else {
			side++
		}
	}
	busy := ""
	if len(turns) > 0 {
		lo, hi := slices.Min(turns), slices.Max(turns)
		busy = fmt.Sprintf("%.2f", lo)
		if hi-lo >= 0.005 {
			busy += fmt.Sprintf(" to %.2f", hi)
		}
	}
	switch {
	case len(turns) == 0 && side == 0:
		return "With one worker per run, no lock was contended: these are the costs of taking and releasing a free lock."
	case len(turns) == 0:
		return fmt.Sprintf("Regime: in every run with 2 or more workers, they kept about as many CPUs busy as they could use (up to %d): they ran side by side and contended for the lock, each handoff moving it between CPUs.", cpus)
	case side == 0:
		return fmt.Sprintf("Regime: in every run with 2 or more workers, they kept fewer CPUs busy than they could use (%s of up to %d): they mostly took turns on one CPU, so a worker often found the lock free because its holder was not running, and these figures say less about contention than about the scheduler. --pin binds each worker to its own CPU.",
			busy, cpus)
	}
	return fmt.Sprintf("Regime: %d of the cells with 2 or more workers took turns on one CPU rather than contending side by side (CPUs busy: %s, of up to %d); their figures say more about the scheduler than about the lock. --pin binds each worker to its own CPU.",
		len(turns), busy, cpus)
}
