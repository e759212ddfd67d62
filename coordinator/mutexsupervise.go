package coordinator

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"mplock/dmutex"
	"mplock/internal/numfmt"
	"mplock/shm"
	"mplock/worker"
)

// mutexTick is how often the supervisor looks at the slots: progress, the
// fault trigger, stalls and the end of the stop phase.
const mutexTick = 20 * time.Millisecond

// supervise runs the run to its end: the stop phase at the deadline or on
// ctx's cancellation, the exit phase once every process finished, a failure
// when a process dies or nobody gets in, and SIGKILL for processes that do
// not exit within the grace period.
func (r *mutexRun) supervise(ctx context.Context) {
	p := r.plan
	ticker := time.NewTicker(mutexTick)
	defer ticker.Stop()
	deadline := time.NewTimer(p.Duration)
	defer deadline.Stop()
	start := time.Now()
	settle := 200*time.Millisecond + 2*(p.CS+p.ThinkMax)
	var exitAt time.Time
	stop := func() { r.setPhase(shm.PhaseStop) }
	exit := func() {
		if r.phase < shm.PhaseExit {
			r.setPhase(shm.PhaseExit)
			exitAt = time.Now()
		}
	}
	done := ctx.Done()
	lastEntries, lastChange := int64(0), start
	for running := len(r.procs); running > 0; {
		select {
		case c := <-r.exited:
			running--
			if r.phase < shm.PhaseExit {
				r.died(c)
			}
		case <-done:
			r.interrupted = true
			done = nil
			stop()
		case <-deadline.C:
			stop()
		case now := <-ticker.C:
			entries := r.entries()
			if p.Progress != nil {
				p.Progress(MutexProgress{Algorithm: p.Algorithm, Entries: entries, Elapsed: now.Sub(start), Planned: p.Duration})
			}
			r.injectFault(entries)
			if entries != lastEntries {
				lastEntries, lastChange = entries, now
			}
			quiet := now.Sub(lastChange)
			switch {
			case r.phase == shm.PhaseExit:
				if now.Sub(exitAt) > stopGrace+p.CS {
					for _, c := range r.procs {
						c.kill()
					}
				}
			case r.dead >= 0:
				// Let the others run into the dead process (or not) before
				// naming who waits for whom.
				if quiet > settle || now.Sub(r.deadAt) > p.StallTimeout {
					r.fail("died", r.dead, entries)
					exit()
				}
			case quiet > p.StallTimeout && r.anyWanted():
				r.fail("stalled", -1, entries)
				exit()
			case r.phase == shm.PhaseStop && r.allDone():
				exit()
			case r.phase == shm.PhaseStop && quiet > p.StallTimeout:
				// Draining can take long (every waiter's turn), but not
				// without progress.
				r.fail("not finish", -1, entries)
				exit()
			}
		}
	}
	r.endNs = worker.Now()
}

// died records the first process to end before the exit phase.
func (r *mutexRun) died(c *child) {
	for _, mc := range r.procs {
		if mc.child == c {
			mc.lateExit = true
			if r.dead < 0 {
				r.dead, r.deadAt, r.deadAtNs, r.deadEntries = mc.id, time.Now(), worker.Now(), r.entries()
			}
		}
	}
}

func (r *mutexRun) injectFault(entries int64) {
	f := r.plan.Fault
	if f == nil || r.faultFired || f.Kind == FaultGarbage || entries < f.After || r.phase != shm.PhaseRun {
		return
	}
	r.faultFired = true
	sig := syscall.SIGKILL
	if f.Kind == FaultStop {
		sig = syscall.SIGSTOP
	}
	for _, c := range r.procs {
		if c.id == f.Peer {
			c.cmd.Process.Signal(sig)
		}
	}
}

func (r *mutexRun) entries() int64 {
	var n int64
	for _, c := range r.procs {
		n += int64(r.mx.Slot(c.slot).Entries.Load())
	}
	return n
}

func (r *mutexRun) anyWanted() bool {
	for _, c := range r.procs {
		if c.id != dmutex.ServerID && dmutex.State(r.mx.Slot(c.slot).Proc.Load()) == dmutex.Wanted {
			return true
		}
	}
	return false
}

func (r *mutexRun) allDone() bool {
	for _, c := range r.procs {
		if shm.SlotState(r.mx.Slot(c.slot).State.Load()) != shm.SlotDone {
			return false
		}
	}
	return true
}

func (r *mutexRun) views() []slotView {
	out := make([]slotView, 0, len(r.procs))
	for _, c := range r.procs {
		out = append(out, snapshotSlot(r.mx, c.slot, c.id, c.pid()))
	}
	return out
}

// fail records why the run cannot go on, naming the process everyone waits
// for.
func (r *mutexRun) fail(what string, dead int, entries int64) {
	if r.failure != nil {
		return
	}
	views := r.views()
	culprit, waiters := blame(r.plan.Algorithm, views, dead)
	f := &MutexFailure{What: what, Culprit: culprit, Waiters: waiters, At: time.Duration(worker.Now() - r.startNs)}
	var who string
	if culprit >= 0 {
		for _, c := range r.procs {
			if c.id == culprit {
				f.CulpritPid = c.pid()
				if what == "died" {
					f.How = c.describe()
				} else {
					f.How = osStateWords(osState(c.pid()))
				}
			}
		}
		who = fmt.Sprintf("%s (pid %d)", dmutex.Name(culprit), f.CulpritPid)
	}
	alg := r.plan.Algorithm
	switch what {
	case "died":
		f.At = time.Duration(r.deadAtNs - r.startNs)
		f.After = entries - r.deadEntries
		f.Explanation = fmt.Sprintf("%s ended during the run (%s)", who, f.How)
		switch {
		case len(waiters) > 0:
			f.Explanation += fmt.Sprintf("; %s %s waiting for it: %s", names(waiters), isAre(len(waiters)), why(alg, culprit, views))
		case alg == dmutex.Central && culprit != dmutex.ServerID:
			f.Explanation += fmt.Sprintf("; the others went on (%s entries since): %s", numfmt.Grouped(f.After), why(alg, culprit, views))
		case f.After > 0:
			// A token algorithm goes on without a process that neither
			// holds the token nor lies on its way, until the token is
			// sent to it.
			f.Explanation += fmt.Sprintf("; the others went on (%s entries since), but %s", numfmt.Grouped(f.After), why(alg, culprit, views))
		default:
			f.Explanation += fmt.Sprintf("; nobody was waiting for it yet, but %s", why(alg, culprit, views))
		}
		f.Explanation += ". Stopped the run."
	case "stalled":
		f.Explanation = fmt.Sprintf("no process entered the critical section for %v while some waited", r.plan.StallTimeout)
		if culprit >= 0 {
			f.Explanation += fmt.Sprintf("; %s %s waiting for %s, which is %s: %s", names(waiters), isAre(len(waiters)), who, f.How, why(alg, culprit, views))
		}
		f.Explanation += ". Stopped the run."
	default:
		var late []int
		for _, v := range views {
			if !v.done {
				late = append(late, v.id)
			}
		}
		f.Explanation = fmt.Sprintf("after the stop, nobody entered for %v and %s did not finish", r.plan.StallTimeout, names(late))
		if culprit >= 0 {
			f.Explanation += fmt.Sprintf("; %s %s waiting for %s (%s)", names(waiters), isAre(len(waiters)), who, f.How)
		}
		f.Explanation += ". Stopped the run."
	}
	r.failure = f
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
