package worker

import (
	"time"
	_ "unsafe" // for go:linkname

	"mplock/shm"
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

// hold waits for d inside an operation, as pause does, and returns its first
// and last clock reads, which bracket the operation's window between its
// read and its write (the trace's times, at no extra cost). A long hold
// waits on the stop word instead of sleeping: a stop (the deadline, Ctrl-C)
// ends it at once, and stopped says so.
func hold(ctl *shm.Control, d time.Duration) (first, last int64, stopped bool) {
	first = nanotime()
	if d >= spinBelow {
		s, _ := waitStop(ctl, d)
		return first, nanotime(), s
	}
	end := first + int64(d)
	last = first
	for last < end {
		last = nanotime()
	}
	return first, last, false
}

// waitStop waits up to d for the stop word, and reports whether the stop
// came. A futex wait can end early (a signal, a spurious wake): it waits
// again for what is left.
func waitStop(ctl *shm.Control, d time.Duration) (stopped bool, err error) {
	end := nanotime() + int64(d)
	for {
		if ctl.Stop.Load() != 0 {
			return true, nil
		}
		left := time.Duration(end - nanotime())
		if left <= 0 {
			return false, nil
		}
		if err := shm.Wait(&ctl.Stop, 0, left); err != nil && err != shm.ErrTimeout {
			return false, err
		}
	}
}
