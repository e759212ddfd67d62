package coordinator

import (
	"slices"
	"time"

	"mplock/dmutex"
	"mplock/shm"
)

// intervalCheck is what the interval log says about a run, computed without
// any knowledge of the algorithm.
type intervalCheck struct {
	violations int64
	inversions int64
	open       int
	waits      []int64   // all entries, ns
	procWaits  [][]int64 // per peer
	sync       []int64   // handoffs to a waiting process, ns
	// uncontended holds the waits of the entries whose request found
	// nobody inside or waiting, ns.
	uncontended []int64
	lastExit    int64
}

// checkIntervals sorts the log by entry time and counts: intervals that
// began before an earlier one ended (violations), entries out of
// timestamp order (inversions), and measures waits and handoffs. Intervals
// never closed count as open until end.
func checkIntervals(log []shm.MutexInterval, procs int, end int64) intervalCheck {
	ivs := slices.Clone(log)
	slices.SortStableFunc(ivs, func(a, b shm.MutexInterval) int {
		switch {
		case a.Entered < b.Entered:
			return -1
		case a.Entered > b.Entered:
			return 1
		}
		return 0
	})
	c := intervalCheck{procWaits: make([][]int64, procs)}
	stamps := make([]dmutex.Stamp, 0, len(ivs))
	var maxExit int64
	for i, iv := range ivs {
		exit := iv.Exited
		if exit == 0 {
			c.open++
			exit = end
		}
		if i > 0 && iv.Entered < maxExit {
			c.violations++
		}
		// A handoff: the previous process left while this one was waiting,
		// and nobody overlapped.
		if i > 0 {
			prev := ivs[i-1]
			if prev.Exited != 0 && iv.Requested < prev.Exited && iv.Entered >= prev.Exited && iv.Entered >= maxExit {
				c.sync = append(c.sync, iv.Entered-prev.Exited)
			}
		}
		maxExit = max(maxExit, exit)
		c.lastExit = max(c.lastExit, iv.Exited)
		w := iv.Entered - iv.Requested
		c.waits = append(c.waits, w)
		if int(iv.Proc) < procs {
			c.procWaits[iv.Proc] = append(c.procWaits[iv.Proc], w)
		}
		stamps = append(stamps, dmutex.Stamp{TS: iv.TS, ID: int(iv.Proc)})
	}
	c.inversions = dmutex.Inversions(stamps)
	c.uncontended = uncontendedWaits(ivs, end)
	return c
}

// uncontendedWaits returns the waits of the intervals whose request came
// while no other interval was between its request and its exit: nobody
// inside, nobody waiting. One sweep over the requests and exits in time
// order.
func uncontendedWaits(ivs []shm.MutexInterval, end int64) []int64 {
	type mark struct {
		at   int64
		exit bool
		i    int
	}
	marks := make([]mark, 0, 2*len(ivs))
	for i, iv := range ivs {
		exit := iv.Exited
		if exit == 0 {
			exit = end
		}
		marks = append(marks, mark{iv.Requested, false, i}, mark{exit, true, i})
	}
	// At equal times an exit comes first: a request at the very moment of
	// another's exit found the section free.
	slices.SortFunc(marks, func(a, b mark) int {
		if a.at != b.at {
			return cmpNs(a.at, b.at)
		}
		switch {
		case a.exit && !b.exit:
			return -1
		case !a.exit && b.exit:
			return 1
		}
		return 0
	})
	var out []int64
	active := 0
	for _, m := range marks {
		if m.exit {
			active--
			continue
		}
		if active == 0 {
			out = append(out, ivs[m.i].Entered-ivs[m.i].Requested)
		}
		active++
	}
	return out
}

// summarize returns the count, mean, median, 99th percentile and maximum of
// ns (sorted in place).
func summarize(ns []int64) Durations {
	if len(ns) == 0 {
		return Durations{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	n := len(ns)
	return Durations{
		Count: int64(n),
		Mean:  time.Duration(sum / float64(n)),
		P50:   time.Duration(ns[(n-1)/2]),
		P99:   time.Duration(ns[min(n-1, (n*99+99)/100-1)]),
		Max:   time.Duration(ns[n-1]),
	}
}
