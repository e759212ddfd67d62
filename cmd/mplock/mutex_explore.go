package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/dmutex/explore"
	"mplock/report"
)

// Defaults of the exhaustive exploration: 3 processes making 2 entries each
// is the size every algorithm is proved at (in seconds at most).
const (
	defaultExploreProcs   = 3
	defaultExploreEntries = 2
)

// mutexTheoryFlags are the flags of the algorithms' theory and of the
// exhaustive exploration, kept apart from the run's own flags.
func mutexTheoryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "list-algorithms", Usage: "list the algorithms with their theory and source, and exit"},
		&cli.BoolFlag{Name: "explore", Usage: fmt.Sprintf("instead of running processes, check every interleaving of a small run in one process: %d processes making %d entries each, unless --procs and --entries say otherwise", defaultExploreProcs, defaultExploreEntries)},
		&cli.GenericFlag{Name: "entries", Value: number(defaultExploreEntries, defaultExploreEntries), Usage: fmt.Sprintf("with --explore: critical-section entries each process makes, 1 to %d", explore.MaxEntries)},
		&cli.GenericFlag{Name: "max-states", Value: number(explore.DefaultMaxStates, explore.DefaultMaxStates), Usage: "with --explore: stop after this many distinct states (a stopped search proves nothing, and says so)"},
		&cli.BoolFlag{Name: "unordered-links", Usage: "with --explore: let a later message on a link overtake an earlier one (real sockets keep order)"},
		&cli.StringFlag{Name: "svg", Usage: "draw messages per entry against processes for every algorithm (with --explore: the counterexample's message-sequence chart) as an SVG `FILE`"},
		&cli.GenericFlag{Name: "window", Value: positiveSeconds(0), DefaultText: "one that holds about 30 entries, where the run was busiest", Usage: "with --timeline: the span of the zoomed chart, a `DURATION` such as 50ms"},
	}
}

// exploreOnlyFlag names an exploration flag given without --explore.
func exploreOnlyFlag(c *cli.Context) string {
	for _, f := range []string{"entries", "max-states", "unordered-links"} {
		if c.IsSet(f) {
			return f
		}
	}
	return ""
}

// mutexExplore runs the exhaustive exploration of every chosen algorithm
// and size, one after the other.
func mutexExplore(c *cli.Context) error {
	args, err := trailingFlags(c, false)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usageErrorf("mutex: --explore takes no arguments (got %q): give --procs and --entries", args)
	}
	for _, f := range []string{"duration", "cs", "think", "transport", "verbose", "timeline", "window"} {
		if c.IsSet(f) {
			return usageErrorf("mutex: --%s is for real runs; --explore tries every timing instead", f)
		}
	}
	procs := []int{defaultExploreProcs}
	if c.IsSet("procs") {
		if procs, err = parseProcs(c.String("procs")); err != nil {
			return err
		}
	}
	algs, err := parseAlgorithms(c.String("algorithm"))
	if err != nil {
		return err
	}
	var cfgs []explore.Config
	for _, n := range procs {
		for _, a := range algs {
			cfg := explore.Config{Algorithm: a, N: n, Entries: c.Int("entries"), MaxStates: c.Int("max-states"), Unordered: c.Bool("unordered-links")}
			if err := cfg.Validate(); err != nil {
				return usageErrorf("mutex: --explore: %s", strings.TrimPrefix(err.Error(), "explore: "))
			}
			cfgs = append(cfgs, cfg)
		}
	}
	progress := newStatusLine(c.App.ErrWriter)
	var results []*explore.Result
	for _, cfg := range cfgs {
		cfg.Progress = func(p explore.Progress) {
			progress.draw(false, func() string {
				what := "searching"
				if p.Phase == "shortest" {
					what = "finding the shortest counterexample"
				}
				return fmt.Sprintf("exploring %s, %d processes: %s, %s states, %.1fs", cfg.Algorithm, cfg.N, what, humanCount(p.States), p.Elapsed.Seconds())
			})
		}
		res, err := explore.Explore(c.Context, cfg)
		progress.clear()
		if err != nil {
			return fmt.Errorf("mutex: --explore: %w", err)
		}
		results = append(results, res)
		if c.Context.Err() != nil {
			break
		}
	}
	out := c.App.Writer
	if c.Bool("json") {
		var docs []json.RawMessage
		for _, res := range results {
			var b bytes.Buffer
			if err := report.ExploreJSON(&b, res); err != nil {
				return err
			}
			docs = append(docs, json.RawMessage(b.Bytes()))
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"explorations": docs}); err != nil {
			return err
		}
	} else {
		for i, res := range results {
			if i > 0 {
				fmt.Fprintln(out)
			}
			if err := report.ExploreText(out, res); err != nil {
				return err
			}
		}
		if len(results) > 1 {
			fmt.Fprintln(out)
			exploreSummary(out, results)
		}
	}
	if file := c.String("svg"); file != "" {
		if err := exploreSVG(c, file, results); err != nil {
			return err
		}
	}
	if c.Context.Err() != nil {
		return withCode(exitInterrupted, nil)
	}
	for _, res := range results {
		if !res.Proved() {
			return withCode(exitFailure, nil)
		}
	}
	return nil
}

// exploreSummary is one line per exploration, for a run of several.
func exploreSummary(w interface{ Write([]byte) (int, error) }, results []*explore.Result) {
	fmt.Fprintln(w, "Summary:")
	for _, res := range results {
		verdict := "PROVED"
		switch {
		case res.Failure != nil:
			verdict = fmt.Sprintf("FAILED (%s, %d steps)", res.Failure.Kind, len(res.Failure.Trace))
		case !res.Complete:
			verdict = "NOT PROVED (" + res.Stopped + ")"
		}
		fmt.Fprintf(w, "  %-20s N=%d  %12s states  %s\n", res.Algorithm, res.N, humanCount(res.States), verdict)
	}
}

// exploreSVG draws the first counterexample found.
func exploreSVG(c *cli.Context, file string, results []*explore.Result) error {
	for _, res := range results {
		if f := res.Failure; f != nil {
			var b bytes.Buffer
			if err := report.MSCSVG(&b, res.Algorithm, res.N, f); err != nil {
				return err
			}
			if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
				return fmt.Errorf("mutex: --svg: %w", err)
			}
			return nil
		}
	}
	fmt.Fprintf(c.App.ErrWriter, "mplock: --svg: no counterexample to draw; %s not written\n", filepath.Base(file))
	return nil
}

// parseWindow reads --window, which is for --timeline; 0 when it is not
// given.
func parseWindow(c *cli.Context) (time.Duration, error) {
	if !c.IsSet("window") {
		return 0, nil
	}
	if c.String("timeline") == "" {
		return 0, usageErrorf("mutex: --window %v: only with --timeline FILE", c.Duration("window"))
	}
	return c.Duration("window"), nil
}

// humanCount is count with thousands separators.
func humanCount(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// listAlgorithms prints the algorithms' theory for the default sizes of
// the comparison.
func listAlgorithms(c *cli.Context) error {
	return report.MutexAlgorithms(c.App.Writer, []int{4, 9, 16})
}
