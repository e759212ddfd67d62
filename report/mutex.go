package report

import (
	"fmt"
	"io"
	"math"
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

// syncAim is how far above its theory a synchronization delay (or a
// response time) may be, in one-message delivery times, before the report
// flags it: theory counts messages; the rest is the scheduler waking the
// next process.
const syncAim = 2.0

// MutexText writes the human report: one run in detail with its processes,
// or several side by side; a legend; the machine; a plain-language verdict.
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
	fmt.Fprintf(tw, "  Load\t%s\n", load(r))
	fmt.Fprintf(tw, "  Wait\tmean %s, p99 %s, max %s (from request to entry)\n", dur(r.Wait.Mean), dur(r.Wait.P99), dur(r.Wait.Max))
	fmt.Fprintf(tw, "  Messages\t%s\n", messages(r))
	fmt.Fprintf(tw, "  Sync delay\t%s\n", syncDelay(r))
	fmt.Fprintf(tw, "  Response\t%s\n", response(r))
	fmt.Fprintf(tw, "  Fairness\t%s\n", fairness(r))
	if r.Rejected > 0 {
		fmt.Fprintf(tw, "  Rejected\t%s malformed or unexpected messages and connections, refused and counted; the run went on (see below)\n", count(r.Rejected))
	}
	if b := r.Cost.Basis; b != "" {
		fmt.Fprintf(tw, "  Theory\t%s\n", b)
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
	fmt.Fprintln(w)
	for _, line := range procLegend {
		fmt.Fprintln(w, line)
	}
}

var procLegend = []string{
	"MESSAGES counts the algorithm's messages a process sent (the delivery-time pings are not counted).",
	"REJECTED counts what it refused and carried on: lines that are not valid messages, messages its",
	"state cannot accept (a reply it did not ask for), and connections without the run's secret.",
}

func mutexTable(w io.Writer, runs []*coordinator.MutexResult) {
	first := runs[0]
	fmt.Fprintf(w, "mplock mutex: %v each, %s\n\n", first.Duration, workload(first))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALGORITHM\tPROCS\tENTRIES/S\tLOAD\tMSGS/ENTRY\tTHEORY\tSYNC DELAY\tTHEORY\tRESPONSE\tTHEORY\tINVERSIONS\tVIOLATIONS\tRESULT")
	flagged := false
	for _, r := range runs {
		msgs, mflag := msgsCell(r)
		syncT, sflag := ratioCell(r.SyncRatio(), r.Cost.Sync, r.SyncDelay.Count)
		respT, rflag := ratioCell(responseRatio(r), r.Cost.Response, r.Uncontended.Count)
		flagged = flagged || mflag || sflag || rflag
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Algorithm, r.Procs, rate(r.EntriesPerSecond),
			loadCell(r), msgs, theoryCell(r), syncT, tRange(r.Cost.Sync), respT, tRange(r.Cost.Response),
			count(r.Inversions), count(r.Violations), outcomeMutex(r))
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, line := range tableLegend {
		fmt.Fprintln(w, line)
	}
	if flagged {
		fmt.Fprintln(w, "(!) marks a figure that differs from its theory: messages per entry outside what the analysis gives for")
		fmt.Fprintln(w, "the run's load, or a delay below the theory or more than twice it. The verdict below says why.")
	}
}

var tableLegend = []string{
	"LOAD is the share of requests that found the critical section busy (another process inside or waiting):",
	"the theory's light load is near 0%, its heavy load near 100%. MSGS/ENTRY counts the algorithm's messages",
	"(not the pings) per entry; THEORY is what its analysis gives for the run's load. SYNC DELAY is the median",
	"time from one exit to the next entry when a process was waiting, RESPONSE the median wait of the entries",
	"that found the critical section free; both in T, one message's delivery time measured with pings in the",
	"same run. INVERSIONS counts pairs of entries granted out of (timestamp, process) order.",
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
	return fmt.Sprintf("VIOLATED: %s entries overlapped another process's stay (up to %s inside at once)",
		count(max(r.Violations, int64(r.Overlaps))), count(int64(r.MaxInside)))
}

func load(r *coordinator.MutexResult) string {
	if r.Entries == 0 {
		return "no entry"
	}
	return fmt.Sprintf("%s: %s of the requests found the critical section busy (another process inside or waiting)",
		r.Regime(), percentOf(r.Load))
}

func percentOf(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) }

// theoryFor says what the analysis gives per entry: "2(N-1) = 8", or the
// light and heavy figures when they differ.
func theoryFor(r *coordinator.MutexResult) string {
	c := r.Cost
	if c.Exact() {
		if c.Formula == c.Bounds.String() {
			return c.Formula
		}
		return c.Formula + " = " + c.Bounds.String()
	}
	return fmt.Sprintf("%s: %s at light load, %s at heavy load", c.Formula, c.Light, c.Heavy)
}

func messages(r *coordinator.MutexResult) string {
	if r.Entries == 0 {
		return fmt.Sprintf("%s, no entry; theory %s per entry", count(r.Messages), r.Cost.Formula)
	}
	s := fmt.Sprintf("%s = %.2f per entry; theory %s", count(r.Messages), r.MessagesPerEntry, theoryFor(r))
	switch {
	case r.Failure != nil:
		return s + " (not comparable: the run failed)"
	case !r.MessagesMatch:
		return s + fmt.Sprintf(": DIFFERENT (the theory's bounds: %s)", boundsText(r.Bounds))
	case r.Cost.Exact():
		return s + ": exact"
	case offRegime(r):
		return s + fmt.Sprintf(": outside the %s-load figure (!)", r.Regime())
	}
	return s + fmt.Sprintf(": within it for this %s load", r.Regime())
}

// delivery says where the run's delivery time comes from.
func delivery(r *coordinator.MutexResult) string {
	d := r.DeliveryBasis()
	when := "during the run"
	if d.When == "idle" {
		when = "before the start"
	}
	s := fmt.Sprintf("%s median, %s pings %s", dur(time.Duration(d.Median)), count(int64(d.Rounds)), when)
	if i := r.DeliveryIdle; i != nil && d != i {
		s += fmt.Sprintf("; %s with all processes idle", dur(time.Duration(i.Median)))
	}
	return s
}

// messagesT formats a theory in message delivery times: "1 message",
// "1 to 3 messages".
func messagesT(rg dmutex.Range) string {
	if rg.Exact() && rg.Lo == 1 {
		return "1 message"
	}
	return rg.String() + " messages"
}

func syncDelay(r *coordinator.MutexResult) string {
	if r.SyncDelay.Count == 0 {
		return "not measured (no process was waiting when another left)"
	}
	s := fmt.Sprintf("median %s, mean %s over %s handoffs", dur(r.SyncDelay.P50), dur(r.SyncDelay.Mean), count(r.SyncDelay.Count))
	if r.DeliveryBasis() == nil {
		return s
	}
	s += fmt.Sprintf(" = %.1fx one message's delivery (%s); theory %s", r.SyncRatio(), delivery(r), messagesT(r.Cost.Sync))
	if _, flag := ratioCell(r.SyncRatio(), r.Cost.Sync, r.SyncDelay.Count); flag {
		s += " (!)"
	}
	return s
}

// responseRatio is the median uncontended wait in delivery times; 0 when
// either is unknown.
func responseRatio(r *coordinator.MutexResult) float64 {
	d := r.DeliveryBasis()
	if d == nil || d.Median <= 0 || r.Uncontended.Count == 0 {
		return 0
	}
	return float64(r.Uncontended.P50) / float64(d.Median)
}

func response(r *coordinator.MutexResult) string {
	if r.Uncontended.Count == 0 {
		return "not measured (every request found the critical section busy); theory " + messagesT(r.Cost.Response) + " plus the time inside"
	}
	s := fmt.Sprintf("median wait %s over the %s entries whose request found the critical section free", dur(r.Uncontended.P50), count(r.Uncontended.Count))
	if x := responseRatio(r); x > 0 {
		s += fmt.Sprintf(" = %.1fx one message's delivery", x)
		switch _, flag := ratioCell(x, r.Cost.Response, r.Uncontended.Count); {
		case r.Uncontended.Count < minSamples:
			s += " (too few entries to compare)"
		case flag:
			s += " (!)"
		}
	}
	return s + "; theory " + messagesT(r.Cost.Response) + " (plus the time inside)"
}

func fairness(r *coordinator.MutexResult) string {
	s := fmt.Sprintf("%s inversions (pairs of entries granted out of timestamp order)", count(r.Inversions))
	switch {
	case r.Algorithm.GrantsInOrder() && r.Inversions == 0:
		return s + fmt.Sprintf(": none, as %s grants in (timestamp, process) order", r.Algorithm.Title())
	case r.Algorithm.GrantsInOrder():
		return s + fmt.Sprintf(": WRONG, %s grants in timestamp order", r.Algorithm.Title())
	}
	return s + ": " + orderOf(r.Algorithm)
}

// orderOf says in which order an algorithm lets processes in, when it is
// not timestamp order.
func orderOf(a dmutex.Algorithm) string {
	switch a {
	case dmutex.Central:
		return "the server grants in arrival order, not timestamp order"
	case dmutex.TokenRing:
		return "the token grants in ring order, not timestamp order"
	case dmutex.RoucairolCarvalho:
		return "a process that kept every permission enters without asking, ahead of earlier requests still on their way"
	case dmutex.Maekawa, dmutex.MaekawaNaive:
		return "each voter orders only the requests it hears of"
	case dmutex.SuzukiKasami:
		return "the token serves its queue in the order its holders found the requests"
	case dmutex.Raymond:
		return "each process serves its neighbours first come, first served"
	}
	return "not checked"
}

// msgsCell is the table's messages per entry, flagged when outside the
// theory for the run's load (or, failing, outside its bounds).
func msgsCell(r *coordinator.MutexResult) (string, bool) {
	if r.Entries == 0 {
		return "-", false
	}
	s := fmt.Sprintf("%.2f", r.MessagesPerEntry)
	switch {
	case !r.MessagesMatch:
		return s + " DIFFERENT", true
	case offRegime(r):
		return s + " (!)", true
	}
	return s, false
}

// theoryCell is the table's theory for the run's load: "6 = 2(N-1)",
// "12 to 20 (heavy)".
func theoryCell(r *coordinator.MutexResult) string {
	c := r.Cost
	if c.Exact() {
		if c.Formula == c.Bounds.String() {
			return c.Formula
		}
		return c.Bounds.String() + " = " + c.Formula
	}
	reg := r.Regime()
	if reg == "-" {
		reg = "mixed"
	}
	return fmt.Sprintf("%s (%s)", r.Expected(), reg)
}

// minSamples is the fewest delays a median is compared with its theory
// from.
const minSamples = 10

// ratioCell formats a median delay in delivery times, "1.2T", flagged when
// below the theory's least or more than syncAim times its most; n is the
// number of delays it is the median of, too few of which are not compared.
func ratioCell(x float64, theory dmutex.Range, n int64) (string, bool) {
	if x <= 0 {
		return "-", false
	}
	s := fmt.Sprintf("%.1fT", x)
	if n < minSamples {
		return s + " (few)", false
	}
	if delayFlag(x, theory) != 0 {
		return s + " (!)", true
	}
	return s, false
}

// delayFlag is -1 for a delay below the theory, 1 for one more than
// syncAim times above it, 0 otherwise.
func delayFlag(x float64, theory dmutex.Range) int {
	switch {
	case x < theory.Lo*0.95:
		return -1
	case !math.IsInf(theory.Hi, 1) && x > syncAim*math.Max(theory.Hi, 1):
		return 1
	}
	return 0
}

// offRegime reports whether messages per entry lie outside the theory for
// the run's load, by more than a tenth (a run is never all light or all
// heavy).
func offRegime(r *coordinator.MutexResult) bool {
	if r.Entries == 0 || r.Failure != nil || r.Regime() == "mixed" {
		return false
	}
	e := r.Expected()
	return r.MessagesPerEntry < e.Lo*0.9 || !math.IsInf(e.Hi, 1) && r.MessagesPerEntry > e.Hi*1.1
}

// boundsText says what a run's messages per entry must lie within.
func boundsText(b dmutex.Range) string {
	if math.IsInf(b.Hi, 1) {
		return "at least " + num(b.Lo)
	}
	return b.String()
}

func tRange(rg dmutex.Range) string {
	if rg.Exact() {
		return num(rg.Lo) + "T"
	}
	return num(rg.Lo) + "-" + num(rg.Hi) + "T"
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func loadCell(r *coordinator.MutexResult) string {
	if r.Entries == 0 {
		return "-"
	}
	return percentOf(r.Load)
}

func outcomeMutex(r *coordinator.MutexResult) string {
	var s []string
	switch {
	case r.Violations > 0 || r.Overlaps > 0:
		s = append(s, "VIOLATED")
	case !r.MessagesMatch:
		s = append(s, "MESSAGES OFF THEORY")
	case r.Algorithm.GrantsInOrder() && r.Inversions > 0:
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
	belowOne, slow, slowResponse := false, 0, false
	for _, r := range runs {
		syncSlow := r.SyncDelay.Count >= minSamples && delayFlag(r.SyncRatio(), r.Cost.Sync) > 0
		respSlow := r.Uncontended.Count >= minSamples && delayFlag(responseRatio(r), r.Cost.Response) > 0
		if syncSlow || respSlow {
			slow = max(slow, r.Procs)
		}
		slowResponse = slowResponse || respSlow
		if r.Uncontended.Count >= minSamples && delayFlag(responseRatio(r), r.Cost.Response) < 0 {
			belowOne = true
		}
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
				"%s broke mutual exclusion: %s times a process entered while another was inside (the interval log shows %s overlaps; the occupancy counter saw up to %s inside at once). The check does not trust the algorithm: every process marks its own entry and exit in shared memory.",
				name, count(max(r.Violations, int64(r.Overlaps))), count(r.Violations), count(int64(r.MaxInside))))
			if r.Algorithm == dmutex.Broken {
				lines = append(lines, "Why: this variant replies to every request at once instead of deferring while it is inside or ahead, so two requesters both collect N-1 replies and both enter.")
			}
		case r.Failure == nil && r.Entries > 0 && len(runs) == 1:
			s := fmt.Sprintf("%s kept mutual exclusion: %s entries, never two processes inside at once", name, count(r.Entries))
			switch {
			case r.Cost.Exact() && r.MessagesMatch:
				s += fmt.Sprintf("; every entry cost exactly %s messages", theoryFor(r))
			case r.MessagesMatch:
				s += fmt.Sprintf("; %.2f messages per entry, within the theory's bounds (%s)", r.MessagesPerEntry, boundsText(r.Bounds))
			}
			if r.Algorithm.GrantsInOrder() && r.Inversions == 0 {
				s += ", and entries were granted in timestamp order"
			}
			lines = append(lines, s+".")
		}
		if !r.MessagesMatch && r.Failure == nil {
			lines = append(lines, fmt.Sprintf("%s sent %s messages for %s entries, outside the theory's bounds (%s per entry): a bug, please report it.",
				name, count(r.Messages), count(r.Entries), boundsText(r.Bounds)))
		}
		if r.Algorithm.GrantsInOrder() && r.Inversions > 0 {
			lines = append(lines, fmt.Sprintf("%s granted %s pairs of entries out of timestamp order: a bug, please report it.", name, count(r.Inversions)))
		}
		if line := offTheory(name, r); line != "" {
			lines = append(lines, line)
		}
		if x := r.SyncRatio(); x > 0 && len(runs) == 1 {
			lo := r.Cost.Sync.Lo
			switch {
			case x < lo*0.95:
				belowOne = true
				lines = append(lines, fmt.Sprintf("A waiting process got in %s after the previous one left: %.1fx one message's delivery time, less than the theory's %s.",
					dur(r.SyncDelay.P50), x, messagesT(r.Cost.Sync)))
			case x <= syncAim*math.Max(r.Cost.Sync.Hi, 1):
				lines = append(lines, fmt.Sprintf("A waiting process got in %s after the previous one left: %.1fx one message's delivery time, as the theory's %s says (%s).",
					dur(r.SyncDelay.P50), x, messagesT(r.Cost.Sync), handoff(r.Algorithm)))
			default:
				lines = append(lines, fmt.Sprintf("A waiting process got in %s after the previous one left: %.1fx one message's delivery time, more than the theory's %s: the rest is the scheduler waking the next process, with %d processes sharing the CPUs.",
					dur(r.SyncDelay.P50), x, messagesT(r.Cost.Sync), r.Procs))
			}
		} else if x > 0 && x < r.Cost.Sync.Lo*0.95 {
			belowOne = true
		}
		if r.Rejected > 0 {
			lines = append(lines, fmt.Sprintf("%s: the processes rejected %s malformed or unexpected messages and carried on; the first: %s.",
				name, count(r.Rejected), firstProblem(r)))
		}
	}
	if slow > 0 && (len(runs) > 1 || slowResponse) {
		lines = append(lines, fmt.Sprintf("Delays flagged (!) above twice their theory are the scheduler's: with up to %d processes sharing the CPUs, a process that a message wakes often waits for a CPU before it can act, and the theory counts messages only.", slow))
	}
	if belowOne {
		lines = append(lines, "How a delay can come out below its theory: T is half a ping's round trip between P0 and one neighbour, at other moments; a round trip pays for waking two sleeping processes, while a process waiting for a message is often still awake, or on the other CPU, when it arrives. Read a ratio near 1 as \"one message\", near 2 as \"two\", not as precise figures.")
	}
	if len(runs) > 1 {
		lines = append(lines, compare(runs)...)
	}
	return lines
}

// offTheory explains a run whose messages per entry are outside what the
// analysis gives for its load, though within its hard bounds.
func offTheory(name string, r *coordinator.MutexResult) string {
	if r.Failure != nil || !r.MessagesMatch || r.Entries == 0 || r.Cost.Exact() {
		return ""
	}
	reg := r.Regime()
	if !offRegime(r) {
		return ""
	}
	why := ""
	switch r.Algorithm {
	case dmutex.TokenRing:
		why = "the token also passed processes that did not want it at that moment"
	case dmutex.Raymond:
		why = "under load a request often finds the token nearby, or a neighbour that already asked for it"
	case dmutex.Maekawa:
		why = "how often a vote has to be asked back depends on how requests cross, not only on the load"
	case dmutex.RoucairolCarvalho, dmutex.SuzukiKasami:
		why = "a process that entered last keeps what it needs and enters again for free"
	}
	s := fmt.Sprintf("%s: %.2f messages per entry, outside the %s-load figure %s (%s of the requests found the critical section busy)",
		name, r.MessagesPerEntry, reg, r.Expected(), percentOf(r.Load))
	if why != "" {
		s += ": " + why
	}
	return s + "."
}

// handoff says what the theory's synchronization delay consists of.
func handoff(a dmutex.Algorithm) string {
	switch a {
	case dmutex.RicartAgrawala, dmutex.RoucairolCarvalho:
		return "the one deferred reply is the whole handoff"
	case dmutex.Lamport:
		return "the one release is the whole handoff"
	case dmutex.Central:
		return "a release to the server, a grant from it"
	case dmutex.Maekawa:
		return "a release to the shared voter, a vote from it"
	case dmutex.SuzukiKasami:
		return "the token, sent straight to the next in its queue"
	case dmutex.Raymond:
		return "the token, along the tree path to the next"
	case dmutex.TokenRing:
		return "the token, around the ring to the next that wants it"
	}
	return "the messages of one handoff"
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
	bad := 0
	for _, r := range runs {
		if !r.Ok() {
			bad++
		}
	}
	if bad == 0 {
		lines = append(lines, fmt.Sprintf("Every run kept mutual exclusion (%s entries in all), with messages per entry within each theory's bounds.", count(totalEntries(runs))))
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
	lines = append(lines, "Trade-offs: the permission algorithms (Ricart-Agrawala, Lamport, Roucairol-Carvalho) need no coordinator but ask everyone and stop if any process dies; Maekawa asks only a quorum of about 2sqrt(N); the token algorithms (Suzuki-Kasami, Raymond, the ring) cost little under load but lose the token with its holder; the central server costs 3 messages but is a single point of failure and of load. `mplock mutex --list-algorithms` gives each one's theory and source.")
	return lines
}

func totalEntries(runs []*coordinator.MutexResult) int64 {
	var n int64
	for _, r := range runs {
		n += r.Entries
	}
	return n
}

// MutexLogHeader introduces a run's live event log.
func MutexLogHeader(w io.Writer, a dmutex.Algorithm, procs int) {
	fmt.Fprintf(w, "Events of %s, %d processes, as they happen (seconds since the start, the process's clock, event):\n", a.Title(), procs)
}

// MutexLogLine writes one entry of a run's live log.
func MutexLogLine(w io.Writer, e coordinator.MutexLogEntry) {
	switch {
	case e.Event != nil:
		fmt.Fprintf(w, "  %s  ts %-6d  %s\n", fmtSince(e.At), e.Event.TS, e.Event)
	case e.Problem != nil:
		fmt.Fprintf(w, "  %s  %-9s  %s\n", fmtSince(e.At), e.Problem.Kind, e.Problem.Text)
	}
}

func fmtSince(d time.Duration) string {
	return fmt.Sprintf("%10.6f", d.Seconds())
}
