package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/coordinator"
	"mplock/lock"
	"mplock/machine"
	"mplock/report"
	"mplock/worker"
)

// defaultLockedKinds are compared with the unlocked run when no kind is given:
// a file lock and a semaphore.
func defaultLockedKinds() []lock.Kind { return []lock.Kind{lock.Flock, lock.Sem} }

func bankCommand() *cli.Command {
	return &cli.Command{
		Name:      "bank",
		Usage:     "worker processes deposit and withdraw on one shared balance, with and without a lock",
		UsageText: "mplock bank [--lock | --no-lock] [--kind KINDS] [--workers N] [--ops N | --duration D] [options]",
		Description: `Starts real worker processes that share one balance in an mmap'd region.
Even-numbered workers deposit, odd ones withdraw: each operation reads the
balance, adds or subtracts --amount, and writes it back. Without a lock, two
workers' read-modify-writes interleave and updates are lost; with any lock,
none is. The report gives, per run: the final and expected balance, lost
updates (exact), throughput, lock acquisition latency, how often the lock
changed hands, fairness, and each worker's pid.

With neither --lock nor --no-lock, runs unlocked, then with flock and sem,
and prints them side by side.

Examples:
  mplock bank                                  # unlocked vs flock vs sem, with a verdict
  mplock bank --no-lock                        # only the race: lost updates
  mplock bank --lock --kind sem                # only the futex semaphore
  mplock bank --lock --kind all --workers 4 --ops 200000 --json
  mplock bank --lock --kind flock --lock-file ./bank.lock   # share the lock with flock(1)
  mplock bank --no-lock --hold 100us --ops 1000 # a wider window: more updates are lost
  mplock bank --lock --kind all --hold 0       # the locks alone, with an empty critical section
  mplock bank --lock --kind sem,spin --duration 2s --csv
  mplock bank --trace race.svg                 # the lost update of this run, drawn
  mplock bank --list-kinds

Exit status: 0 when every locked run was consistent, 1 when one lost updates
or a worker failed, 2 for usage errors, 130 when interrupted (after printing
what finished).`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "lock", Usage: "run only with locks: the kinds from --kind, or flock and sem"},
			&cli.BoolFlag{Name: "no-lock", Usage: "run only without a lock, to show lost updates"},
			&cli.StringFlag{Name: "kind", Aliases: []string{"k"}, Usage: "comma-separated lock `KINDS`, or all (see --list-kinds)"},
			&cli.GenericFlag{Name: "workers", Aliases: []string{"w"}, Value: number(coordinator.DefaultBankWorkers, 4), Usage: "worker `N` processes; even ones deposit, odd ones withdraw (1 to 256)"},
			&cli.GenericFlag{Name: "ops", Aliases: []string{"n"}, Value: number(0, coordinator.DefaultBankOps), DefaultText: fmt.Sprintf("%d, or none with --duration", coordinator.DefaultBankOps), Usage: "operations per worker"},
			&cli.GenericFlag{Name: "duration", Aliases: []string{"d"}, Value: seconds(0), DefaultText: "none: --ops", Usage: "run each kind for this long instead of --ops"},
			&cli.GenericFlag{Name: "amount", Value: number(coordinator.DefaultBankAmount, 10), Usage: "money per deposit or withdrawal"},
			&cli.GenericFlag{Name: "initial", Value: number(coordinator.DefaultBankInitial, 1000), Usage: "starting balance"},
			&cli.GenericFlag{Name: "think", Value: seconds(0), Usage: "pause before each operation, outside the lock (below 20µs: spin; above: sleep)"},
			&cli.GenericFlag{Name: "hold", Value: seconds(coordinator.DefaultBankHold), Usage: "work inside the lock, between reading and writing the balance: the window in which an unlocked update is lost (0: measure the lock alone)"},
			&cli.StringFlag{Name: "lock-file", Usage: "lock `FILE` for flock and fcntl (kept); default: a private file, removed after"},
			&cli.StringFlag{Name: "shm-name", Usage: "create the region as /dev/shm/`NAME` (removed after) instead of an anonymous memfd"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document instead of the table"},
			&cli.BoolFlag{Name: "csv", Usage: "print CSV, one row per run, instead of the table"},
			&cli.BoolFlag{Name: "list-kinds", Usage: "list the lock kinds and exit"},
			&cli.BoolFlag{Name: "no-latency", Usage: "do not time lock acquisitions (to measure what timing costs)"},
			&cli.StringFlag{Name: "trace", Usage: "draw each run's traced operations as an SVG `FILE`: the unlocked run's lost update, the locked runs' same operations one at a time"},
			&cli.BoolFlag{Name: "no-trace", Usage: "do not record each worker's latest operations (to measure what tracing costs; no lost update is shown then)"},
			&cli.BoolFlag{Name: "pin", Usage: "bind each worker to its own CPU (worker i to the i-th allowed CPU), so that workers contend instead of taking turns on one CPU (on a quiet machine: a pinned worker cannot leave a busy CPU)"},
			&cli.StringFlag{Name: "kill-worker", Hidden: true, Usage: "SLOT:OP: that worker SIGKILLs itself while holding the lock at that operation"},
		},
		Action: bankAction,
	}
}

func bankAction(c *cli.Context) error {
	out := c.App.Writer
	if c.Bool("list-kinds") {
		return report.BankKinds(out)
	}
	if c.Args().Present() {
		return usageErrorf("bank: unexpected argument %q", c.Args().First())
	}
	kinds, err := bankKinds(c)
	if err != nil {
		return err
	}
	if c.Bool("json") && c.Bool("csv") {
		return usageErrorf("bank: --json and --csv: choose one")
	}
	traceFile := c.String("trace")
	if traceFile != "" {
		if c.Bool("no-trace") {
			return usageErrorf("bank: --trace and --no-trace: choose one")
		}
		if err := checkOutputDir(traceFile); err != nil {
			return usageErrorf("bank: --trace: %v", err)
		}
	}
	plan := coordinator.BankPlan{
		Workers: c.Int("workers"), Ops: c.Int64("ops"), Duration: c.Duration("duration"),
		Amount: c.Int64("amount"), Initial: c.Int64("initial"),
		Think: c.Duration("think"), Hold: c.Duration("hold"),
		LockFile: c.String("lock-file"), ShmName: c.String("shm-name"),
		NoLatency: c.Bool("no-latency"),
		Trace:     !c.Bool("no-trace"),
		Pin:       c.Bool("pin"),
		Log:       c.App.ErrWriter,
	}
	if c.IsSet("workers") && plan.Workers == 0 {
		return usageErrorf("bank: --workers 0: want 1 to %d", coordinator.MaxBankWorkers)
	}
	if s := c.String("kill-worker"); s != "" {
		k, err := parseKillAt(s)
		if err != nil {
			return err
		}
		plan.KillAt = k
	}
	// Check the plan once for every kind before starting anything, so a bad
	// flag fails before the first run and not in the middle.
	for _, k := range kinds {
		p := plan
		p.Kind = k
		if err := p.Validate(); err != nil {
			return usageErrorf("bank: %v", strings.TrimPrefix(err.Error(), coordinator.ErrPlan.Error()+": "))
		}
	}

	progress := newStatusLine(c.App.ErrWriter)
	plan.Progress = func(s coordinator.BankProgress) {
		// Short runs end before a line would be worth reading.
		if s.Elapsed >= 300*time.Millisecond {
			progress.draw(false, func() string { return bankProgressLine(s) })
		}
	}
	b := report.Bank{Machine: machine.Collect(version())}
	if !plan.NoLatency {
		clk := worker.MeasureClock()
		b.Clock = &clk
	}
	var runErr error
	for _, k := range kinds {
		p := plan
		p.Kind = k
		res, err := coordinator.RunBank(c.Context, p)
		progress.clear()
		if err != nil {
			if errors.Is(err, coordinator.ErrPlan) {
				return usageErrorf("bank: %v", err)
			}
			runErr = fmt.Errorf("bank: %s: %w", k, err)
			break
		}
		b.Runs = append(b.Runs, res)
		if res.Interrupted {
			break
		}
	}
	if traceFile != "" && len(b.Runs) > 0 {
		if err := writeBankTrace(traceFile, b); err != nil {
			return err
		}
		b.TraceFile = traceFile
	}
	if err := writeBank(c, out, b); err != nil {
		return err
	}
	return bankExit(b, runErr, c.Context.Err() != nil)
}

// bankKinds decides which runs to make from --lock, --no-lock and --kind.
func bankKinds(c *cli.Context) ([]lock.Kind, error) {
	locked, unlocked := c.Bool("lock"), c.Bool("no-lock")
	if locked && unlocked {
		return nil, usageErrorf("bank: --lock and --no-lock: choose one, or neither to compare both")
	}
	var kinds []lock.Kind
	if c.IsSet("kind") {
		ks, err := lock.ParseKinds(c.String("kind"))
		if err != nil {
			return nil, usageErrorf("bank: --kind: %v", err)
		}
		kinds = ks
	}
	switch {
	case unlocked:
		for _, k := range kinds {
			if k != lock.None {
				return nil, usageErrorf("bank: --no-lock runs without a lock; --kind %s contradicts it", k)
			}
		}
		return []lock.Kind{lock.None}, nil
	case locked:
		if kinds == nil {
			return defaultLockedKinds(), nil
		}
		// "all" with --lock means every kind of lock: none is not one.
		var locks []lock.Kind
		for _, k := range kinds {
			if k != lock.None {
				locks = append(locks, k)
			} else if slices.Contains(splitList(c.String("kind")), lock.None.String()) {
				return nil, usageErrorf("bank: --lock with --kind none: none is the unlocked run; use --no-lock")
			}
		}
		return locks, nil
	}
	if kinds == nil {
		kinds = defaultLockedKinds()
	}
	out := []lock.Kind{lock.None}
	for _, k := range kinds {
		if k != lock.None {
			out = append(out, k)
		}
	}
	return out, nil
}

func parseKillAt(s string) (*coordinator.KillAt, error) {
	slot, op, ok := strings.Cut(s, ":")
	i, err1 := strconv.Atoi(slot)
	n, err2 := strconv.ParseInt(op, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return nil, usageErrorf("bank: --kill-worker %q: want SLOT:OP", s)
	}
	return &coordinator.KillAt{Slot: i, Op: n}, nil
}

func writeBank(c *cli.Context, w io.Writer, b report.Bank) error {
	switch {
	case c.Bool("json"):
		return report.BankJSON(w, b)
	case c.Bool("csv"):
		return report.BankCSV(w, b)
	}
	return report.BankText(w, b)
}

// writeBankTrace draws the runs' traces into path.
func writeBankTrace(path string, b report.Bank) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bank: --trace: %w", err)
	}
	if err := report.BankTraceChart(f, b); err != nil {
		f.Close()
		return fmt.Errorf("bank: --trace %s: %w", path, err)
	}
	return f.Close()
}

// bankExit maps the runs to the exit status the help text promises.
func bankExit(b report.Bank, runErr error, interrupted bool) error {
	if interrupted {
		return withCode(exitInterrupted, nil)
	}
	if runErr != nil {
		return runErr
	}
	for _, r := range b.Runs {
		if r.Interrupted {
			return withCode(exitInterrupted, nil)
		}
		if (r.Kind.Excludes() && !r.Consistent) || r.Failed() || r.Stalled {
			return withCode(exitFailure, nil)
		}
	}
	return nil
}

// bankProgressLine is the status line of a bank run: its kind, the
// operations committed, and how far along it is.
func bankProgressLine(s coordinator.BankProgress) string {
	switch {
	case s.Total > 0:
		return fmt.Sprintf("%s: %d of %d ops (%.0f%%), %.1fs", s.Kind, s.Ops, s.Total, 100*float64(s.Ops)/float64(s.Total), s.Elapsed.Seconds())
	case s.Planned > 0:
		return fmt.Sprintf("%s: %d ops, %.1fs of %v", s.Kind, s.Ops, s.Elapsed.Seconds(), s.Planned)
	}
	return fmt.Sprintf("%s: %d ops, %.1fs", s.Kind, s.Ops, s.Elapsed.Seconds())
}
