package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mplock/coordinator"
	"mplock/lock"
	"mplock/machine"
	"mplock/shm"
	"mplock/worker"
)

// Bank is the report of one `mplock bank` invocation: one or more runs.
type Bank struct {
	Machine machine.Info
	Runs    []*coordinator.BankResult
	// Clock is the clock acquire latencies were measured with, as measured
	// on this machine; nil when unknown (then no time is called too short).
	Clock *worker.Clock
	// TraceFile is where --trace drew the runs' traces, if anywhere.
	TraceFile string
}

// BankText writes the human report: the runs side by side, each worker
// process, the machine, and a plain-language verdict.
func BankText(w io.Writer, b Bank) error {
	if len(b.Runs) == 0 {
		_, err := fmt.Fprintln(w, "No run finished.")
		return err
	}
	first := b.Runs[0]
	var load string
	if first.Planned > 0 {
		load = fmt.Sprintf("%s operations each", count(first.Planned/int64(first.Workers)))
	} else {
		load = fmt.Sprintf("for %v", first.Duration)
	}
	fmt.Fprintf(w, "mplock bank: %d worker processes (%s), %s, amount %d, initial balance %d",
		first.Workers, roles(first.Workers), load, first.Amount, first.Initial)
	if first.Think > 0 {
		fmt.Fprintf(w, ", think %v", first.Think)
	}
	if first.Hold > 0 {
		fmt.Fprintf(w, ", hold %v", first.Hold)
	}
	if first.Pinned {
		cpus := make([]string, len(first.Procs))
		for i, p := range first.Procs {
			cpus[i] = fmt.Sprint(p.PinnedTo)
		}
		fmt.Fprintf(w, ", pinned to CPUs %s", strings.Join(cpus, ","))
	}
	fmt.Fprint(w, "\n\n")

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tOPS/S\tBALANCE\tEXPECTED\tLOST UPDATES\tACQUIRE p50 / p99 / max\tHANDOFFS\tLONGEST RUN\tFAIRNESS\tRESULT")
	for _, r := range b.Runs {
		lost := count(r.LostUpdates)
		if r.LostUpdates > 0 {
			lost += " (" + percent(r.LostUpdates, r.Ops+r.InDoubt) + ")"
		}
		acq, hand, run := "-", "-", "-"
		if r.Latency != nil {
			acq = b.acquire(r.Percentile(50)) + " / " + b.acquire(r.Percentile(99)) + " / " + b.acquire(r.MaxLatency())
		}
		if r.Kind.Excludes() && !r.Kind.LockFree() {
			hand, run = count(r.Handoffs), count(r.MaxRun)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", r.Kind, rate(r.OpsPerSecond),
			count(r.Final), count(r.Expected), lost, acq, hand, run, r.Fairness, outcome(r))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, line := range bankLegend(b) {
		fmt.Fprintln(w, line)
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LOCK\tWORKER\tPID\tROLE\tOPS\tHANDOFFS\tLONGEST RUN\tEXIT")
	for _, r := range b.Runs {
		for _, p := range r.Procs {
			hand, run := "-", "-"
			if r.Kind.Excludes() && !r.Kind.LockFree() && !p.Died {
				hand, run = count(p.Handoffs), count(p.MaxRun)
			}
			exit := p.Exit
			for _, dead := range p.Recovered {
				exit += fmt.Sprintf("; took the lock over from dead pid %d", dead)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Kind, p.Slot, p.Pid, p.Role, count(p.Ops), hand, run, exit)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, line := range wrap("One row per worker process: even slots deposit, odd ones withdraw. HANDOFFS counts the times "+
		"it took the lock from another worker, LONGEST RUN its most acquisitions in a row, EXIT how it ended.", 100) {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\nMachine: %s\n\n", b.Machine)
	for _, line := range Verdict(b.Runs) {
		fmt.Fprintln(w, line)
	}
	if b.TraceFile != "" {
		fmt.Fprintf(w, "The traces are drawn in %s.\n", b.TraceFile)
	}
	return nil
}

// acquire formats an acquire time, or says it was below the clock's
// resolution: "<12ns".
func (b Bank) acquire(d time.Duration) string {
	if b.Clock != nil && d < b.Clock.Resolution {
		return "<" + dur(b.Clock.Resolution)
	}
	return dur(d)
}

// bankLegend explains the columns of the runs' table.
func bankLegend(b Bank) []string {
	text := "OPS/S counts operations per second, all workers together. LOST UPDATES counts writes that " +
		"another worker's write replaced before anyone read them (exact: every write of the balance also " +
		"counts its version). ACQUIRE is the time to take the lock: the median, 99th percentile and longest."
	if c := b.Clock; c != nil {
		src := "the monotonic clock"
		if c.Source == "tsc" {
			src = "the CPU's time stamp counter"
		}
		text += fmt.Sprintf(" It is measured with %s, whose resolution is %s on this machine (measured now: "+
			"two successive reads are that far apart; a read costs %s), so a shorter acquisition shows as <%s.",
			src, dur(c.Resolution), dur(c.ReadCost), dur(c.Resolution))
	}
	text += " HANDOFFS counts acquisitions that changed the holder, LONGEST RUN the most acquisitions in a " +
		"row by one worker. FAIRNESS is Jain's index of the workers' shares of the operations (when the " +
		"first finished): 1.00 is equal shares, 1/N one worker doing everything."
	return wrap(text, 100)
}

// wrap breaks text into lines of at most width columns, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func roles(n int) string {
	d, w := (n+1)/2, n/2
	plural := func(k int, s string) string {
		if k == 1 {
			return fmt.Sprintf("1 %s", s)
		}
		return fmt.Sprintf("%d %ss", k, s)
	}
	if w == 0 {
		return plural(d, "depositor")
	}
	return plural(d, "depositor") + ", " + plural(w, "withdrawer")
}

func outcome(r *coordinator.BankResult) string {
	var s string
	switch {
	case r.Consistent:
		s = "ok"
	case r.LostUpdates > 0:
		s = "LOST UPDATES"
	default:
		s = "INCONSISTENT"
	}
	if r.InDoubt > 0 {
		s += fmt.Sprintf(" (%d in doubt)", r.InDoubt)
	}
	switch {
	case r.Interrupted:
		s += ", interrupted"
	case r.Stalled:
		s += ", STALLED"
	case r.Capped:
		s += ", capped"
	}
	if r.Failed() {
		s += ", worker died"
	}
	return s
}

// Verdict explains the runs in plain language: what happened, then why. It
// is the last thing the human report prints.
func Verdict(runs []*coordinator.BankResult) []string {
	var unlocked, good, bad []*coordinator.BankResult
	for _, r := range runs {
		switch {
		case !r.Kind.Excludes():
			unlocked = append(unlocked, r)
		case r.Consistent:
			good = append(good, r)
		default:
			bad = append(bad, r)
		}
	}
	var lines []string
	for _, r := range runs {
		if r.Interrupted {
			lines = append(lines, "Interrupted: the results above are what finished before Ctrl-C.")
			break
		}
	}
	for _, r := range runs {
		if r.Stalled {
			lines = append(lines, fmt.Sprintf("Stalled: with %s no worker committed an operation for a long time, or workers did not stop when asked, so the run was stopped.", r.Kind))
		}
		if r.Capped {
			lines = append(lines, fmt.Sprintf("Capped: with %s a worker reached its share of the 2,147,483,646 operations the account word can count, and stopped before --duration ended.", r.Kind))
		}
		for _, p := range r.Procs {
			if p.Died {
				lines = append(lines, deathLine(r, p))
			}
		}
		if r.Unguarded != "" {
			lines = append(lines, fmt.Sprintf("With %s, the janitor died during the run (%s): the run went on and removed what it made, but had mplock been killed after that, its System V semaphore, lock file or named region would have stayed behind until the next mplock run swept them: cleanup after a crash was no longer guaranteed.",
				r.Kind, strings.Trim(strings.TrimPrefix(r.Unguarded, "janitor: the janitor process is gone "), "()")))
		}
	}
	for _, r := range unlocked {
		if r.LostUpdates > 0 {
			lines = append(lines, fmt.Sprintf("Without a lock, %s of %s updates (%s) were lost: %s",
				count(r.LostUpdates), count(r.Ops), percent(r.LostUpdates, r.Ops), shouldHaveEnded(r)))
			if r.Trace != nil {
				if r.Trace.Lost != nil {
					lines = append(lines, "One of them, as it happened in this run: "+LostUpdateText(r.Trace.Lost, r.Workers))
				} else {
					lines = append(lines, fmt.Sprintf("(The traces kept each worker's last %d operations around the end of the run; none of them shows a lost update for certain.)", shm.TraceLen))
				}
			}
		} else {
			lines = append(lines, fmt.Sprintf(
				"Without a lock, no update was lost this time (%s updates): the workers' read-modify-write windows never overlapped; widen them with --hold (e.g. --hold 10us).",
				count(r.Ops)))
		}
	}
	for _, r := range bad {
		if r.LostUpdates > 0 {
			lines = append(lines, fmt.Sprintf("With %s, %s updates were lost although a lock was held: that lock did not exclude. This is a bug; please report it.",
				r.Kind, count(r.LostUpdates)))
		} else {
			lines = append(lines, fmt.Sprintf("With %s, no update was lost, but the balance (%s) is not what the committed operations explain (%s). This is a bug; please report it.",
				r.Kind, count(r.Final), count(r.Expected)))
		}
	}
	if len(good) > 0 {
		var names []string
		var total int64
		fastest := good[0]
		for _, r := range good {
			names = append(names, r.Kind.String())
			total += r.Ops
			if r.OpsPerSecond > fastest.OpsPerSecond {
				fastest = r
			}
		}
		what := fmt.Sprintf("With %s, every update survived (%s in all)", joinAnd(names), count(total))
		if len(good) > 1 {
			what += fmt.Sprintf("; fastest was %s at %s operations/s", fastest.Kind, rate(fastest.OpsPerSecond))
		}
		lines = append(lines, what+".")
	}
	switch {
	case len(unlocked) > 0:
		u := unlocked[0]
		step := fmt.Sprintf("reads the balance, adds or subtracts %d, and writes it back", u.Amount)
		if u.Hold > 0 {
			step = fmt.Sprintf("reads the balance, works on it for %v (--hold), and writes back the balance it read plus or minus %d", u.Hold, u.Amount)
		}
		lines = append(lines, fmt.Sprintf(
			"Why: each update %s; without a lock another process writes in between, and the later write overwrites the earlier one with a stale balance. A lock makes the read, the work and the write one step that no other process can enter.",
			step))
	case len(good) > 0:
		lines = append(lines, "Why: the lock lets one process at a time read, change and write the balance, so no write is based on a stale read.")
	}
	return lines
}

// deathLine says how a worker that did not finish its work ended, and what
// became of the lock it may have held.
func deathLine(r *coordinator.BankResult, p coordinator.ProcResult) string {
	who := fmt.Sprintf("With %s, worker %d (pid %d)", r.Kind, p.Slot, p.Pid)
	if p.KilledByRun {
		switch {
		case p.Stopped && p.Phase == shm.PhaseHolding && r.Kind.Excludes():
			return who + " was stopped (SIGSTOP) while holding the lock, so no other worker could take it: it is why the run stalled. mplock killed it (SIGKILL) when it did not stop."
		case p.Stopped:
			return fmt.Sprintf("%s was stopped (SIGSTOP) %s, and mplock killed it (SIGKILL) when it did not stop.", who, p.Phase)
		case p.Phase == shm.PhaseWaiting && r.LastHolder >= 0 && r.LastHolder != p.Slot:
			return fmt.Sprintf("%s was waiting for the lock, held by worker %d, when mplock ended the stalled run (SIGKILL).", who, r.LastHolder)
		}
		return fmt.Sprintf("%s was %s when mplock ended the run (SIGKILL): it did not stop when asked.", who, p.Phase)
	}
	what := fmt.Sprintf("%s ended early (%s)", who, p.Exit)
	if p.Phase == shm.PhaseHolding && r.Kind.Excludes() {
		what += " while holding the lock"
	}
	switch {
	case r.Kind == lock.Sem || r.Kind == lock.Spin:
		if r.Recoveries > 0 {
			return what + fmt.Sprintf("; a waiter found the holder dead and took the lock over (%d recovery), and the others finished.", r.Recoveries)
		}
		if p.Phase == shm.PhaseHolding {
			return what + "; no one waited for the lock after it, and the others finished."
		}
		return what + "; it did not hold the lock, and the others finished."
	case r.Kind.NeedsFile() || r.Kind == lock.SysV:
		return what + "; the kernel released any lock it held, and the others finished."
	}
	return what + "; the others finished."
}

// shouldHaveEnded says, plainly, where the balance should have ended and
// where it did: deposits and withdrawals of the same amount cancel out.
func shouldHaveEnded(r *coordinator.BankResult) string {
	if r.Deposits == r.Withdrawals {
		return fmt.Sprintf("the workers made as many deposits as withdrawals (%s each, of %d), which cancel out, so the balance should have ended where it began, at %s; it ended at %s.",
			count(r.Deposits), r.Amount, count(r.Initial), count(r.Final))
	}
	return fmt.Sprintf("%s deposits and %s withdrawals of %d should have taken the balance from %s to %s; it ended at %s.",
		count(r.Deposits), count(r.Withdrawals), r.Amount, count(r.Initial), count(r.Expected), count(r.Final))
}

// BankKinds writes the table of lock kinds (mplock bank --list-kinds).
func BankKinds(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tDESCRIPTION")
	for _, k := range lock.Kinds() {
		fmt.Fprintf(tw, "%s\t%s\n", k, k.Description())
	}
	return tw.Flush()
}
