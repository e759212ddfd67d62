package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// bankRunner performs one bank run; RunBank in production.
type bankRunner func(context.Context, BankPlan) (*BankResult, error)

// ErrBenchRun marks a run of the matrix that cannot count as a data point: a
// locked run that lost an update, a worker that died, a run that stalled.
var ErrBenchRun = errors.New("bench run failed")

// RunBench runs the matrix of plan: for each repeat, every cell in turn
// (so that drift over a long matrix spreads over all cells instead of
// landing on the last ones), each cell's warm-up runs coming just before its
// first measured run. Every run is a real RunBank with its own worker
// processes.
//
// A run that is not a valid data point stops the matrix: RunBench returns
// the cells finished so far and an error wrapping ErrBenchRun that names the
// cell and says what went wrong. A cancelled ctx stops the matrix too: the
// run in flight is dropped (it is incomplete), the result holds the runs that
// finished, Interrupted is set, and the error is nil. Errors wrap ErrPlan
// for an invalid plan, before anything ran.
func RunBench(ctx context.Context, plan BenchPlan) (*BenchResult, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	run := plan.runBank
	if run == nil {
		run = RunBank
	}
	cells := plan.Cells()
	res := &BenchResult{Plan: plan, Started: time.Now()}
	res.Plan.Progress, res.Plan.runBank = nil, nil
	results := make([]*BenchCellResult, len(cells))
	for i, c := range cells {
		results[i] = &BenchCellResult{Cell: c}
	}
	defer func() {
		res.Elapsed = time.Since(res.Started)
		for _, cr := range results {
			if len(cr.Runs) > 0 {
				cr.Summarize()
				res.Cells = append(res.Cells, cr)
			}
		}
	}()

	total, done := plan.Runs(), 0
	for rep := 1; rep <= plan.Repeat; rep++ {
		for i, c := range cells {
			warmups := 0
			if rep == 1 {
				warmups = plan.Warmup
			}
			for w := 0; w <= warmups; w++ {
				warm := w < warmups
				p := plan.bankPlan(c)
				if plan.Progress != nil {
					snap := BenchProgress{Run: done + 1, Runs: total, CellNumber: i + 1, Cells: len(cells), Cell: c, Warmup: warm}
					if !warm {
						snap.Repeat = rep
					}
					p.Progress = func(bp BankProgress) {
						snap.Bank = bp
						snap.Elapsed = time.Since(res.Started)
						snap.Remaining = remaining(plan, done, total, snap.Elapsed, bp.Elapsed)
						plan.Progress(snap)
					}
					p.Progress(BankProgress{Kind: c.Kind})
				}
				if plan.WaitQuiet > 0 {
					waitQuiet(ctx, plan.WaitQuiet, func(cpus float64) {
						if plan.Progress != nil {
							plan.Progress(BenchProgress{Run: done + 1, Runs: total, CellNumber: i + 1, Cells: len(cells),
								Cell: c, Elapsed: time.Since(res.Started), Waiting: cpus})
						}
					})
				}
				probe := startLoadProbe()
				r, err := run(ctx, p)
				background, steal, loadOK := probe.stop()
				if err != nil {
					if ctx.Err() != nil {
						res.Interrupted = true
						return res, nil
					}
					return res, fmt.Errorf("bench: %s: %w", c, err)
				}
				if r.Interrupted || ctx.Err() != nil {
					res.Interrupted = true
					return res, nil
				}
				if why := notADataPoint(r); why != "" {
					return res, fmt.Errorf("%w: %s, repeat %d: %s", ErrBenchRun, c, rep, why)
				}
				done++
				if !warm {
					cr := results[i]
					cr.Runs = append(cr.Runs, r)
					if loadOK {
						cr.Background = append(cr.Background, background)
						cr.Steal = append(cr.Steal, steal)
					}
				}
			}
		}
	}
	return res, nil
}

// remaining estimates the matrix's remaining time: the runs still to go at
// the average pace of those done, less what the current run has used.
func remaining(plan BenchPlan, done, total int, elapsed, inRun time.Duration) time.Duration {
	var per time.Duration
	switch {
	case done > 0:
		per = (elapsed - inRun) / time.Duration(done)
	case plan.Duration > 0:
		per = plan.Duration
	default:
		return 0 // an ops run with nothing finished yet: no basis
	}
	return max(0, per*time.Duration(total-done)-inRun)
}

// notADataPoint says why a run cannot be counted, or "" when it can.
func notADataPoint(r *BankResult) string {
	switch {
	case r.Kind.Excludes() && r.LostUpdates > 0:
		return fmt.Sprintf("the %s lock lost %d updates: it did not exclude (a bug in the lock kind, please report it)", r.Kind, r.LostUpdates)
	case r.Kind.Excludes() && !r.Consistent:
		return fmt.Sprintf("the balance is %d but the committed operations add up to %d", r.Final, r.Expected)
	case r.Stalled:
		return "no worker made progress for too long; the run was stopped"
	case r.Failed():
		for _, p := range r.Procs {
			if p.Died {
				return fmt.Sprintf("worker %d (pid %d) ended early: %s", p.Slot, p.Pid, p.Exit)
			}
		}
	case r.Ops == 0:
		return "no operation completed"
	}
	return ""
}
