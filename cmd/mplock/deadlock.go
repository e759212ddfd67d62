package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"mplock/coordinator"
	"mplock/report"
)

func deadlockCommand() *cli.Command {
	return &cli.Command{
		Name:      "deadlock",
		Usage:     "reverse-order lock holders across real TCP lock servers: a real deadlock, detected, explained, resolved or prevented",
		UsageText: "mplock deadlock [--procs N] [--strategy reverse|ordered|trylock] [--resolve abort|victim|none] [options]",
		Description: `Starts N lock servers (mplock serve, one lock each: lock1 on port 6000,
lock2 on 6001, ...) and N holder processes. Holder Pi takes lock i, holds it,
then asks for lock i+1 (and PN for lock1): every holder holds the lock the
previous one asks for. Each waits in its server's queue for a real grant, so
the deadlock is real. (The Python original it comes from only looked
deadlocked: its "lock" was a TCP connect(), which the listen backlog accepts
without any grant, so both processes "got lock2".)

Meanwhile a detector asks every server for its holders and waiters (every
--detect-every), merges the answers into one wait-for graph keyed by each
process's name and pid, and looks for a cycle. A cycle is reported only when a
second look shows every wait and every hold unchanged (same waits, same
fencing tokens): the servers are asked one after the other, and a cycle pieced
together from answers given at different moments may never have existed. The
report says who holds what since when, who waits for what since when, when the
cycle formed, and how long detection took.

Strategies (--strategy):
  reverse  ` + coordinator.Reverse.Description() + `
  ordered  ` + coordinator.Ordered.Description() + `
  trylock  ` + coordinator.TryLock.Description() + `

Resolutions (--resolve):
  abort    ` + coordinator.Abort.Description() + `
  victim   ` + coordinator.Victim.Description() + `
  none     ` + coordinator.None.Description() + `

Examples:
  mplock deadlock                          # 2 servers (6000, 6001), 2 processes, reverse order: deadlock
  mplock deadlock --procs 5                # a ring of 5 processes over 5 servers
  mplock deadlock --strategy ordered       # global lock order: completes, no deadlock
  mplock deadlock --strategy trylock       # timed acquires, backoff with jitter: completes
  mplock deadlock --resolve victim         # the detector kills one process; the others finish
  mplock deadlock --dot waits.dot --json   # the wait-for graph for Graphviz, a report for scripts
  mplock deadlock --svg waits.svg          # the same graph drawn (needs Graphviz's dot)
  mplock deadlock --base-port 0            # ports chosen by the kernel

Exit status: 0 when every process finished (no deadlock, or a victim ended it),
1 when a process died, the run did not finish within --timeout, or a port was
in use, 2 for usage errors, 3 when a deadlock was detected and not resolved
(--resolve abort or none), 130 when interrupted. Every server and holder has
exited, and every port is free, whenever mplock deadlock returns.`,
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "procs", Aliases: []string{"n"}, Value: number(coordinator.DefaultDeadlockProcs, 5), Usage: fmt.Sprintf("holder processes and lock servers, 2 to %d", coordinator.MaxDeadlockProcs)},
			&cli.GenericFlag{Name: "base-port", Value: number(coordinator.DefaultDeadlockBasePort, 6000), Usage: "`PORT` of the first lock server, the next ones follow; 0: free ports chosen by the kernel"},
			&cli.StringFlag{Name: "strategy", Aliases: []string{"s"}, Value: coordinator.Reverse.String(), Usage: "reverse, ordered or trylock"},
			&cli.StringFlag{Name: "resolve", Aliases: []string{"r"}, Value: coordinator.Abort.String(), Usage: "what to do about a deadlock: abort, victim or none"},
			&cli.GenericFlag{Name: "hold", Value: seconds(coordinator.DefaultDeadlockHold), Usage: "how long a holder keeps a lock before asking for the next"},
			&cli.GenericFlag{Name: "detect-every", Value: seconds(coordinator.DefaultDetectEvery), Usage: "how often the detector asks every server for its holders and waiters"},
			&cli.GenericFlag{Name: "timeout", Value: seconds(coordinator.DefaultDeadlockTimeout), Usage: "end the run after this long (--resolve none waits this long)"},
			&cli.GenericFlag{Name: "try-timeout", Value: seconds(0), Usage: "trylock: how long a timed acquire waits", DefaultText: "twice --hold, at least 10ms"},
			&cli.GenericFlag{Name: "backoff", Value: seconds(0), Usage: "trylock: base of the random backoff after giving up, doubling per retry", DefaultText: "--hold, at least 1ms"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document instead of the report"},
			&cli.StringFlag{Name: "dot", Usage: "write the wait-for graph in Graphviz's language to `FILE`"},
			&cli.StringFlag{Name: "svg", Usage: "draw the wait-for graph as an SVG `FILE` (needs Graphviz's dot)"},
			&cli.GenericFlag{Name: "seed", Hidden: true, Value: number(0, 1), Usage: "seed of the trylock backoffs"},
		},
		Action: deadlockAction,
	}
}

func deadlockAction(c *cli.Context) error {
	plan, err := deadlockPlan(c)
	if err != nil {
		return err
	}
	if c.String("svg") != "" {
		if _, err := report.DotPath(); err != nil {
			return withCode(exitFailure, fmt.Errorf("deadlock: --svg needs Graphviz's dot command, which is not installed (not in PATH): "+
				"install Graphviz (apt-get install graphviz), or write the graph with --dot FILE and render it elsewhere"))
		}
	}
	out := c.App.Writer
	live := !c.Bool("json")
	if live {
		if err := report.DeadlockHeader(out, plan); err != nil {
			return err
		}
		plan.OnEvent = func(e coordinator.DeadlockEvent) { fmt.Fprintln(out, report.DeadlockEventLine(e)) }
	}
	res, err := coordinator.RunDeadlock(c.Context, plan)
	if err != nil {
		var inUse *coordinator.PortInUseError
		switch {
		case errors.As(err, &inUse):
			return withCode(exitFailure, fmt.Errorf("deadlock: port %d is already in use on %s, so the lock server of %s cannot listen there "+
				"(another mplock deadlock or mplock serve? the Python original?); choose other ports with --base-port, "+
				"or --base-port 0 for free ones chosen by the kernel", inUse.Port, strings.TrimSuffix(inUse.Addr, fmt.Sprintf(":%d", inUse.Port)), inUse.Lock))
		case c.Context.Err() != nil:
			return withCode(exitInterrupted, nil)
		}
		return fmt.Errorf("deadlock: %w", err)
	}
	code, msg := deadlockExit(res)
	d := report.Deadlock{Result: res, ExitCode: code}
	if live {
		err = report.DeadlockSummary(out, d)
	} else {
		err = report.DeadlockJSON(out, d)
	}
	if err != nil {
		return err
	}
	if err := writeGraph(c, res); err != nil {
		return err
	}
	if msg == "" {
		return withCode(code, nil)
	}
	return withCode(code, errors.New(msg))
}

// deadlockPlan turns the flags into a plan, checking everything before
// anything starts.
func deadlockPlan(c *cli.Context) (coordinator.DeadlockPlan, error) {
	var p coordinator.DeadlockPlan
	if c.Args().Present() {
		return p, usageErrorf("deadlock: unexpected argument %q (the number of processes is --procs N)", c.Args().First())
	}
	p.Procs = c.Int("procs")
	switch n := p.Procs; {
	case n == 1:
		return p, usageErrorf("deadlock: --procs 1: a deadlock needs at least 2 processes, each holding a lock the next one "+
			"asks for (one process asking again for a lock its session holds gets ERR held, not a wait); want 2 to %d", coordinator.MaxDeadlockProcs)
	case n < 1:
		return p, usageErrorf("deadlock: --procs %d: want 2 to %d processes", n, coordinator.MaxDeadlockProcs)
	case n > coordinator.MaxDeadlockProcs:
		return p, usageErrorf("deadlock: --procs %d: want 2 to %d (each process has its own lock server and port: %d processes "+
			"on this machine would show the scheduler, not the deadlock)", n, coordinator.MaxDeadlockProcs, 2*n)
	}
	p.BasePort = c.Int("base-port")
	if last := p.BasePort + p.Procs - 1; p.BasePort < 0 || last > 65535 {
		return p, usageErrorf("deadlock: --base-port %d: %d servers need ports %d to %d; want 1 to %d, or 0 for free ports chosen by the kernel",
			p.BasePort, p.Procs, p.BasePort, last, 65535-p.Procs+1)
	}
	var err error
	if p.Strategy, err = coordinator.ParseStrategy(c.String("strategy")); err != nil {
		return p, usageErrorf("deadlock: --strategy %q: want reverse, ordered or trylock", c.String("strategy"))
	}
	if p.Resolve, err = coordinator.ParseResolution(c.String("resolve")); err != nil {
		return p, usageErrorf("deadlock: --resolve %q: want abort, victim or none", c.String("resolve"))
	}
	p.Hold, p.DetectEvery, p.Timeout = c.Duration("hold"), c.Duration("detect-every"), c.Duration("timeout")
	p.TryTimeout, p.Backoff, p.Seed = c.Duration("try-timeout"), c.Duration("backoff"), c.Uint64("seed")
	switch {
	case p.Hold < 0:
		return p, usageErrorf("deadlock: --hold %v: must not be negative", p.Hold)
	case p.DetectEvery < coordinator.MinDetectEvery || p.DetectEvery > coordinator.MaxDetectEvery:
		return p, usageErrorf("deadlock: --detect-every %v: want %v to %v", p.DetectEvery, coordinator.MinDetectEvery, coordinator.MaxDetectEvery)
	case p.Timeout <= 0:
		return p, usageErrorf("deadlock: --timeout %v: must be positive", p.Timeout)
	case p.TryTimeout < 0 || p.Backoff < 0:
		return p, usageErrorf("deadlock: --try-timeout and --backoff must not be negative")
	case (c.IsSet("try-timeout") || c.IsSet("backoff")) && p.Strategy != coordinator.TryLock:
		return p, usageErrorf("deadlock: --try-timeout and --backoff apply to --strategy trylock only")
	}
	if err := p.Validate(); err != nil {
		return p, usageErrorf("deadlock: %v", strings.TrimPrefix(err.Error(), coordinator.ErrPlan.Error()+": "))
	}
	return p, nil
}

// deadlockExit maps a run to the exit status the help text promises, and
// the one-line message for stderr ("" when the report says it all).
func deadlockExit(r *coordinator.DeadlockResult) (int, string) {
	switch {
	case r.Interrupted:
		return exitInterrupted, ""
	case r.Failure != "":
		return exitFailure, "deadlock: " + r.Failure
	case r.Deadlock != nil && r.Plan.Resolve != coordinator.Victim:
		var procs []string
		for _, e := range r.Deadlock.Cycle {
			procs = append(procs, e.Proc)
		}
		if n := len(procs); n > 6 {
			procs = []string{fmt.Sprintf("%s, %s, ... %s (%d processes)", procs[0], procs[1], procs[n-1], n)}
		}
		what := "aborted"
		if r.Plan.Resolve == coordinator.None {
			what = "left alone until --timeout"
		}
		return exitDeadlock, fmt.Sprintf("deadlock detected: %s wait for each other in a cycle; %s", joinAnd(procs), what)
	case r.Deadlock != nil && r.Completed() < len(r.Holders)-1:
		return exitFailure, "deadlock: a victim was killed but the others did not all finish"
	case r.TimedOut:
		return exitFailure, fmt.Sprintf("deadlock: --timeout %v: the holders did not finish, and no deadlock was found", r.Plan.Timeout)
	}
	return exitOK, ""
}

// writeGraph writes --dot and --svg.
func writeGraph(c *cli.Context, res *coordinator.DeadlockResult) error {
	dotFile, svgFile := c.String("dot"), c.String("svg")
	if dotFile == "" && svgFile == "" {
		return nil
	}
	var b bytes.Buffer
	if err := report.DeadlockDOT(&b, res); err != nil {
		return err
	}
	if dotFile != "" {
		if err := os.WriteFile(dotFile, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("deadlock: --dot: %w", err)
		}
	}
	if svgFile != "" {
		if err := report.RenderSVG(b.Bytes(), svgFile); err != nil {
			return fmt.Errorf("deadlock: --svg: %w", err)
		}
	}
	return nil
}

// joinAnd joins names as English: "P1 and P2", "P1, P2 and P3".
func joinAnd(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
