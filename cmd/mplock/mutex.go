package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/machine"
	"mplock/report"
	"mplock/worker"
)

func mutexCommand() *cli.Command {
	cmd := &cli.Command{
		Name:      "mutex",
		Usage:     "N real processes take turns in a critical section with Ricart-Agrawala (or one of seven other algorithms), checked and measured; or every interleaving of a small run, explored",
		UsageText: "mplock mutex [PROCS [SECONDS]] [--procs N[,N...]] [--duration D] [--algorithm A[,A...]] [options]\n   mplock mutex --explore [--algorithm A] [--procs N] [--entries E]\n   mplock mutex --list-algorithms",
		Description: `Starts PROCS real peer processes, each with its own listener (a Unix socket
in a private run directory, or loopback TCP), connects them, and lets them
compete for one critical section for SECONDS with Ricart-Agrawala's
algorithm: Lamport timestamps, a request to every other process, replies
deferred by whoever is inside or ahead, entry after N-1 replies.

Every peer also marks its entry and exit in shared memory, and mplock checks
that record independently of the algorithm: two processes inside at once is
a violation. The report gives entries per second, the load (how often a
request found the critical section busy), waits, messages per entry against
the algorithm's theory for that load, the synchronization delay and the
light-load response time against one message's delivery time measured in
the same run, and inversions (pairs of entries granted out of timestamp
order).

Algorithms (--algorithm; --list-algorithms gives each one's theory and paper):
  ricart-agrawala     ask every other process; enter after N-1 replies (default)
  lamport             a request queue at every process; 3(N-1) messages
  roucairol-carvalho  Ricart-Agrawala that keeps permissions: 0 to 2(N-1)
  maekawa             votes from a grid quorum of about 2sqrt(N); cannot deadlock
  suzuki-kasami       a broadcast request, a token that carries its queue: 0 or N
  raymond             a token on a tree, asked for along it: about log N
  central             ask one lock server process; it grants in arrival order
  token-ring          hold the token to enter; it travels around the ring
  all                 each of them in turn, side by side in one table

--explore runs no processes: it checks the state machines in one process
under every order of message delivery and request timing, for a small run
(3 processes making 2 entries each by default), and proves mutual
exclusion, freedom from deadlock and that every request is served, or
prints the shortest counterexample as a message-sequence chart.

Examples:
  mplock mutex 15 10                         # 15 processes for 10 seconds, as the original
  mplock mutex --procs 15 --duration 10s --cs 5ms --think 0-20ms
  mplock mutex --procs 8 --algorithm central # the same workload through one lock server
  mplock mutex --procs 5 --duration 3s --verbose   # every request, reply, deferral (and why), entry, exit
  mplock mutex --procs 15 --duration 10s --json
  mplock mutex --procs 5 --timeline cs.svg   # who held the critical section when
  mplock mutex --procs 5 --duration 5s --timeline cs.svg --window 20ms   # a 20ms window of it, readable
  mplock mutex --algorithm lamport,ricart-agrawala,maekawa,suzuki-kasami,raymond --procs 9 --duration 5s
  mplock mutex --algorithm all --procs 4,9,16 --duration 1s --svg msgs.svg   # messages per entry against N
  mplock mutex --explore --algorithm maekawa --procs 3 --entries 2   # every interleaving; a counterexample if any
  mplock mutex --list-algorithms

Any run is shortened with --duration (0.2 is enough to see it work).

Exit status: 0 when every check passed (with --explore: every search was
complete and found nothing), 1 when one failed (a violation, messages per
entry outside the theory's bounds, entries out of timestamp order for an
algorithm that grants in it; a counterexample, or a search stopped by
--max-states) or a process died or the run stalled, 2 for usage errors, 130
when interrupted (after printing what finished).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "procs", Aliases: []string{"n"}, Usage: fmt.Sprintf("peer processes, 2 to %d; a comma-separated list runs each size (default %d)", coordinator.MaxMutexProcs, coordinator.DefaultMutexProcs)},
			&cli.GenericFlag{Name: "duration", Aliases: []string{"d"}, Value: positiveSeconds(coordinator.DefaultMutexDuration), Usage: "how long the peers keep asking: a duration (10s) or seconds"},
			&cli.StringFlag{Name: "algorithm", Aliases: []string{"a"}, Value: dmutex.RicartAgrawala.String(), Usage: "an algorithm, a comma-separated list, or all (see --list-algorithms)"},
			&cli.GenericFlag{Name: "cs", Value: seconds(coordinator.DefaultMutexCS), Usage: "time spent inside the critical section (0: leave at once)"},
			&cli.StringFlag{Name: "think", Value: "0-" + coordinator.DefaultMutexThinkMax.String(), Usage: "pause before each request: `MIN-MAX` (uniform) or one duration"},
			&cli.StringFlag{Name: "transport", Value: worker.NetworkUnix, Usage: "unix (sockets in a private directory) or tcp (loopback)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every event of every process as it happens, with its clock and why a reply was deferred"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document instead of the report"},
			&cli.StringFlag{Name: "timeline", Usage: "draw who held the critical section when, as an SVG `FILE`"},
			&cli.StringFlag{Name: "fault", Hidden: true, Usage: "kill:PEER@ENTRIES, stop:PEER@ENTRIES or garbage:PEER"},
			&cli.GenericFlag{Name: "stall-timeout", Hidden: true, Value: seconds(0), Usage: "stop the run when nobody enters for this long while someone waits"},
			&cli.GenericFlag{Name: "seed", Hidden: true, Value: number(0, 1), Usage: "seed of the think times"},
		},
		Action: mutexAction,
	}
	cmd.Flags = append(cmd.Flags, mutexTheoryFlags()...)
	return cmd
}

func mutexAction(c *cli.Context) error {
	if c.Bool("list-algorithms") {
		return listAlgorithms(c)
	}
	if c.Bool("explore") {
		return mutexExplore(c)
	}
	if f := exploreOnlyFlag(c); f != "" {
		return usageErrorf("mutex: --%s is for --explore", f)
	}
	plans, err := mutexPlans(c)
	if err != nil {
		return err
	}
	window, err := parseWindow(c)
	if err != nil {
		return err
	}
	progress := newStatusLine(c.App.ErrWriter)
	m := report.Mutex{Machine: machine.Collect(version())}
	var runErr error
	// --verbose streams the events as they happen: to stdout, or to
	// stderr when stdout carries the JSON document. The progress line
	// stays off then: the events are the progress.
	logw := c.App.Writer
	if c.Bool("json") {
		logw = c.App.ErrWriter
	}
	for i, plan := range plans {
		if plan.Verbose {
			if i > 0 {
				fmt.Fprintln(logw)
			}
			report.MutexLogHeader(logw, plan.Algorithm, plan.Procs)
			plan.Log = func(e coordinator.MutexLogEntry) { report.MutexLogLine(logw, e) }
		} else {
			plan.Progress = func(s coordinator.MutexProgress) {
				if s.Elapsed >= 300*time.Millisecond {
					progress.draw(false, func() string {
						return fmt.Sprintf("%s: %s entries, %.1fs of %v", s.Algorithm, humanCount(int(s.Entries)), s.Elapsed.Seconds(), s.Planned)
					})
				}
			}
		}
		res, err := coordinator.RunMutex(c.Context, plan)
		progress.clear()
		if err != nil {
			if errors.Is(err, coordinator.ErrPlan) {
				return usageErrorf("mutex: %v", err)
			}
			if c.Context.Err() != nil {
				break
			}
			runErr = fmt.Errorf("mutex: %v: %w", plan.Algorithm, err)
			break
		}
		m.Runs = append(m.Runs, res)
		if res.Interrupted || res.Failure != nil {
			break
		}
	}
	if len(plans) > 0 && plans[0].Verbose {
		fmt.Fprintln(logw)
	}
	if err := writeMutex(c, m, window); err != nil {
		return err
	}
	return mutexExit(m, runErr, c.Context.Err() != nil)
}

// mutexPlans turns the arguments and flags into the runs to make, checking
// every one before anything starts.
func mutexPlans(c *cli.Context) ([]coordinator.MutexPlan, error) {
	args, err := trailingFlags(c, false)
	if err != nil {
		return nil, err
	}
	if len(args) > 2 {
		return nil, usageErrorf("mutex: too many arguments %q: want at most PROCS and SECONDS", args)
	}
	procsText, dur := c.String("procs"), c.Duration("duration")
	if len(args) > 0 {
		if c.IsSet("procs") {
			return nil, usageErrorf("mutex: give the number of processes once: as PROCS or as --procs")
		}
		procsText = args[0]
	}
	if len(args) > 1 {
		if c.IsSet("duration") {
			return nil, usageErrorf("mutex: give the duration once: as SECONDS or as --duration")
		}
		// The original program's form, mplock mutex 15 10, read as
		// --duration reads its value and refused in the same words.
		v := positiveSeconds(0)
		if err := v.Set(args[1]); err != nil {
			return nil, usageErrorf("mutex: SECONDS %q: %v", args[1], err)
		}
		dur = v.d
	}
	procs := []int{coordinator.DefaultMutexProcs}
	if procsText != "" {
		var err error
		if procs, err = parseProcs(procsText); err != nil {
			return nil, err
		}
	}
	algs, err := parseAlgorithms(c.String("algorithm"))
	if err != nil {
		return nil, err
	}
	thinkMin, thinkMax, err := parseThink(c.String("think"))
	if err != nil {
		return nil, err
	}
	if c.Duration("cs") < 0 {
		return nil, usageErrorf("mutex: --cs %v: must not be negative", c.Duration("cs"))
	}
	network := c.String("transport")
	if network != worker.NetworkUnix && network != worker.NetworkTCP {
		return nil, usageErrorf("mutex: --transport %q: want unix or tcp", network)
	}
	var fault *coordinator.MutexFault
	if s := c.String("fault"); s != "" {
		if fault, err = parseFault(s); err != nil {
			return nil, err
		}
	}
	var plans []coordinator.MutexPlan
	for _, n := range procs {
		for _, a := range algs {
			p := coordinator.MutexPlan{
				Algorithm: a, Procs: n, Duration: dur, CS: c.Duration("cs"),
				ThinkMin: thinkMin, ThinkMax: thinkMax, Network: network,
				Verbose: c.Bool("verbose"), Fault: fault,
				StallTimeout: c.Duration("stall-timeout"), Seed: c.Uint64("seed"),
			}
			if err := p.Validate(); err != nil {
				return nil, usageErrorf("mutex: %v", strings.TrimPrefix(err.Error(), coordinator.ErrPlan.Error()+": "))
			}
			plans = append(plans, p)
		}
	}
	return plans, nil
}

func parseProcs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, usageErrorf("mutex: %q is not a number of processes (want 2 to %d)", f, coordinator.MaxMutexProcs)
		}
		if n < 2 || n > coordinator.MaxMutexProcs {
			return nil, usageErrorf("mutex: %d processes: want 2 to %d (mutual exclusion needs two; a full mesh of more than %d is not a test of the algorithm but of the scheduler)", n, coordinator.MaxMutexProcs, coordinator.MaxMutexProcs)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseAlgorithms(s string) ([]dmutex.Algorithm, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return dmutex.Algorithms(), nil
	}
	var out []dmutex.Algorithm
	for _, f := range strings.Split(s, ",") {
		a, err := dmutex.ParseAlgorithm(f)
		if err != nil {
			return nil, usageErrorf("mutex: --algorithm %q: want %s, a comma-separated list of them, or all (--list-algorithms explains each)", f, dmutex.Names())
		}
		if slices.Contains(out, a) {
			return nil, usageErrorf("mutex: --algorithm %q: %s is listed twice", s, a)
		}
		out = append(out, a)
	}
	return out, nil
}

func parseThink(s string) (lo, hi time.Duration, err error) {
	loText, hiText, isRange := strings.Cut(s, "-")
	if !isRange {
		hiText = loText
	}
	// "0-20ms": the unit of the upper bound applies to a bare lower bound.
	parse := func(t string) (time.Duration, error) {
		if d, err := time.ParseDuration(t); err == nil {
			return d, nil
		}
		if t == "0" {
			return 0, nil
		}
		return 0, fmt.Errorf("bad")
	}
	if lo, err = parse(loText); err != nil {
		if v, ferr := strconv.ParseFloat(loText, 64); ferr == nil && isRange {
			unit := strings.TrimLeft(hiText, "0123456789.")
			lo, err = time.ParseDuration(strconv.FormatFloat(v, 'f', -1, 64) + unit)
		}
	}
	if err == nil {
		hi, err = parse(hiText)
	}
	if err != nil || lo < 0 || hi < lo {
		return 0, 0, usageErrorf("mutex: --think %q: want MIN-MAX (0-20ms) or one duration (5ms)", s)
	}
	return lo, hi, nil
}

func parseFault(s string) (*coordinator.MutexFault, error) {
	bad := usageErrorf("mutex: --fault %q: want kill:PEER@ENTRIES, stop:PEER@ENTRIES or garbage:PEER", s)
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return nil, bad
	}
	f := &coordinator.MutexFault{}
	switch kind {
	case "kill":
		f.Kind = coordinator.FaultKill
	case "stop":
		f.Kind = coordinator.FaultStop
	case "garbage":
		f.Kind = coordinator.FaultGarbage
	default:
		return nil, bad
	}
	peer, after, hasAfter := strings.Cut(rest, "@")
	peer = strings.TrimPrefix(strings.ToUpper(peer), "P")
	if strings.EqualFold(peer, "server") {
		f.Peer = dmutex.ServerID
	} else {
		n, err := strconv.Atoi(peer)
		if err != nil {
			return nil, bad
		}
		f.Peer = n
	}
	if hasAfter {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil {
			return nil, bad
		}
		f.After = n
	}
	return f, nil
}

func writeMutex(c *cli.Context, m report.Mutex, window time.Duration) error {
	out := c.App.Writer
	if c.Bool("json") {
		if err := report.MutexJSON(out, m); err != nil {
			return err
		}
	} else if err := report.MutexText(out, m); err != nil {
		return err
	}
	if file := c.String("timeline"); file != "" && len(m.Runs) > 0 {
		if err := report.MutexTimeline(file, m, report.TimelineOptions{Window: window}); err != nil {
			return fmt.Errorf("mutex: --timeline: %w", err)
		}
	}
	if file := c.String("svg"); file != "" && len(m.Runs) > 0 {
		var b bytes.Buffer
		if err := report.MutexChart(&b, m, chartFormat(file)); err != nil {
			return fmt.Errorf("mutex: --svg: %w", err)
		}
		if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("mutex: --svg: %w", err)
		}
	}
	return nil
}

// chartFormat is PNG for a .png file, else SVG.
func chartFormat(file string) report.ChartFormat {
	if strings.EqualFold(filepath.Ext(file), ".png") {
		return report.PNG
	}
	return report.SVG
}

// mutexExit maps the runs to the exit status the help text promises.
func mutexExit(m report.Mutex, runErr error, interrupted bool) error {
	if interrupted {
		return withCode(exitInterrupted, nil)
	}
	if runErr != nil {
		return runErr
	}
	for _, r := range m.Runs {
		if r.Interrupted {
			return withCode(exitInterrupted, nil)
		}
		if r.Failure != nil {
			return withCode(exitFailure, fmt.Errorf("mutex: %v: %s", r.Algorithm, r.Failure.Explanation))
		}
	}
	for _, r := range m.Runs {
		if !r.Ok() {
			return withCode(exitFailure, nil)
		}
	}
	return nil
}
