package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/coordinator"
	"mplock/lock"
	"mplock/machine"
	"mplock/report"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "measure the lock kinds over a matrix of workers, hold and think times, with repeats",
		UsageText: "mplock bench [--kind KINDS] [--workers LIST] [--hold LIST] [--think LIST] [--duration D | --ops N] [--repeat N] [--warmup N] [--format F] [--svg FILE] [--png FILE]",
		Description: `Runs the bank workload (real worker processes, one shared balance) for every
cell of a matrix: each lock kind x each worker count x each hold time x each
think time, --repeat times (repeats interleaved over the cells, so slow drift
spreads over all of them), after --warmup unmeasured runs per cell. Every run
checks the balance: a locked run that loses an update stops the matrix with
an error, since it is a broken lock, not a data point.

Per cell: median ops/s and its spread over the repeats, acquire latency p50,
p99 and max, handoffs per 1,000 operations and the longest run of one holder,
CPU time per operation and CPUs kept busy. Every output carries the machine:
CPU model, CPUs, GOMAXPROCS, kernel, cpuidle governor, mplock version.

Examples:
  mplock bench                                   # every kind, 1..2xCPUs workers, a table
  mplock bench --kind sem,flock --workers 1,2,4,8 --hold 0,1us,10us --duration 2s --repeat 5 --csv > r.csv
  mplock bench --format gobench > new.txt && benchstat old.txt new.txt
  mplock bench --svg throughput.svg              # ops/s vs workers per kind, and latency
  mplock bench --kind sem --workers 2 --no-latency   # what timing each acquisition costs
  mplock bench lockd                             # the named-lock service instead

Output formats (--format): table (default), csv (one row per cell, columns in
BENCHMARKS.md), json (cells with every run in full), gobench (Go benchmark
lines, one per run, for benchstat).

A progress line (run i of n, elapsed, time left) is drawn on stderr when it
is a terminal. Ctrl-C stops the matrix and prints the cells that finished.

Exit status: 0 when every run was consistent, 1 when a run lost updates or a
worker failed (after printing what finished), 2 for usage errors, 130 when
interrupted.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "kind", Aliases: []string{"k"}, Usage: "comma-separated lock `KINDS`, or all (default: every kind but none)"},
			&cli.StringFlag{Name: "workers", Aliases: []string{"w"}, Usage: "comma-separated worker counts (default: 1, 2, 4 ... up to 2 x CPUs)"},
			&cli.StringFlag{Name: "hold", Value: "0", Usage: "comma-separated times inside the lock, e.g. 0,1us,10us"},
			&cli.StringFlag{Name: "think", Value: "0", Usage: "comma-separated times outside the lock before each operation"},
			&cli.GenericFlag{Name: "duration", Aliases: []string{"d"}, Value: seconds(0), DefaultText: fmt.Sprintf("%v, or none with --ops", coordinator.DefaultBenchDuration), Usage: "length of each run"},
			&cli.GenericFlag{Name: "ops", Aliases: []string{"n"}, Value: number(0, 100_000), DefaultText: "none: --duration", Usage: "operations per worker in each run, instead of --duration"},
			&cli.GenericFlag{Name: "repeat", Aliases: []string{"r"}, Value: number(coordinator.DefaultBenchRepeat, 5), Usage: "measured runs per cell"},
			&cli.GenericFlag{Name: "warmup", Value: number(0, 1), Usage: "unmeasured runs per cell before its first measured one"},
			&cli.BoolFlag{Name: "no-latency", Usage: "do not time lock acquisitions (to measure what timing costs)"},
			&cli.BoolFlag{Name: "pin", Usage: "bind each worker to its own CPU, so that workers contend instead of taking turns on one CPU (on a quiet machine: a pinned worker cannot leave a busy CPU)"},
			&cli.GenericFlag{Name: "wait-quiet", Value: seconds(0), DefaultText: "no wait", Usage: "before each run, wait up to this long for other processes to use under a quarter of a CPU"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output `FORMAT`: table, csv, json or gobench"},
			&cli.BoolFlag{Name: "csv", Usage: "same as --format csv"},
			&cli.BoolFlag{Name: "json", Usage: "same as --format json"},
			&cli.StringFlag{Name: "svg", Usage: "also draw the charts into `FILE` as SVG"},
			&cli.StringFlag{Name: "png", Usage: "also draw the charts into `FILE` as PNG"},
			&cli.StringFlag{Name: "out", Usage: "also write every format into `DIR`: bench.txt, bench.csv, bench.json, bench.gobench.txt, bench.svg, bench.png"},
		},
		Subcommands: []*cli.Command{benchLockdCommand()},
		Action:      benchAction,
	}
}

func benchAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf("bench: unexpected argument %q", c.Args().First())
	}
	format, err := benchFormat(c)
	if err != nil {
		return err
	}
	plan, err := benchPlan(c)
	if err != nil {
		return err
	}
	for _, flag := range []string{"svg", "png"} {
		if path := c.String(flag); path != "" {
			if err := checkOutputDir(path); err != nil {
				return usageErrorf("bench: --%s: %v", flag, err)
			}
		}
	}
	if err := plan.Validate(); err != nil {
		return usageErrorf("bench: %s", strings.Replace(err.Error(), coordinator.ErrPlan.Error()+": ", "", 1))
	}
	if dir := c.String("out"); dir != "" {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return usageErrorf("bench: --out: %v", err)
		}
	}

	prog := newStatusLine(c.App.ErrWriter)
	plan.Progress = func(s coordinator.BenchProgress) {
		// The first line of each run is always drawn, then at most ten a second.
		first := s.Bank.Elapsed == 0 && s.Waiting == 0
		prog.draw(first, func() string { return benchProgressLine(s) })
	}
	mach := machine.Collect(version())
	res, runErr := coordinator.RunBench(c.Context, plan)
	prog.clear()
	if res == nil {
		return runErr
	}
	b := report.Bench{Machine: mach, Result: res}
	if err := writeBench(c.App.Writer, b, format); err != nil {
		return err
	}
	for _, ch := range []struct {
		flag   string
		format report.ChartFormat
	}{{"svg", report.SVG}, {"png", report.PNG}} {
		if path := c.String(ch.flag); path != "" && len(res.Cells) > 0 {
			if err := writeChart(path, b, ch.format); err != nil {
				return err
			}
		}
	}
	if dir := c.String("out"); dir != "" {
		if err := writeBenchDir(dir, b); err != nil {
			return err
		}
	}
	switch {
	case runErr != nil:
		return withCode(exitFailure, runErr)
	case res.Interrupted:
		return withCode(exitInterrupted, fmt.Errorf("bench: interrupted after %d of %d measured runs; printed what finished",
			res.Runs(), len(plan.Cells())*plan.Repeat))
	}
	return nil
}

func benchFormat(c *cli.Context) (string, error) {
	format := c.String("format")
	var short []string
	for _, f := range []string{"csv", "json"} {
		if c.Bool(f) {
			short = append(short, "--"+f)
		}
	}
	switch {
	case len(short) > 1:
		return "", usageErrorf("bench: %s: choose one", strings.Join(short, " and "))
	case len(short) == 1 && c.IsSet("format") && "--"+format != short[0]:
		return "", usageErrorf("bench: %s and --format %s: choose one", short[0], format)
	case len(short) == 1:
		format = short[0][2:]
	}
	switch format {
	case "table", "csv", "json", "gobench":
		return format, nil
	}
	return "", usageErrorf("bench: --format %q: want table, csv, json or gobench", format)
}

// benchPlan turns the flags into a plan; Validate checks the values.
func benchPlan(c *cli.Context) (coordinator.BenchPlan, error) {
	plan := coordinator.BenchPlan{
		Duration: c.Duration("duration"), Ops: c.Int64("ops"),
		Repeat: c.Int("repeat"), Warmup: c.Int("warmup"), NoLatency: c.Bool("no-latency"),
		Pin:       c.Bool("pin"),
		WaitQuiet: c.Duration("wait-quiet"),
	}
	if c.IsSet("repeat") && plan.Repeat < 1 {
		return plan, usageErrorf("bench: --repeat %d: want at least 1", plan.Repeat)
	}
	if c.IsSet("kind") {
		ks, err := lock.ParseKinds(c.String("kind"))
		if err != nil {
			return plan, usageErrorf("bench: --kind: %v", err)
		}
		plan.Kinds = ks
	}
	if c.IsSet("workers") {
		for _, f := range splitList(c.String("workers")) {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 || n > coordinator.MaxBankWorkers {
				return plan, usageErrorf("bench: --workers %q: want counts from 1 to %d, comma-separated, such as 1,2,4", f, coordinator.MaxBankWorkers)
			}
			plan.Workers = append(plan.Workers, n)
		}
		if len(plan.Workers) == 0 {
			return plan, usageErrorf("bench: --workers: no count given")
		}
	}
	var err error
	if plan.Holds, err = durationList(c, "hold"); err != nil {
		return plan, err
	}
	if plan.Thinks, err = durationList(c, "think"); err != nil {
		return plan, err
	}
	return plan, nil
}

func durationList(c *cli.Context, flag string) ([]time.Duration, error) {
	var ds []time.Duration
	for _, f := range splitList(c.String(flag)) {
		d, err := parseDuration(f)
		if err != nil || d < 0 {
			return nil, usageErrorf("bench: --%s %q: want durations such as 0, 500ns, 1us, 2ms or seconds such as 0.001, comma-separated", flag, f)
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return nil, usageErrorf("bench: --%s: no duration given", flag)
	}
	return ds, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkOutputDir fails early, before a long matrix, when a chart could not
// be written at the end.
func checkOutputDir(path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, errors.Unwrap(err))
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

func writeBench(w io.Writer, b report.Bench, format string) error {
	switch format {
	case "csv":
		return report.BenchCSV(w, b)
	case "json":
		return report.BenchJSON(w, b)
	case "gobench":
		return report.BenchGo(w, b)
	}
	return report.BenchText(w, b)
}

// writeBenchDir writes the matrix in every format into dir, for scripts
// that keep a run's results together (scripts/bench.sh).
func writeBenchDir(dir string, b report.Bench) error {
	for name, format := range map[string]string{
		"bench.txt": "table", "bench.csv": "csv", "bench.json": "json", "bench.gobench.txt": "gobench",
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		err = writeBench(f, b, format)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("bench: %s: %w", f.Name(), err)
		}
	}
	if len(b.Result.Cells) == 0 {
		return nil
	}
	if err := writeChart(filepath.Join(dir, "bench.svg"), b, report.SVG); err != nil {
		return err
	}
	return writeChart(filepath.Join(dir, "bench.png"), b, report.PNG)
}

func writeChart(path string, b report.Bench, format report.ChartFormat) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := report.BenchChart(f, b, format); err != nil {
		f.Close()
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	return f.Close()
}

// benchProgressLine is the status line's text: run i of n, cell j of m,
// time spent and estimated time left.
func benchProgressLine(s coordinator.BenchProgress) string {
	if s.Waiting > 0 {
		return fmt.Sprintf("bench: run %d of %d: waiting for the machine to quiet down (others keep %.2f CPUs busy), %s elapsed",
			s.Run, s.Runs, s.Waiting, s.Elapsed.Round(time.Second))
	}
	what := fmt.Sprintf("repeat %d", s.Repeat)
	if s.Warmup {
		what = "warm-up"
	}
	line := fmt.Sprintf("bench: run %d of %d, cell %d of %d (%s), %s, %s elapsed",
		s.Run, s.Runs, s.CellNumber, s.Cells, s.Cell, what, s.Elapsed.Round(time.Second))
	if s.Remaining > 0 {
		line += fmt.Sprintf(", about %s left", s.Remaining.Round(time.Second))
	}
	return line
}
