package main

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// initDeadline is the init's own clock on mplock run's lease. mplock run
// keeps the lease's deadline (lockd's Lease.Deadline) and stops the command
// before it; but a stopped mplock run acts on nothing, and its command, a
// process of its own, runs on. So mplock run tells the init the deadline
// before the command starts and whenever it moves ("deadline D G"), and the
// init, which a SIGSTOP of mplock run alone does not stop, acts on it
// alone: SIGTERM (then SIGCONT, so that a stopped process acts on it) to
// every process of the command at D-G, SIGKILL at D, D being the latest
// deadline it was told. A later deadline that comes after the SIGTERM
// moves only the SIGKILL: the SIGTERM is sent once. "stop K" is mplock
// run's own decision that the lock is ending (it was lost, or the command
// exited leaving processes behind): SIGTERM now unless sent already, and
// SIGKILL at K at the latest, whatever deadline comes later. After its
// SIGKILL the init kills every process of the command until none is left,
// and reports what it killed; it reports its SIGTERM too, so that mplock
// run, when it can act again, says what happened.
//
// Only stopping mplock run and the init both (SIGSTOP to each, a frozen
// cgroup, a paused VM, a suspended host, on whose resumption CLOCK_MONOTONIC
// has not moved) keeps the command running past the deadline.
type initDeadline struct {
	it   *initProc     // set before run starts
	kick chan struct{} // the times below changed: run replans

	mu       sync.Mutex
	deadline time.Duration // CLOCK_MONOTONIC; 0: none known (a lock without a deadline)
	grace    time.Duration
	killBy   time.Duration // from stop; 0: none
	termed   bool          // SIGTERM sent for the lock's end
	killed   bool          // SIGKILL sent on this clock
}

// set records the latest deadline and grace (a "deadline" line).
func (d *initDeadline) set(deadline, grace int64) {
	d.mu.Lock()
	d.deadline, d.grace = time.Duration(deadline), time.Duration(grace)
	d.mu.Unlock()
	d.poke()
}

// stop is a "stop K" line: SIGTERM now, unless already sent, and SIGKILL
// at K at the latest.
func (d *initDeadline) stop(killBy int64) {
	d.mu.Lock()
	first := !d.termed
	d.termed = true
	if k := time.Duration(killBy); d.killBy == 0 || k < d.killBy {
		d.killBy = k
	}
	d.mu.Unlock()
	if first {
		d.it.signalAll(unix.SIGTERM)
	}
	d.poke()
}

// termPassed reports whether the moment for SIGTERM has come already.
func (d *initDeadline) termPassed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadline > 0 && monotonicNow() >= d.deadline-d.grace
}

func (d *initDeadline) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// run acts on the clock for as long as the command runs: it returns once
// it has killed the command, or never (the init exits under it).
func (d *initDeadline) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := monotonicNow()
		term, kill, next := d.due(now)
		if term {
			// The report first: mplock run must read it before the
			// reaper's "empty", which may follow the signal at once.
			d.it.reportSoon(repExpiring)
			d.it.signalAll(unix.SIGTERM)
		}
		if kill {
			d.it.killOnClock()
			return
		}
		if next == 0 {
			<-d.kick
			continue
		}
		// Go's timers run on CLOCK_MONOTONIC too; due checks again in
		// any case.
		t.Reset(next - now)
		select {
		case <-d.kick:
		case <-t.C:
		}
	}
}

// due says what is to be done at now, marks it done, and returns when the
// next thing is due (0: nothing until the times change).
func (d *initDeadline) due(now time.Duration) (term, kill bool, next time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deadline > 0 && !d.termed {
		if at := d.deadline - d.grace; now >= at {
			term, d.termed = true, true
		} else {
			next = at
		}
	}
	killAt := d.deadline
	if d.killBy > 0 && (killAt == 0 || d.killBy < killAt) {
		killAt = d.killBy
	}
	if killAt > 0 && !d.killed {
		if now >= killAt {
			kill, d.killed = true, true
		} else if next == 0 || killAt < next {
			next = killAt
		}
	}
	return term, kill, next
}

// maxKilledReport bounds the list of processes in a "killed" report, so
// that the line stays far below what mplock run reads in one line.
const maxKilledReport = 2000

// killOnClock reports the processes of the command, sends SIGKILL to them,
// and goes on until none is left (whatever they fork meanwhile). The
// report goes first, so that mplock run reads it before the reaper's
// "empty".
func (it *initProc) killOnClock() {
	left := processTree(selfPid())
	if len(left) == 0 {
		return
	}
	// One line: a command line may hold newlines.
	text := strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, describeProcs(left))
	if len(text) > maxKilledReport {
		text = text[:maxKilledReport-3] + "..."
	}
	it.reportSoon(fmt.Sprintf("%s %d %s", repKilled, len(left), text))
	it.killUntilEmpty() // its first round is the SIGKILL reported
}

// reportWait bounds how long the init's clock waits for room in the report
// pipe before it acts.
const reportWait = 50 * time.Millisecond

// reportSoon reports line, but lets the caller go on after reportWait even
// if the pipe is full: the init's clock must not wait for a stopped mplock
// run to read. The line is still written when there is room; only then
// may a report made meanwhile (the reaper's) come before it.
func (it *initProc) reportSoon(line string) {
	done := make(chan struct{})
	go func() {
		it.report(line)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(reportWait):
	}
}
