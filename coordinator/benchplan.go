package coordinator

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"mplock/lock"
)

// Bench defaults, in one place: a short matrix that runs every locking kind
// at 1 to 2xCPUs workers in well under a minute, with enough repeats for a
// median and a spread.
const (
	DefaultBenchDuration = 200 * time.Millisecond
	DefaultBenchRepeat   = 3
	MaxBenchRepeat       = 1000
	MaxBenchRuns         = 100_000 // cells x (repeats + warmups)
)

// BenchPlan is a matrix of bank runs: every combination of Kinds, Workers,
// Holds and Thinks is a cell, run Warmup times unmeasured and then Repeat
// times measured.
type BenchPlan struct {
	Kinds   []lock.Kind
	Workers []int
	Holds   []time.Duration
	Thinks  []time.Duration
	// Duration of each run, or Ops per worker; Duration wins when both are
	// zero (DefaultBenchDuration).
	Duration time.Duration
	Ops      int64
	Repeat   int // measured runs per cell
	Warmup   int // unmeasured runs per cell, before its first measured one
	// NoLatency turns acquire-latency recording off in every run.
	NoLatency bool
	// Pin binds each worker to its own CPU in every run (BankPlan.Pin).
	Pin bool
	// WaitQuiet, when positive, holds each run until the rest of the
	// machine keeps fewer than QuietCPUs busy, or for at most WaitQuiet:
	// on a shared machine a neighbour's burst otherwise lands in the
	// figures.
	WaitQuiet time.Duration
	// Progress, when set, is called before each run and about ten times a
	// second during it.
	Progress func(BenchProgress)

	// runBank performs one run; RunBank unless a test of the matrix's
	// bookkeeping replaces it.
	runBank bankRunner
}

// BenchCell is one point of the matrix.
type BenchCell struct {
	Kind    lock.Kind
	Workers int
	Hold    time.Duration
	Think   time.Duration
}

// String names the cell as Go benchmark sub-names do, the same in every
// output format: "kind=sem/workers=2/hold=0", with "/think=1us" added when
// the cell thinks. Durations are in ASCII ("us", not "µs") so that names can
// be typed and filtered in a shell; time.ParseDuration reads them back.
func (c BenchCell) String() string {
	s := fmt.Sprintf("kind=%s/workers=%d/hold=%s", c.Kind, c.Workers, ShortDuration(c.Hold))
	if c.Think != 0 {
		s += "/think=" + ShortDuration(c.Think)
	}
	return s
}

// ShortDuration formats a hold or think time as cell names do: 0, 1us, 2.5ms.
func ShortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return strings.ReplaceAll(d.String(), "µ", "u")
}

// BenchProgress is a snapshot of a matrix run, for a progress line.
type BenchProgress struct {
	Run, Runs  int // the run going on (1-based) and the number in the matrix
	CellNumber int // the cell's place in the matrix (1-based), of Cells
	Cells      int
	Cell       BenchCell
	Repeat     int  // 1-based measured repeat of the cell; 0 while warming up
	Warmup     bool // this run is a warm-up, not measured
	Elapsed    time.Duration
	// Remaining estimates the time the matrix still needs, from the runs
	// that finished so far.
	Remaining time.Duration
	Bank      BankProgress // the current run's own progress
	// Waiting is set, with the CPUs others keep busy, while the run waits
	// for the machine to quiet down (BenchPlan.WaitQuiet).
	Waiting float64
}

// DefaultBenchWorkers returns 1, 2, 4, ... up to twice the number of CPUs:
// below, at and above one worker per CPU.
func DefaultBenchWorkers() []int {
	limit := min(2*runtime.NumCPU(), MaxBankWorkers)
	var ws []int
	for w := 1; w <= limit; w *= 2 {
		ws = append(ws, w)
	}
	if ws[len(ws)-1] != limit {
		ws = append(ws, limit)
	}
	return ws
}

// DefaultBenchKinds returns every kind that keeps the balance right: none
// is left out, since its figures are the race's, not a lock's.
func DefaultBenchKinds() []lock.Kind {
	var ks []lock.Kind
	for _, k := range lock.Kinds() {
		if k.Excludes() {
			ks = append(ks, k)
		}
	}
	return ks
}

// Validate checks the plan and fills in defaults. Its errors wrap ErrPlan.
// Every cell is checked as a bank plan, so a bad value fails before the
// first run rather than in the middle of the matrix.
func (p *BenchPlan) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, args...))
	}
	if len(p.Kinds) == 0 {
		p.Kinds = DefaultBenchKinds()
	}
	if len(p.Workers) == 0 {
		p.Workers = DefaultBenchWorkers()
	}
	if len(p.Holds) == 0 {
		p.Holds = []time.Duration{0}
	}
	if len(p.Thinks) == 0 {
		p.Thinks = []time.Duration{0}
	}
	if p.Repeat == 0 {
		p.Repeat = DefaultBenchRepeat
	}
	switch {
	case p.Repeat < 1 || p.Repeat > MaxBenchRepeat:
		return bad("--repeat %d: want 1 to %d", p.Repeat, MaxBenchRepeat)
	case p.Warmup < 0 || p.Warmup > MaxBenchRepeat:
		return bad("--warmup %d: want 0 to %d", p.Warmup, MaxBenchRepeat)
	case p.Ops < 0:
		return bad("--ops %d: must not be negative", p.Ops)
	case p.Duration < 0:
		return bad("--duration %v: must not be negative", p.Duration)
	case p.WaitQuiet < 0:
		return bad("--wait-quiet %v: must not be negative", p.WaitQuiet)
	case p.Ops > 0 && p.Duration > 0:
		return bad("--ops and --duration: give one of them")
	}
	for _, w := range p.Workers {
		if w < 1 || w > MaxBankWorkers {
			return bad("--workers %d: want 1 to %d", w, MaxBankWorkers)
		}
	}
	if p.Ops == 0 && p.Duration == 0 {
		p.Duration = DefaultBenchDuration
	}
	if n := len(p.Cells()) * (p.Repeat + p.Warmup); n > MaxBenchRuns {
		return bad("%d runs in the matrix: more than %d", n, MaxBenchRuns)
	}
	for _, c := range p.Cells() {
		bp := p.bankPlan(c)
		if err := bp.Validate(); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	if dup := duplicates(p); dup != "" {
		return bad("%s given twice", dup)
	}
	return nil
}

// duplicates names the first value listed twice in one dimension, which
// would make two cells with the same name.
func duplicates(p *BenchPlan) string {
	seenW := map[int]bool{}
	for _, w := range p.Workers {
		if seenW[w] {
			return fmt.Sprintf("--workers %d", w)
		}
		seenW[w] = true
	}
	for _, dim := range []struct {
		flag string
		ds   []time.Duration
	}{{"--hold", p.Holds}, {"--think", p.Thinks}} {
		seen := map[time.Duration]bool{}
		for _, d := range dim.ds {
			if seen[d] {
				return fmt.Sprintf("%s %v", dim.flag, d)
			}
			seen[d] = true
		}
	}
	seenK := map[lock.Kind]bool{}
	for _, k := range p.Kinds {
		if seenK[k] {
			return "--kind " + k.String()
		}
		seenK[k] = true
	}
	return ""
}

// Cells returns the matrix in order: kind, then workers, hold and think.
func (p *BenchPlan) Cells() []BenchCell {
	var cells []BenchCell
	for _, k := range p.Kinds {
		for _, w := range p.Workers {
			for _, h := range p.Holds {
				for _, t := range p.Thinks {
					cells = append(cells, BenchCell{Kind: k, Workers: w, Hold: h, Think: t})
				}
			}
		}
	}
	return cells
}

// Runs returns how many bank runs the matrix makes, warm-ups included.
func (p *BenchPlan) Runs() int { return len(p.Cells()) * (p.Repeat + p.Warmup) }

func (p *BenchPlan) bankPlan(c BenchCell) BankPlan {
	return BankPlan{
		Kind: c.Kind, Workers: c.Workers, Hold: c.Hold, Think: c.Think,
		Ops: p.Ops, Duration: p.Duration, NoLatency: p.NoLatency, Pin: p.Pin,
		Amount: DefaultBankAmount, Initial: DefaultBankInitial,
	}
}

// Describe is the plan in one line, for report headers.
func (p *BenchPlan) Describe() string {
	var b strings.Builder
	kinds := make([]string, len(p.Kinds))
	for i, k := range p.Kinds {
		kinds[i] = k.String()
	}
	fmt.Fprintf(&b, "kinds %s; workers %s; hold %s; think %s; ", strings.Join(kinds, ","),
		joinInts(p.Workers), joinDurations(p.Holds), joinDurations(p.Thinks))
	if p.Ops > 0 {
		fmt.Fprintf(&b, "%d ops per worker", p.Ops)
	} else {
		fmt.Fprintf(&b, "%v per run", p.Duration)
	}
	fmt.Fprintf(&b, "; %s", plural(p.Repeat, "repeat"))
	if p.Warmup > 0 {
		fmt.Fprintf(&b, " after %s", plural(p.Warmup, "warm-up"))
	}
	if p.NoLatency {
		b.WriteString("; latency not recorded")
	}
	if p.Pin {
		b.WriteString("; each worker pinned to its own CPU")
	}
	return b.String()
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

func joinDurations(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = ShortDuration(d)
	}
	return strings.Join(s, ",")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
