package worker

import (
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ticks is the clock acquire latencies are measured with: the CPU's time
// stamp counter where the kernel itself trusts it, the monotonic clock
// otherwise.
//
// A clock read on the acquiring side happens while the lock is held (the
// time the wait ended), so its cost lengthens every critical section being
// measured. On the development VM runtime.nanotime costs 46ns and RDTSC 21ns.
// The kernel uses the TSC as its clocksource only when it is constant and
// synchronised across CPUs, which is what makes raw readings comparable;
// ticks are converted to nanoseconds at the end, against the monotonic clock
// over the whole run.
type ticks struct {
	tsc    bool
	tick0  int64
	nanos0 int64
}

// newTicks starts a tick clock and its calibration.
func newTicks() *ticks {
	t := &ticks{tsc: haveTSC && kernelUsesTSC()}
	t.tick0, t.nanos0 = t.now(), nanotime()
	return t
}

// now returns the current tick.
func (t *ticks) now() int64 {
	if t.tsc {
		return int64(rdtsc())
	}
	return nanotime()
}

// nanosPerTick calibrates the ticks counted since newTicks.
func (t *ticks) nanosPerTick() float64 {
	if !t.tsc {
		return 1
	}
	dt, dn := t.now()-t.tick0, nanotime()-t.nanos0
	if dt <= 0 || dn <= 0 {
		return 1
	}
	return float64(dn) / float64(dt)
}

// toNanos returns a histogram of h's values (in ticks) in nanoseconds.
func (t *ticks) toNanos(h *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	return scaleHistogram(h, t.nanosPerTick())
}

// scaleHistogram returns a latency histogram of h's values multiplied by
// scale, each bucket's count kept: the precision of both is 3 digits.
func scaleHistogram(h *hdrhistogram.Histogram, scale float64) *hdrhistogram.Histogram {
	out := NewLatencyHistogram()
	for _, bar := range h.Distribution() {
		if bar.Count > 0 {
			mid := float64(bar.From+bar.To) / 2
			_ = out.RecordValues(max(int64(mid*scale), 1), bar.Count)
		}
	}
	return out
}

func kernelUsesTSC() bool {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	return err == nil && strings.TrimSpace(string(b)) == "tsc"
}

// Clock describes the clock acquire latencies are measured with, as
// measured on this machine by MeasureClock.
type Clock struct {
	Source string // "tsc" (the CPU's time stamp counter) or "monotonic" (CLOCK_MONOTONIC)
	// Step is the smallest non-zero difference between two successive
	// reads: the finest step the clock shows here.
	Step time.Duration
	// ReadCost is what one read costs: the median difference between two
	// successive reads (the mean, for a clock too coarse to move between
	// most of them).
	ReadCost time.Duration
	// Resolution is the shortest interval a measurement, a read before and
	// a read after, tells apart from nothing: the larger of Step and
	// ReadCost. A time measured below it says only that the operation took
	// less.
	Resolution time.Duration
}

// MeasureClock measures the clock latencies are measured with (newTicks)
// over successive reads in a tight loop, a few milliseconds in all.
func MeasureClock() Clock {
	const n = 100_000
	t := newTicks()
	deltas := make([]int64, n)
	start := t.now()
	prev := start
	for i := range deltas {
		now := t.now()
		deltas[i] = now - prev
		prev = now
	}
	total := prev - start
	// Calibrate over at least 2ms, as the latencies are at the end of a run.
	for end := nanotime() + 2e6; nanotime() < end; {
	}
	scale := t.nanosPerTick()
	ns := func(ticks float64) time.Duration { return time.Duration(math.Ceil(ticks * scale)) }
	slices.Sort(deltas)
	c := Clock{Source: "monotonic", ReadCost: ns(float64(deltas[n/2]))}
	if i, _ := slices.BinarySearch(deltas, 1); i < len(deltas) {
		c.Step = ns(float64(deltas[i]))
	}
	if c.ReadCost == 0 {
		c.ReadCost = ns(float64(total) / n)
	}
	c.Resolution = max(c.Step, c.ReadCost)
	if t.tsc {
		c.Source = "tsc"
	}
	return c
}
