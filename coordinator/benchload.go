package coordinator

import (
	"context"
	"syscall"
	"time"

	"mplock/machine"
)

// loadProbe measures what the rest of the machine did while one run went
// on: the CPUs busy on the whole machine (/proc/stat) less the CPU time of
// this process and its reaped children (the run's workers). A benchmark
// taken while something else kept a CPU busy is not the figure it seems,
// and on a 2-CPU machine one busy neighbour is enough to put both workers on
// one CPU.
type loadProbe struct {
	ok    bool
	start machine.CPUSample
	own   time.Duration
}

func startLoadProbe() loadProbe {
	s, err := machine.SampleCPU()
	if err != nil {
		return loadProbe{}
	}
	return loadProbe{ok: true, start: s, own: ownCPU()}
}

// stop returns the CPUs other processes kept busy on average, and the CPUs
// the hypervisor stole; false when the machine has no /proc/stat.
func (p loadProbe) stop() (background, steal float64, ok bool) {
	if !p.ok {
		return 0, 0, false
	}
	s, err := machine.SampleCPU()
	if err != nil {
		return 0, 0, false
	}
	a := s.Since(p.start)
	if a.Elapsed <= 0 {
		return 0, 0, false
	}
	mine := (ownCPU() - p.own).Seconds() / a.Elapsed.Seconds()
	return max(0, a.Busy-mine), a.Steal, true
}

// ownCPU is the user and system time of this process and of its children
// that were waited for.
func ownCPU() time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// QuietCPUs is the background load, in CPUs, under which the machine counts
// as quiet for BenchPlan.WaitQuiet.
const QuietCPUs = 0.25

// quietSample is how long waitQuiet watches the machine each time.
const quietSample = 250 * time.Millisecond

// waitQuiet waits, up to limit, for the rest of the machine to keep fewer
// than QuietCPUs busy, calling busy with each load it finds too high. It
// returns early when ctx ends or the machine has no /proc/stat.
func waitQuiet(ctx context.Context, limit time.Duration, busy func(cpus float64)) {
	deadline := time.Now().Add(limit)
	for {
		probe := startLoadProbe()
		if !probe.ok {
			return
		}
		t := time.NewTimer(quietSample)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		bg, _, ok := probe.stop()
		if !ok || bg < QuietCPUs || time.Now().After(deadline) {
			return
		}
		busy(bg)
	}
}
