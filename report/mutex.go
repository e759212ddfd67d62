package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/machine"
	"mplock/worker"
)

// Mutex is the report of one `mplock mutex` invocation: one or more runs.
type Mutex struct {
	Machine machine.Info
	Runs    []*coordinator.MutexResult
}

// syncAim is the synchronization delay Ricart-Agrawala should stay within,
// in one-message delivery times: theory says one message; the rest is the
// scheduler waking the next process.
const syncAim = 2.0

// MutexText writes the human report: one run in detail with its processes,
// or several side by side; the machine; a plain-language verdict.
func MutexText(w io.Writer, m Mutex) error {
	if len(m.Runs) == 0 {
		_, err := fmt.Fprintln(w, "No run finished.")
		return err
	}
	if len(m.Runs) == 1 {
		mutexOne(w, m.Runs[0])
	} else {
		mutexTable(w, m.Runs)
	}
	fmt.Fprintf(w, "\nMachine: %s\n\n", m.Machine)
	for _, line := range MutexVerdict(m.Runs) {
		fmt.Fprintln(w, line)
	}
	return nil
}

func mutexOne(w io.Writer, r *coordinator.MutexResult) {
	fmt.Fprintf(w, "mplock mutex: %s, %d processes, %v, %s\n\n", r.Algorithm.Title(), r.Procs, r.Duration, workload(r))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  Safety\t%s\n", safety(r))
	fmt.Fprintf(tw, "  Throughput\t%s entries/s (%s entries in %s)\n", rate(r.EntriesPerSecond), count(r.Entries), dur(r.Wall))
	fmt.Fprintf(tw, "  Wait\tmean %s, p99 %s, max %s (from request to entry)\n", dur(r.Wait.Mean), dur(r.Wait.P99), dur(r.Wait.Max))
	fmt.Fprintf(tw, "  Messages\t%s\n", messages(r))
	fmt.Fprintf(tw, "  Sync delay\t%s\n", syncDelay(r))
	fmt.Fprintf(tw, "  Fairness\t%s\n", fairness(r))
	if r.Rejected > 0 {
		fmt.Fprintf(tw, "  Rejected\t%s malformed or unexpected messages and connections (see below)\n", count(r.Rejected))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tENTRIES\tWAIT mean / p99 / max\tMESSAGES\tREJECTED\tCPU\tEXIT")
	procs := r.Peers
	if r.Server != nil {
		procs = append(procs[:len(procs):len(procs)], *r.Server)
	}
	for _, p := range procs {
		entries, wait := count(p.Entries), dur(p.Wait.Mean)+" / "+dur(p.Wait.P99)+" / "+dur(p.Wait.Max)
		if p.ID == dmutex.ServerID {
			entries, wait = "-", "-"
		}
		cpu := "-"
		if p.CPU > 0 {
			cpu = dur(p.CPU)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name(), p.Pid, entries, wait, count(p.Sent), count(p.Rejected), cpu, p.Exit)
	}
	tw.Flush()
}

func mutexTable(w io.Writer, runs []*coordinator.MutexResult) {
	first := runs[0]
	fmt.Fprintf(w, "mplock mutex: %v each, %s\n\n", first.Duration, workload(first))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALGORITHM\tPROCS\tENTRIES/S\tWAIT mean / p99\tMSGS/ENTRY (THEORY)\tSYNC DELAY (x DELIVERY)\tINVERSIONS\tVIOLATIONS\tRESULT")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Algorithm, r.Procs, rate(r.EntriesPerSecond),
			dur(r.Wait.Mean)+" / "+dur(r.Wait.P99), msgsCell(r), syncCell(r), count(r.Inversions), count(r.Violations), outcomeMutex(r))
	}
	tw.Flush()
}

func workload(r *coordinator.MutexResult) string {
	think := setting(r.ThinkMin)
	if r.ThinkMax != r.ThinkMin {
		think += "-" + setting(r.ThinkMax)
	}
	if r.ThinkMax == 0 {
		think = "none"
	}
	cs := setting(r.CS)
	if r.CS == 0 {
		cs = "empty"
	}
	net := "Unix sockets"
	if r.Network == worker.NetworkTCP {
		net = "loopback TCP"
	}
	return fmt.Sprintf("critical section %s, think %s, %s", cs, think, net)
}

// setting formats a duration the user gave: as given (10ms, 0), not as a
// measurement.
func setting(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

func safety(r *coordinator.MutexResult) string {
	if r.Violations == 0 && r.Overlaps == 0 {
		s := fmt.Sprintf("ok: never two processes inside at once (%s intervals checked", count(int64(r.Logged)))
		if r.Dropped > 0 {
			s += fmt.Sprintf(", %s more counted but not logged", count(int64(r.Dropped)))
		}
		return s + ")"
	}
	return fmt.Sprintf("VIOLATED: %s entries overlapped another process's stay (up to %d inside at once)",
		count(max(r.Violations, int64(r.Overlaps))), r.MaxInside)
}

func messages(r *coordinator.MutexResult) string {
	if r.Entries == 0 {
		return fmt.Sprintf("%s, no entry; theory %s per entry", count(r.Messages), r.TheoryText)
	}
	s := fmt.Sprintf("%s = %.2f per entry; theory %s", count(r.Messages), r.MessagesPerEntry, r.TheoryText)
	if !r.TheoryExact {
		return s
	}
	s += fmt.Sprintf(" = %.0f", r.Theory)
	switch {
	case r.MessagesMatch && r.Failure == nil:
		return s + ": exact"
	case r.Failure != nil:
		return s + " (not comparable: the run failed)"
	}
	return s + ": DIFFERENT"
}

func syncDelay(r *coordinator.MutexResult) string {
	if r.SyncDelay.Count == 0 {
		return "not measured (no process was waiting when another left)"
	}
	s := fmt.Sprintf("median %s, mean %s over %s handoffs", dur(r.SyncDelay.P50), dur(r.SyncDelay.Mean), count(r.SyncDelay.Count))
	d := r.DeliveryBasis()
	if d == nil {
		return s
	}
	lo, hi := r.Algorithm.SyncDelay(r.Procs)
	theory := fmt.Sprintf("%d message", lo)
	if hi != lo {
		theory = fmt.Sprintf("%d to %d messages", lo, hi)
	} else if lo != 1 {
		theory += "s"
	}
	when := "during the run"
	if d.When == "idle" {
		when = "before the start"
	}
	s += fmt.Sprintf(" = %.1fx one message's delivery (%s median, %d pings %s", r.SyncRatio(), dur(time.Duration(d.Median)), d.Rounds, when)
	if i := r.DeliveryIdle; i != nil && d != i {
		s += fmt.Sprintf("; %s with all processes idle", dur(time.Duration(i.Median)))
	}
	return s + "); theory " + theory
}

func fairness(r *coordinator.MutexResult) string {
	s := fmt.Sprintf("%s pairs of entries out of timestamp order", count(r.Inversions))
	switch r.Algorithm {
	case dmutex.RicartAgrawala:
		if r.Inversions == 0 {
			return s + " (Ricart-Agrawala grants in (timestamp, process) order)"
		}
		return s + ": WRONG, Ricart-Agrawala grants in timestamp order"
	case dmutex.Central:
		return s + " (the server grants in arrival order, not timestamp order)"
	case dmutex.TokenRing:
		return s + " (the token grants in ring order, not timestamp order)"
	}
	return s
}

func msgsCell(r *coordinator.MutexResult) string {
	s := fmt.Sprintf("%.2f (%s", r.MessagesPerEntry, r.TheoryText)
	if r.TheoryExact && r.TheoryText != fmt.Sprintf("%.0f", r.Theory) {
		s += fmt.Sprintf("=%.0f", r.Theory)
	}
	s += ")"
	if !r.MessagesMatch {
		s += " DIFFERENT"
	}
	return s
}

func syncCell(r *coordinator.MutexResult) string {
	if r.SyncDelay.Count == 0 {
		return "-"
	}
	if x := r.SyncRatio(); x > 0 {
		return fmt.Sprintf("%s (%.1fx)", dur(r.SyncDelay.P50), x)
	}
	return dur(r.SyncDelay.P50)
}

func outcomeMutex(r *coordinator.MutexResult) string {
	var s []string
	switch {
	case r.Violations > 0 || r.Overlaps > 0:
		s = append(s, "VIOLATED")
	case !r.MessagesMatch:
		s = append(s, "MESSAGES OFF THEORY")
	case r.Algorithm == dmutex.RicartAgrawala && r.Inversions > 0:
		s = append(s, "OUT OF ORDER")
	default:
		s = append(s, "ok")
	}
	if r.Failure != nil {
		s = append(s, "FAILED: "+dmutex.Name(r.Failure.Culprit)+" "+r.Failure.What)
	}
	if r.Interrupted {
		s = append(s, "interrupted")
	}
	return strings.Join(s, ", ")
}

// MutexVerdict explains the runs in plain language. It is the last thing
// the human report prints, and part of the JSON document.
func MutexVerdict(runs []*coordinator.MutexResult) []string {
	var lines []string
	for _, r := range runs {
		if r.Interrupted {
			lines = append(lines, "Interrupted: the results above are what finished before Ctrl-C.")
			break
		}
	}
	for _, r := range runs {
		name := r.Algorithm.Title()
		if len(runs) > 1 {
			name = fmt.Sprintf("%s with %d processes", name, r.Procs)
		}
		if f := r.Failure; f != nil {
			lines = append(lines, fmt.Sprintf("%s failed %v into the run: %s", name, f.At.Round(time.Millisecond), f.Explanation))
		}
		switch {
		case r.Violations > 0 || r.Overlaps > 0:
			lines = append(lines, fmt.Sprintf(
				"%s broke mutual exclusion: %s times a process entered while another was inside (the interval log shows %s overlaps; the occupancy counter saw up to %d inside at once). The check does not trust the algorithm: every process marks its own entry and exit in shared memory.",
				name, count(max(r.Violations, int64(r.Overlaps))), count(r.Violations), r.MaxInside))
			if r.Algorithm == dmutex.Broken {
				lines = append(lines, "Why: this variant replies to every request at once instead of deferring while it is inside or ahead, so two requesters both collect N-1 replies and both enter.")
			}
		case r.Failure == nil && r.Entries > 0:
			s := fmt.Sprintf("%s kept mutual exclusion: %s entries, never two processes inside at once", name, count(r.Entries))
			if r.TheoryExact && r.MessagesMatch {
				if r.TheoryText == fmt.Sprintf("%.0f", r.Theory) {
					s += fmt.Sprintf("; every entry cost exactly %.0f messages", r.Theory)
				} else {
					s += fmt.Sprintf("; every entry cost exactly %s = %.0f messages", r.TheoryText, r.Theory)
				}
			}
			if r.Algorithm == dmutex.RicartAgrawala && r.Inversions == 0 {
				s += ", and entries were granted in timestamp order"
			}
			lines = append(lines, s+".")
		}
		if r.TheoryExact && !r.MessagesMatch && r.Failure == nil {
			lines = append(lines, fmt.Sprintf("%s sent %s messages for %s entries, not %s per entry as the theory says: a bug, please report it.",
				name, count(r.Messages), count(r.Entries), r.TheoryText))
		}
		if r.Algorithm == dmutex.RicartAgrawala && r.Inversions > 0 {
			lines = append(lines, fmt.Sprintf("%s granted %s pairs of entries out of timestamp order: a bug, please report it.", name, count(r.Inversions)))
		}
		if x := r.SyncRatio(); r.Algorithm == dmutex.RicartAgrawala && x > 0 && len(runs) == 1 {
			if x <= syncAim {
				lines = append(lines, fmt.Sprintf("A waiting process got in %s after the previous one left: %.1fx one message's delivery time, as the theory says (the one deferred reply is the whole handoff).",
					dur(r.SyncDelay.P50), x))
			} else {
				lines = append(lines, fmt.Sprintf("A waiting process got in %s after the previous one left: %.1fx one message's delivery time, more than the theory's one message: the rest is the scheduler waking the next process with %d processes sharing the CPUs.",
					dur(r.SyncDelay.P50), x, r.Procs))
			}
		}
		if r.Rejected > 0 {
			lines = append(lines, fmt.Sprintf("%s: the processes rejected %s malformed or unexpected messages and carried on; the first: %s.",
				name, count(r.Rejected), firstProblem(r)))
		}
	}
	if len(runs) > 1 {
		lines = append(lines, compare(runs)...)
	}
	return lines
}

func firstProblem(r *coordinator.MutexResult) string {
	for _, p := range r.Problems {
		if p.Kind == "rejected" {
			return p.Text
		}
	}
	return "(not recorded)"
}

// compare says what the side-by-side table shows, per number of processes.
func compare(runs []*coordinator.MutexResult) []string {
	var lines []string
	bySize := map[int][]*coordinator.MutexResult{}
	var sizes []int
	for _, r := range runs {
		if _, ok := bySize[r.Procs]; !ok {
			sizes = append(sizes, r.Procs)
		}
		bySize[r.Procs] = append(bySize[r.Procs], r)
	}
	for _, n := range sizes {
		rs := bySize[n]
		if len(rs) < 2 {
			continue
		}
		fast, cheap := rs[0], rs[0]
		for _, r := range rs {
			if r.EntriesPerSecond > fast.EntriesPerSecond {
				fast = r
			}
			if r.Entries > 0 && (cheap.Entries == 0 || r.MessagesPerEntry < cheap.MessagesPerEntry) {
				cheap = r
			}
		}
		lines = append(lines, fmt.Sprintf("With %d processes: most entries per second with %s (%s/s); fewest messages per entry with %s (%.2f).",
			n, fast.Algorithm.Title(), rate(fast.EntriesPerSecond), cheap.Algorithm.Title(), cheap.MessagesPerEntry))
	}
	lines = append(lines, "Trade-offs: Ricart-Agrawala needs no coordinator and grants in timestamp order, but costs 2(N-1) messages per entry and stops if any process dies; the central server costs 3 messages but is a single point of failure and of load; the token ring costs one message per handoff under load, keeps travelling when idle, and loses the token with any process.")
	return lines
}

// MutexEvents writes every run's event log (collected with Verbose), in
// time order, with each process's Lamport clock; refused messages and
// broken links are interleaved where they happened.
func MutexEvents(w io.Writer, m Mutex) error {
	for _, r := range m.Runs {
		fmt.Fprintf(w, "Events of %s, %d processes (seconds since the start, Lamport clock, event):\n", r.Algorithm.Title(), r.Procs)
		ev, pr := r.Events, r.Problems
		for len(ev) > 0 || len(pr) > 0 {
			if len(pr) == 0 || len(ev) > 0 && ev[0].At <= pr[0].At {
				fmt.Fprintf(w, "  %s  ts %-6d  %s\n", fmtSince(ev[0].At), ev[0].TS, ev[0].Event)
				ev = ev[1:]
				continue
			}
			fmt.Fprintf(w, "  %s  %-9s  %s\n", fmtSince(pr[0].At), pr[0].Kind, pr[0].Text)
			pr = pr[1:]
		}
		fmt.Fprintln(w)
	}
	return nil
}

func fmtSince(d time.Duration) string {
	return fmt.Sprintf("%10.6f", d.Seconds())
}
