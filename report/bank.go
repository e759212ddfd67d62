package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mplock/coordinator"
	"mplock/lock"
	"mplock/machine"
)

// Bank is the report of one `mplock bank` invocation: one or more runs.
type Bank struct {
	Machine machine.Info
	Runs    []*coordinator.BankResult
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
			acq = dur(r.Percentile(50)) + " / " + dur(r.Percentile(99)) + " / " + dur(r.MaxLatency())
		}
		if r.Kind.Excludes() && !r.Kind.LockFree() {
			hand, run = count(r.Handoffs), count(r.MaxRun)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", r.Kind, rate(r.OpsPerSecond),
			count(r.Final), count(r.Expected), lost, acq, hand, run, r.Fairness, outcome(r))
	}
	tw.Flush()

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
	fmt.Fprintf(w, "\nMachine: %s\n\n", b.Machine)
	for _, line := range Verdict(b.Runs) {
		fmt.Fprintln(w, line)
	}
	return nil
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
			lines = append(lines, fmt.Sprintf("Stalled: with %s no worker committed an operation for a long time, so the run was stopped.", r.Kind))
		}
		if r.Capped {
			lines = append(lines, fmt.Sprintf("Capped: with %s a worker reached its share of the 2,147,483,646 operations the account word can count, and stopped before --duration ended.", r.Kind))
		}
		for _, p := range r.Procs {
			if p.Died {
				lines = append(lines, fmt.Sprintf("With %s, worker %d (pid %d) ended early (%s); %s",
					r.Kind, p.Slot, p.Pid, p.Exit, afterDeath(r)))
			}
		}
	}
	for _, r := range unlocked {
		if r.LostUpdates > 0 {
			lines = append(lines, fmt.Sprintf(
				"Without a lock, %s of %s updates (%s) were lost: the balance ended at %s, but the operations the workers completed add up to %s.",
				count(r.LostUpdates), count(r.Ops), percent(r.LostUpdates, r.Ops), count(r.Final), count(r.Expected)))
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

func afterDeath(r *coordinator.BankResult) string {
	switch {
	case r.Kind == lock.Sem || r.Kind == lock.Spin:
		if r.Recoveries > 0 {
			return fmt.Sprintf("a waiter found the holder dead and took the lock over (%d recovery), and the others finished.", r.Recoveries)
		}
		return "it did not hold the lock, and the others finished."
	case r.Kind.NeedsFile() || r.Kind == lock.SysV:
		return "the kernel released any lock it held, and the others finished."
	}
	return "the others finished."
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
