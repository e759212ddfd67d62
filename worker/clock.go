package worker

import (
	"time"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock (CLOCK_MONOTONIC through the
// vDSO): one clock read, where time.Now makes two (wall and monotonic). The
// runtime keeps this name linkable on purpose ("widely used packages access
// it using linkname"). CLOCK_MONOTONIC is shared by every process on the
// machine, so the coordinator can compare the times its workers report.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now returns the monotonic clock in nanoseconds, comparable across processes.
func Now() int64 { return nanotime() }

// spinBelow is the longest think or hold time spent spinning on the clock;
// longer ones sleep. Spinning is exact to tens of nanoseconds but occupies a
// CPU; a sleep frees the CPU but wakes up tens of microseconds late.
const spinBelow = 20 * time.Microsecond

// pause waits for d, spinning on the clock below spinBelow and sleeping above.
func pause(d time.Duration) {
	if d >= spinBelow {
		time.Sleep(d)
		return
	}
	end := nanotime() + int64(d)
	for nanotime() < end {
	}
}
