package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"mplock/coordinator"
	"mplock/waitfor"
)

// Deadlock is the report of one `mplock deadlock` run, with the exit status
// the command gives it.
type Deadlock struct {
	Result   *coordinator.DeadlockResult
	ExitCode int
}

// scenarioMax is the largest cycle drawn as lockdep-style columns; wider
// ones would not fit a terminal.
const scenarioMax = 4

// DeadlockText writes the whole human report: the plan, the timeline, and
// the summary.
func DeadlockText(w io.Writer, d Deadlock) error {
	if err := DeadlockHeader(w, d.Result.Plan); err != nil {
		return err
	}
	for _, e := range d.Result.Events {
		if _, err := fmt.Fprintln(w, DeadlockEventLine(e)); err != nil {
			return err
		}
	}
	return DeadlockSummary(w, d)
}

// DeadlockHeader writes what the run is about to do, before its timeline.
func DeadlockHeader(w io.Writer, p coordinator.DeadlockPlan) error {
	fmt.Fprintf(w, "mplock deadlock: %d processes, %d lock servers (one lock each), strategy %s, resolve %s\n",
		p.Procs, p.Procs, p.Strategy, p.Resolve)
	var orders []string
	for i := range p.Procs {
		var locks []string
		for _, k := range p.LockOrder(i) {
			locks = append(locks, coordinator.LockName(k))
		}
		orders = append(orders, coordinator.HolderName(i)+" takes "+strings.Join(locks, " then "))
	}
	if len(orders) > 4 {
		orders = append(orders[:3], "...", orders[len(orders)-1])
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(orders, "; "))
	how := fmt.Sprintf("each holds a lock for %v before asking for the next", p.Hold)
	if p.Strategy != coordinator.Ordered {
		how = fmt.Sprintf("once every process has its first lock, each holds it for %v, then asks for the next", p.Hold)
	}
	if p.Strategy == coordinator.TryLock {
		how += fmt.Sprintf("; a later lock not granted within %v is given up, everything released, and retried after a random backoff up to %v (doubling)", p.TryTimeout, p.Backoff)
	}
	fmt.Fprintf(w, "  %s\n", how)
	_, err := fmt.Fprintf(w, "  the detector asks every server for holders and waiters every %v\n\n", p.DetectEvery)
	return err
}

// DeadlockEventLine formats one event of the timeline, as it is printed
// while the run goes on: "  +0.020s  P1 (pid 4242) got lock1".
func DeadlockEventLine(e coordinator.DeadlockEvent) string {
	return fmt.Sprintf("  %8s  %s", offset(e.At), DeadlockEventText(e))
}

// DeadlockEventText says what happened at one event, without its time.
func DeadlockEventText(e coordinator.DeadlockEvent) string {
	who := procPID(e.Proc, e.PID)
	var s string
	switch e.Kind {
	case coordinator.EventServerUp:
		s = fmt.Sprintf("%s: Lock Server started on tcp://%s (pid %d)", e.Proc, e.Addr, e.PID)
	case coordinator.EventGot:
		s = fmt.Sprintf("%s got %s", who, e.Lock)
		if e.Waited > 0 {
			s += " after waiting " + dur(e.Waited)
		}
	case coordinator.EventWaiting:
		s = fmt.Sprintf("%s waiting for %s", who, e.Lock)
		if e.Other != "" {
			s += " held by " + procPID(e.Other, e.OtherPID)
		}
		if e.Text != "" {
			s += " (" + e.Text + ")"
		}
	case coordinator.EventGaveUp:
		s = fmt.Sprintf("%s gave up on %s after %s (timed acquire)", who, e.Lock, dur(e.Waited))
	case coordinator.EventBackoff:
		s = fmt.Sprintf("%s released everything; backing off %s before trying again", who, dur(e.Waited))
	case coordinator.EventReleased:
		s = fmt.Sprintf("%s released %s", who, e.Lock)
	case coordinator.EventDone:
		s = fmt.Sprintf("%s done", who)
	case coordinator.EventStopped:
		s = fmt.Sprintf("%s stopped while %s", who, e.Text)
	case coordinator.EventExited:
		s = fmt.Sprintf("%s exited: %s", who, e.Text)
	case coordinator.EventDeadlock:
		s = fmt.Sprintf("DEADLOCK detected, %s after it formed: %s", dur(e.Waited), e.Text)
	case coordinator.EventVictim:
		s = fmt.Sprintf("victim: killing %s with SIGKILL: %s", who, e.Text)
	case coordinator.EventLeft:
		s = "resolve none: " + e.Text
	case coordinator.EventAbort:
		s = "stop: " + e.Text
	default:
		s = e.Kind.String() + " " + e.Text
	}
	return s
}

// DeadlockSummary writes what the run came to: the cycle and how it formed,
// why, how to prevent it and what was done about it; or why there was none.
func DeadlockSummary(w io.Writer, d Deadlock) error {
	r := d.Result
	fmt.Fprintln(w)
	if dl := r.Deadlock; dl != nil {
		deadlockCycle(w, r, dl)
		fmt.Fprintln(w)
	}
	deadlockProcs(w, r)
	fmt.Fprintln(w)
	for _, line := range DeadlockVerdict(d) {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

func deadlockCycle(w io.Writer, r *coordinator.DeadlockResult, dl *coordinator.Deadlock) {
	fmt.Fprintf(w, "DEADLOCK: %d processes wait for each other in a cycle across %d lock %s; none of them can go on.\n",
		len(dl.Cycle), dl.Servers, plural(dl.Servers, "server", "servers"))
	for _, e := range dl.Cycle {
		fmt.Fprintf(w, "  %s\n", EdgeLine(e))
	}
	if len(dl.Members) > 0 {
		fmt.Fprintf(w, "  Also stuck behind them: %s.\n", joinAnd(others(dl.Members, dl.Cycle)))
	}
	fmt.Fprintf(w, "  The cycle formed at %s, when the last of these waits began. The detector found it on look %d and confirmed it\n", offset(dl.Formed), dl.Look-1)
	fmt.Fprintf(w, "  on look %d, right after, every wait and every grant unchanged, at %s: %s after it formed.\n", dl.Look, offset(dl.Detected), dur(dl.Latency))
	if len(dl.Cycle) <= scenarioMax {
		fmt.Fprintln(w)
		scenario(w, dl)
	}
}

// EdgeLine is one process of a cycle as a sentence: "P1 (pid 4242) holds
// lock1 at 127.0.0.1:6000 since +0.020s, waits for lock2 at
// 127.0.0.1:6001 since +0.122s, held by P2 (pid 4243)".
func EdgeLine(e coordinator.CycleEdge) string {
	s := procPID(e.Proc, e.PID)
	if e.Holds != "" {
		s += fmt.Sprintf(" holds %s at %s since %s,", e.Holds, e.HoldsAt, offset(e.HoldsSince))
	} else {
		s += " (ahead in a queue)"
	}
	s += fmt.Sprintf(" waits for %s at %s since %s, %s %s", e.WaitsFor, e.WaitsAt, offset(e.WaitsSince), e.Kind, procPID(e.Blocker, e.BlockerPID))
	return s
}

// scenario draws the cycle as Linux lockdep draws an unsafe locking
// scenario: one column per process, one row per step, in time order; but
// with the times, the real processes and what is held.
func scenario(w io.Writer, dl *coordinator.Deadlock) {
	type step struct {
		at   time.Duration
		col  int
		text string
	}
	var steps []step
	for i, e := range dl.Cycle {
		if e.Holds != "" {
			steps = append(steps, step{e.HoldsSince, i, "lock(" + e.Holds + ")"})
		}
		steps = append(steps, step{e.WaitsSince, i, "lock(" + e.WaitsFor + ")  waits"})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return cmp.Compare(a.at, b.at) })
	fmt.Fprintln(w, "  The same, one column per process, read down (lockdep's \"unsafe locking scenario\", with real times):")
	rows := [][]string{{""}}
	for _, e := range dl.Cycle {
		rows[0] = append(rows[0], procPID(e.Proc, e.PID))
	}
	for _, s := range steps {
		row := make([]string, len(dl.Cycle)+1)
		row[0], row[s.col+1] = offset(s.at), s.text
		rows = append(rows, row)
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			b.WriteString(c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+3))
		}
		fmt.Fprintln(w, "  "+strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w, "             *** DEADLOCK ***")
}

func deadlockProcs(w io.Writer, r *coordinator.DeadlockResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tLOCKS, IN ORDER\tRETRIES\tEND")
	for _, h := range r.Holders {
		end := h.Exit
		switch {
		case h.Completed:
			end = "completed"
		case h.Victim:
			end = "victim: " + h.Exit
		case h.Stopped != "":
			end = "ended by the run (" + h.Exit + ") while " + h.Stopped
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", h.Proc, h.PID, strings.Join(h.Locks, ", "), h.Retries, end)
	}
	for _, s := range r.Servers {
		fmt.Fprintf(tw, "%s server\t%d\t%s at %s\t-\t%s\n", s.Lock, s.PID, s.Lock, s.Addr, s.Exit)
	}
	tw.Flush()
}

// DeadlockVerdict is the report's closing paragraph: what happened, why,
// how to prevent it, what was done, and the exit status.
func DeadlockVerdict(d Deadlock) []string {
	r := d.Result
	p := r.Plan
	var out []string
	if dl := r.Deadlock; dl != nil {
		out = append(out, "Why: "+why(dl), "Prevent it: take locks in one global order (--strategy ordered), or time out and retry (--strategy trylock).")
	}
	switch {
	case r.Interrupted:
		out = append(out, "Interrupted: stopped every holder and lock server.")
	case r.Failure != "":
		out = append(out, "FAILED: "+r.Failure+". Stopped every holder and lock server.")
	case r.Deadlock != nil && p.Resolve == coordinator.Abort:
		out = append(out, "Resolution (abort): stopped every holder and lock server.")
	case r.Deadlock != nil && p.Resolve == coordinator.None:
		out = append(out, fmt.Sprintf("Resolution (none): left them stuck, as asked, until --timeout %v; then stopped them all.", p.Timeout))
	case r.Deadlock != nil && p.Resolve == coordinator.Victim:
		out = append(out, victimLine(r))
	case r.TimedOut:
		out = append(out, fmt.Sprintf("Not finished: --timeout %v came before every process had finished, and no deadlock was found.", p.Timeout))
	default:
		out = append(out, noDeadlock(r)...)
	}
	if r.Deadlock == nil && !r.Interrupted && r.Failure == "" {
		out = append(out, fmt.Sprintf("The detector looked %d times (each look asks all %d servers) and %s.", r.Looks, p.Procs, sawWhat(r)))
	}
	out = append(out, fmt.Sprintf("Every process has exited. Exit status %d.", d.ExitCode))
	return out
}

func why(dl *coordinator.Deadlock) string {
	var orders []string
	for _, e := range dl.Cycle {
		if e.Holds == "" {
			return "each of them waits for the next, around the cycle, and none of these waits has a timeout."
		}
		orders = append(orders, fmt.Sprintf("%s takes %s then %s", e.Proc, e.Holds, e.WaitsFor))
	}
	shape := "opposite orders, so each holds the lock the other asks for next"
	if len(dl.Cycle) > 2 {
		shape = "orders that go round in a circle, so each holds the lock the previous one asks for next"
	}
	return fmt.Sprintf("%s: %s. A lock server grants a lock only when its holder releases it, "+
		"and a process that waits without a timeout never does.", joinAnd(orders), shape)
}

func victimLine(r *coordinator.DeadlockResult) string {
	v := r.Victim
	if v == nil {
		return "Resolution (victim): no victim could be killed."
	}
	s := fmt.Sprintf("Resolution (victim): killed %s with SIGKILL, because %s.", procPID(v.Proc, v.PID), v.Reason)
	// Once the cycle formed, nobody else could get a lock the victim held
	// until the victim lost it.
	var after []string
	for _, l := range v.Held {
		for _, e := range r.Events {
			if e.Kind == coordinator.EventGot && e.Lock == l && e.At >= r.Deadlock.Formed && e.PID != v.PID {
				after = append(after, fmt.Sprintf("%s got %s at %s", e.Proc, l, offset(e.At)))
				break
			}
		}
	}
	if len(after) > 0 {
		s += fmt.Sprintf(" The servers released %s when its connections dropped: %s.", joinAnd(v.Held), joinAnd(after))
	}
	done, rest := r.Completed(), len(r.Holders)-1
	if done == rest {
		s += fmt.Sprintf(" The other %d %s completed.", rest, plural(rest, "process", "processes"))
	} else {
		s += fmt.Sprintf(" Only %d of the other %d %s completed.", done, rest, plural(rest, "process", "processes"))
	}
	return s
}

func noDeadlock(r *coordinator.DeadlockResult) []string {
	p := r.Plan
	out := []string{fmt.Sprintf("No deadlock: all %d processes took and released their locks in %s.", len(r.Holders), dur(r.Elapsed))}
	switch p.Strategy {
	case coordinator.Ordered:
		out = append(out, "Every process took its locks in one global order (the lower-numbered lock first): a process waits only "+
			"for a lock numbered higher than any it holds, so along a chain of waits the numbers rise and never come back round: no cycle.")
	case coordinator.TryLock:
		var per []string
		for _, h := range r.Holders {
			if h.Retries > 0 {
				per = append(per, fmt.Sprintf("%s %d", h.Proc, h.Retries))
			}
		}
		s := fmt.Sprintf("Retries: %d timed %s gave up and started over after a random backoff", r.Retries(), plural(r.Retries(), "acquire", "acquires"))
		if len(per) > 0 {
			s += " (" + strings.Join(per, ", ") + ")"
		}
		out = append(out, s+"; giving up releases what the process holds, which breaks the cycle the reverse order makes.")
	}
	return out
}

func sawWhat(r *coordinator.DeadlockResult) string {
	switch {
	case r.TransientCycles > 0:
		return fmt.Sprintf("saw %d %s of waits that broke when a timed acquire gave up: transient, not a deadlock",
			r.TransientCycles, plural(r.TransientCycles, "cycle", "cycles"))
	case len(r.Graph.Edges) > 0:
		return "saw processes wait, but never in a cycle"
	}
	return "never saw a cycle"
}

// others returns the members that are not on the cycle itself.
func others(members []string, cycle []coordinator.CycleEdge) []string {
	var out []string
	for _, m := range members {
		if !slices.ContainsFunc(cycle, func(e coordinator.CycleEdge) bool { return e.Proc == m }) {
			out = append(out, m)
		}
	}
	return out
}

func procPID(name string, pid int) string { return waitfor.Proc{Name: name, PID: pid}.String() }

// offset formats a time from the start of the run: "+0.131s".
func offset(d time.Duration) string { return fmt.Sprintf("+%.3fs", d.Seconds()) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
