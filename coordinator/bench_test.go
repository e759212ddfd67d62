package coordinator

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mplock/lock"
	"mplock/worker"
)

// The matrix's bookkeeping is tested with a scripted runner in place of
// RunBank, so that order, warm-ups, medians and failures are deterministic;
// the real runs, with worker processes, are tested end to end through the
// command (cmd/mplock/testdata/script/bench_*.txtar).

// fakeRunner returns a result for each call from next, recording the plans.
type fakeRunner struct {
	plans []BankPlan
	next  func(n int, p BankPlan) *BankResult
}

func (f *fakeRunner) run(_ context.Context, p BankPlan) (*BankResult, error) {
	f.plans = append(f.plans, p)
	r := f.next(len(f.plans), p)
	if r.Kind != p.Kind {
		r.Kind, r.Workers = p.Kind, p.Workers
	}
	return r, nil
}

// okResult is a consistent run with the given rate.
func okResult(p BankPlan, opsPerSec float64) *BankResult {
	ops := int64(opsPerSec / 10)
	r := &BankResult{
		Kind: p.Kind, Workers: p.Workers, Ops: ops, Wall: 100 * time.Millisecond,
		OpsPerSecond: opsPerSec, Consistent: true, Handoffs: ops / 10, MaxRun: 7, Fairness: 1,
		CPUPerOp: 100, Procs: []ProcResult{{Slot: 0, CPU: 50 * time.Millisecond}, {Slot: 1, CPU: 50 * time.Millisecond}},
	}
	if !p.Kind.LockFree() {
		r.Latency = worker.NewLatencyHistogram()
		r.Latency.RecordValue(100)
	}
	return r
}

func TestBenchPlanValidate(t *testing.T) {
	tests := []struct {
		name string
		plan BenchPlan
		want string // substring of the error; "" for valid
	}{
		{"defaults", BenchPlan{}, ""},
		{"ops", BenchPlan{Ops: 100}, ""},
		{"ops and duration", BenchPlan{Ops: 100, Duration: time.Second}, "give one of them"},
		{"repeat", BenchPlan{Repeat: -1}, "--repeat -1"},
		{"warmup", BenchPlan{Warmup: -1}, "--warmup -1"},
		{"workers 0", BenchPlan{Workers: []int{1, 0}}, "--workers"},
		{"workers too many", BenchPlan{Workers: []int{MaxBankWorkers + 1}}, "--workers"},
		{"negative hold", BenchPlan{Holds: []time.Duration{-1}}, "--hold"},
		{"duplicate workers", BenchPlan{Workers: []int{2, 2}}, "--workers 2 given twice"},
		{"duplicate kind", BenchPlan{Kinds: []lock.Kind{lock.Sem, lock.Sem}}, "--kind sem given twice"},
		{"too many runs", BenchPlan{Workers: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, Holds: []time.Duration{0, 1}, Repeat: MaxBenchRepeat}, "runs in the matrix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrPlan) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want an ErrPlan containing %q", err, tt.want)
			}
		})
	}
}

func TestBenchPlanDefaults(t *testing.T) {
	var p BenchPlan
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, k := range p.Kinds {
		if k == lock.None {
			t.Errorf("default kinds include none: %v", p.Kinds)
		}
	}
	if len(p.Kinds) != len(lock.Kinds())-1 {
		t.Errorf("default kinds %v: want every kind but none", p.Kinds)
	}
	if p.Workers[0] != 1 || p.Workers[len(p.Workers)-1] < 2 {
		t.Errorf("default workers %v: want 1 up to twice the CPUs", p.Workers)
	}
	if p.Duration != DefaultBenchDuration || p.Repeat != DefaultBenchRepeat {
		t.Errorf("defaults: duration %v repeat %d", p.Duration, p.Repeat)
	}
}

// TestRunBenchOrder checks that repeats are the outer loop (every cell once,
// then again), that warm-ups come before a cell's first measured run only
// and are not counted, and that every cell's plan carries the matrix's
// settings.
func TestRunBenchOrder(t *testing.T) {
	f := &fakeRunner{next: func(n int, p BankPlan) *BankResult { return okResult(p, float64(1000*n)) }}
	plan := BenchPlan{
		Kinds: []lock.Kind{lock.Sem, lock.Flock}, Workers: []int{1, 2}, Holds: []time.Duration{0, time.Microsecond},
		Ops: 50, Repeat: 2, Warmup: 1, NoLatency: true, runBank: f.run,
	}
	var progress []BenchProgress
	plan.Progress = func(s BenchProgress) { progress = append(progress, s) }
	res, err := RunBench(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	const cells = 8
	if len(f.plans) != cells*3 {
		t.Fatalf("%d runs, want %d (8 cells x (2 repeats + 1 warm-up))", len(f.plans), cells*3)
	}
	// First pass: warm-up then measured, per cell; second pass: measured.
	for i := range cells {
		warm, first, second := f.plans[2*i], f.plans[2*i+1], f.plans[2*cells+i]
		if warm.Kind != first.Kind || warm.Workers != first.Workers || warm.Hold != first.Hold {
			t.Errorf("run %d: warm-up %v/%d/%v precedes %v/%d/%v", 2*i, warm.Kind, warm.Workers, warm.Hold, first.Kind, first.Workers, first.Hold)
		}
		if second.Kind != first.Kind || second.Workers != first.Workers || second.Hold != first.Hold {
			t.Errorf("second pass run %d is %v/%d/%v, want %v/%d/%v", i, second.Kind, second.Workers, second.Hold, first.Kind, first.Workers, first.Hold)
		}
		if first.Ops != 50 || !first.NoLatency {
			t.Errorf("run plan lost the matrix settings: %+v", first)
		}
	}
	if len(res.Cells) != cells || res.Runs() != cells*2 {
		t.Fatalf("%d cells, %d runs; want %d and %d", len(res.Cells), res.Runs(), cells, 2*cells)
	}
	// Cell 0 measured runs are calls 2 and 17: rates 2000 and 17000.
	c := res.Cells[0]
	if c.OpsPerSecond.Min != 2000 || c.OpsPerSecond.Max != 17000 || c.OpsPerSecond.Median != 9500 {
		t.Errorf("cell 0 ops/s %+v, want min 2000 max 17000 median 9500 (warm-up excluded)", c.OpsPerSecond)
	}
	if c.Latency == nil || c.Latency.TotalCount() != 2 {
		t.Errorf("cell 0 latency not merged over its 2 runs")
	}
	if c.HandoffsPer1k != 100 || c.CPUs != 1 {
		t.Errorf("cell 0 handoffs/1k %v, CPUs %v; want 100 and 1", c.HandoffsPer1k, c.CPUs)
	}
	if len(progress) == 0 || progress[0].Run != 1 || progress[0].Runs != cells*3 || !progress[0].Warmup || progress[0].CellNumber != 1 || progress[0].Cells != cells {
		t.Errorf("first progress %+v: want run 1 of %d, a warm-up", progress[0], cells*3)
	}
	last := progress[len(progress)-1]
	if last.Run != cells*3 || last.Repeat != 2 || last.Warmup || last.CellNumber != cells {
		t.Errorf("last progress %+v: want run %d, repeat 2", last, cells*3)
	}
}

// TestRunBenchLostUpdate: a locked run that loses an update stops the matrix
// with an error naming the cell, and is not counted.
func TestRunBenchLostUpdate(t *testing.T) {
	f := &fakeRunner{next: func(n int, p BankPlan) *BankResult {
		r := okResult(p, 1000)
		if n == 3 {
			r.LostUpdates, r.Consistent = 4, false
		}
		return r
	}}
	plan := BenchPlan{Kinds: []lock.Kind{lock.Sem}, Workers: []int{1, 2}, Duration: time.Millisecond, Repeat: 3, runBank: f.run}
	res, err := RunBench(context.Background(), plan)
	if !errors.Is(err, ErrBenchRun) || !strings.Contains(err.Error(), "kind=sem/workers=1") || !strings.Contains(err.Error(), "lost 4 updates") {
		t.Fatalf("err = %v, want ErrBenchRun naming kind=sem/workers=1 and the lost updates", err)
	}
	if len(f.plans) != 3 || res.Runs() != 2 {
		t.Errorf("%d runs made, %d kept; want 3 made and 2 kept", len(f.plans), res.Runs())
	}
}

// TestRunBenchNoneLoses: the unlocked kind's lost updates are data, not an
// error.
func TestRunBenchNoneLoses(t *testing.T) {
	f := &fakeRunner{next: func(n int, p BankPlan) *BankResult {
		r := okResult(p, 1000)
		r.LostUpdates, r.Consistent = 10, false
		return r
	}}
	plan := BenchPlan{Kinds: []lock.Kind{lock.None}, Workers: []int{2}, Duration: time.Millisecond, Repeat: 2, runBank: f.run}
	res, err := RunBench(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cells[0].LostUpdates != 20 {
		t.Errorf("lost updates %d, want 20", res.Cells[0].LostUpdates)
	}
}

// TestRunBenchInterrupted: cancelling keeps what finished, drops the run in
// flight, and is not an error.
func TestRunBenchInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &fakeRunner{next: func(n int, p BankPlan) *BankResult {
		r := okResult(p, 1000)
		if n == 4 {
			cancel()
			r.Interrupted = true
		}
		return r
	}}
	plan := BenchPlan{Kinds: []lock.Kind{lock.Sem, lock.Spin}, Workers: []int{1, 2}, Duration: time.Millisecond, Repeat: 2, runBank: f.run}
	res, err := RunBench(ctx, plan)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Runs() != 3 || len(res.Cells) != 3 {
		t.Errorf("interrupted %v, %d runs in %d cells; want true, 3 runs in 3 cells", res.Interrupted, res.Runs(), len(res.Cells))
	}
}

func TestStatSpread(t *testing.T) {
	s := Stat{Median: 100, Min: 90, Max: 104}
	if got := s.Spread(); got != 0.1 {
		t.Errorf("Spread = %v, want 0.1", got)
	}
	if got := median([]float64{5, 1, 3, 2}); got != 2.5 {
		t.Errorf("median = %v, want 2.5", got)
	}
}

func TestRemaining(t *testing.T) {
	p := BenchPlan{Duration: time.Second}
	if got := remaining(p, 0, 4, 0, 0); got != 4*time.Second {
		t.Errorf("before any run: %v, want 4s from the planned duration", got)
	}
	if got := remaining(p, 2, 4, 3*time.Second, time.Second); got != time.Second {
		t.Errorf("2 of 4 done in 2s, 1s into the third: %v, want 1s", got)
	}
}

// TestRunBenchProcesses runs a tiny matrix for real: every run starts its
// own worker processes (this test binary, re-executed; see TestMain), every
// locked cell keeps the balance, and the summary counts what ran.
func TestRunBenchProcesses(t *testing.T) {
	plan := BenchPlan{
		Kinds: []lock.Kind{lock.Sem, lock.Fcntl, lock.Atomic}, Workers: []int{1, 2},
		Ops: 1000, Repeat: 2, Warmup: 1,
	}
	res, err := RunBench(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 6 || res.Runs() != 12 || res.Interrupted {
		t.Fatalf("%d cells, %d runs, interrupted %v; want 6, 12, false", len(res.Cells), res.Runs(), res.Interrupted)
	}
	pids := map[int]bool{}
	for _, c := range res.Cells {
		for _, r := range c.Runs {
			if !r.Consistent || r.Ops != int64(1000*c.Cell.Workers) {
				t.Errorf("%s: consistent %v, %d ops; want true and %d", c.Cell, r.Consistent, r.Ops, 1000*c.Cell.Workers)
			}
			for _, p := range r.Procs {
				if pids[p.Pid] {
					t.Errorf("%s: pid %d seen in an earlier run: runs must have their own processes", c.Cell, p.Pid)
				}
				pids[p.Pid] = true
			}
		}
		if c.OpsPerSecond.Median <= 0 || c.OpsPerSecond.Min > c.OpsPerSecond.Median || c.OpsPerSecond.Max < c.OpsPerSecond.Median {
			t.Errorf("%s: ops/s %+v", c.Cell, c.OpsPerSecond)
		}
		if (c.Latency == nil) != c.Cell.Kind.LockFree() {
			t.Errorf("%s: latency recorded %v", c.Cell, c.Latency != nil)
		}
		if c.Cell.Workers == 1 && !c.Cell.Kind.LockFree() && c.HandoffsPer1k > 1 {
			t.Errorf("%s: one worker handed the lock off %.1f times per 1,000", c.Cell, c.HandoffsPer1k)
		}
	}
}

// TestWaitQuiet: a neighbour that keeps a CPU busy (a shell spinning in a
// loop, not this process, whose own CPU time does not count) makes
// waitQuiet report the load and wait, until its limit.
func TestWaitQuiet(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat")
	}
	spin := exec.Command("sh", "-c", "while :; do :; done")
	if err := spin.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		spin.Process.Kill()
		spin.Wait()
	}()
	var seen []float64
	waitQuiet(context.Background(), time.Second, func(cpus float64) { seen = append(seen, cpus) })
	if len(seen) == 0 || seen[0] < QuietCPUs {
		t.Fatalf("a spinning neighbour was not noticed: %v", seen)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	waitQuiet(ctx, time.Hour, func(float64) {
		if calls++; calls == 2 {
			cancel()
		}
	})
	if calls != 2 {
		t.Errorf("waitQuiet went on after its context ended: %d calls", calls)
	}
}
