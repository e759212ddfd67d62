package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/dmutex/explore"
	"mplock/shm"
	"mplock/worker"
)

func mutexResult(a dmutex.Algorithm) *coordinator.MutexResult {
	r := &coordinator.MutexResult{
		Algorithm: a, Procs: 3, Duration: time.Second, CS: time.Millisecond, ThinkMax: 10 * time.Millisecond,
		Network: worker.NetworkUnix, Entries: 100, Wall: time.Second, EntriesPerSecond: 100,
		Messages: 400, MessagesPerEntry: 4, Theory: 4, TheoryExact: true, TheoryText: "2(N-1)", MessagesMatch: true,
		Cost: a.Cost(3), Bounds: a.Cost(3).Bounds, Load: 0.5,
		SyncDelay:   coordinator.Durations{Count: 50, P50: 30 * time.Microsecond, Mean: 35 * time.Microsecond},
		Uncontended: coordinator.Durations{Count: 20, P50: 44 * time.Microsecond},
		Delivery:    &worker.Delivery{When: "run", Rounds: 1000, Median: 20000},
		Logged:      3,
		Peers:       []coordinator.MutexProc{{ID: 0, Pid: 10, Entries: 50, Exit: "exit 0"}, {ID: 1, Pid: 11, Entries: 50, Exit: "exit 0"}},
		Intervals:   []shm.MutexInterval{{Proc: 0, Entered: 10, Exited: 20}, {Proc: 1, Entered: 30, Exited: 40}, {Proc: 0, Entered: 35, Exited: 50}},
	}
	if a == dmutex.Broken {
		r.Violations, r.Overlaps, r.MaxInside = 1, 1, 2
	}
	return r
}

func TestMutexTextVerdict(t *testing.T) {
	for _, tc := range []struct {
		a    dmutex.Algorithm
		edit func(*coordinator.MutexResult)
		want []string
	}{
		{dmutex.RicartAgrawala, nil, []string{"ok: never two processes inside at once", "theory 2(N-1) = 4: exact",
			"1.5x one message's delivery", "Ricart-Agrawala kept mutual exclusion", "granted in timestamp order",
			"Load        mixed: 50% of the requests", "0 inversions (pairs of entries granted out of timestamp order)",
			"1,000 pings during the run", "REJECTED counts what it refused", "2.2x one message's delivery"}},
		{dmutex.Broken, nil, []string{"VIOLATED: 1 entries overlapped", "broke mutual exclusion", "instead of deferring"}},
		// A sync delay below one message's delivery is explained.
		{dmutex.RicartAgrawala, func(r *coordinator.MutexResult) { r.SyncDelay.P50 = 14 * time.Microsecond },
			[]string{"0.7x one message's delivery time, less than the theory's 1 message", "How a delay can come out below its theory"}},
		// Maekawa: a range, the grid, and bounds without a top.
		{dmutex.Maekawa, func(r *coordinator.MutexResult) {
			r.TheoryExact, r.MessagesPerEntry, r.Messages, r.Load = false, 5.2, 520, 0.95
		}, []string{"theory 3(K-1) to 5(K-1): 4 at light load, 4 to 6.67 at heavy load: within it for this heavy load",
			"K = 2.33 voters per quorum", "2x2 grid whose last row holds 1", "within the theory's bounds (at least 3)",
			"each voter orders only the requests it hears of"}},
		// Too few uncontended entries are not compared.
		{dmutex.RicartAgrawala, func(r *coordinator.MutexResult) { r.Uncontended.Count, r.Uncontended.P50 = 2, time.Millisecond },
			[]string{"over the 2 entries whose request found the critical section free = 50.0x one message's delivery (too few entries to compare)"}},
	} {
		r := mutexResult(tc.a)
		if tc.edit != nil {
			tc.edit(r)
		}
		var b bytes.Buffer
		if err := MutexText(&b, Mutex{Runs: []*coordinator.MutexResult{r}}); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%v: report lacks %q:\n%s", tc.a, w, b.String())
			}
		}
	}
}

// TestMutexTable: one row per algorithm and size, the theory beside each
// figure, differences flagged and explained, one word for inversions,
// thousands separators.
func TestMutexTable(t *testing.T) {
	ra := mutexResult(dmutex.RicartAgrawala)
	ra.Inversions = 0
	sk := mutexResult(dmutex.SuzukiKasami)
	sk.Procs, sk.Cost, sk.Bounds = 9, dmutex.SuzukiKasami.Cost(9), dmutex.SuzukiKasami.Cost(9).Bounds
	sk.TheoryExact, sk.Load, sk.MessagesPerEntry, sk.Inversions = false, 0.97, 4.5, 12345
	sk.SyncDelay.P50 = 200 * time.Microsecond // 10T: the scheduler's
	var b bytes.Buffer
	if err := MutexText(&b, Mutex{Runs: []*coordinator.MutexResult{ra, sk}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, re := range []string{
		`ALGORITHM +PROCS +ENTRIES/S +LOAD +MSGS/ENTRY +THEORY +SYNC DELAY +THEORY +RESPONSE +THEORY +INVERSIONS +VIOLATIONS +RESULT`,
		`(?m)^ricart-agrawala +3 +100 +50% +4\.00 +4 = 2\(N-1\) +1\.5T +1T +2\.2T +2T +0 +0 +ok$`,
		`(?m)^suzuki-kasami +9 +100 +97% +4\.50 \(!\) +9 \(heavy\) +10\.0T \(!\) +1T +2\.2T +0-2T +12,345 +0 +ok$`,
		`INVERSIONS counts pairs of entries granted out of \(timestamp, process\) order`,
		`\(!\) marks a figure that differs from its theory`,
		`Suzuki-Kasami with 9 processes: 4\.50 messages per entry, outside the heavy-load figure 9`,
		`Delays flagged \(!\) above twice their theory are the scheduler's`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("table lacks %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "out of timestamp order\n") && strings.Contains(out, "pairs of entries out of") {
		t.Errorf("two words for inversions")
	}
}

func TestMutexJSON(t *testing.T) {
	var b bytes.Buffer
	r := mutexResult(dmutex.RicartAgrawala)
	r.Failure = &coordinator.MutexFailure{What: "died", Culprit: 2, Waiters: []int{0, 1}, Explanation: "P2 died"}
	tr := mutexResult(dmutex.TokenRing)
	tr.Cost, tr.Bounds = dmutex.TokenRing.Cost(3), dmutex.TokenRing.Cost(3).Bounds
	if err := MutexJSON(&b, Mutex{Runs: []*coordinator.MutexResult{r, tr}}); err != nil {
		t.Fatal(err)
	}
	var doc MutexDoc
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	run := doc.Runs[0]
	if run.Algorithm != "ricart-agrawala" || run.Messages != 400 || !run.MessagesMatchTheory || run.Ok {
		t.Errorf("run %+v", run)
	}
	if run.TheoryHeavy.Lo != 4 || run.TheoryHeavy.Hi == nil || *run.TheoryHeavy.Hi != 4 || run.Regime != "mixed" || run.Load != 0.5 {
		t.Errorf("theory %+v %+v, regime %q", run.TheoryHeavy, run.TheoryBounds, run.Regime)
	}
	if f := run.Failure; f == nil || f.Culprit != "P2" || strings.Join(f.Waiters, ",") != "P0,P1" {
		t.Errorf("failure %+v", run.Failure)
	}
	if h := doc.Runs[1].TheoryBounds.Hi; h != nil {
		t.Errorf("token ring bounds: hi %v, want null (unbounded)", *h)
	}
}

// TestMutexTimeline: a short run is one chart; a long one gets an overview
// and a window where it was busiest, on a millisecond axis with round ticks.
func TestMutexTimeline(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.svg")
	m := Mutex{Runs: []*coordinator.MutexResult{mutexResult(dmutex.Broken), mutexResult(dmutex.Central)}}
	for _, r := range m.Runs {
		r.Wall = 100 * time.Millisecond
	}
	if err := MutexTimeline(file, m, TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	s := readFile(t, file)
	for _, w := range []string{"<svg", "1 VIOLATIONS", "central lock server, 3 processes", "fill:#DC0000"} {
		if !strings.Contains(s, w) {
			t.Errorf("timeline lacks %q", w)
		}
	}
	if strings.Contains(s, "the window below") {
		t.Errorf("a short run got a window")
	}
	if got := overlapping(m.Runs[0].Intervals); got[0] || got[1] || !got[2] {
		t.Errorf("overlapping = %v, want only the third", got)
	}

	// A 2s run: an entry every 10ms, and a busy stretch of 40 entries
	// from 1,502 to 1,508 ms.
	long := mutexResult(dmutex.RicartAgrawala)
	long.Wall, long.Intervals = 2*time.Second, nil
	ms := int64(time.Millisecond)
	for at := int64(0); at < 2000*ms; at += 10 * ms {
		long.Intervals = append(long.Intervals, shm.MutexInterval{Proc: uint32(at/ms) % 3, Requested: at, Entered: at + ms/10, Exited: at + ms})
	}
	for at := 1502 * ms; at < 1508*ms; at += 150 * int64(time.Microsecond) {
		long.Intervals = append(long.Intervals, shm.MutexInterval{Proc: 1, Requested: at, Entered: at + ms/100, Exited: at + ms/10})
	}
	if err := MutexTimeline(file, Mutex{Runs: []*coordinator.MutexResult{long}}, TimelineOptions{}); err != nil {
		t.Fatal(err)
	}
	s = readFile(t, file)
	// The narrowest round span that holds 30 entries there is 5ms.
	if !strings.Contains(s, "the window below, 5 ms") || !regexp.MustCompile(`: 150\d(\.\d+)? to 150\d(\.\d+)? ms, [34]\d entries`).MatchString(s) {
		t.Errorf("the long run's window is not 5ms in its busiest stretch (1,502-1,508 ms): %q", regexp.MustCompile(`[^>]*window below[^<]*|[^>]*entries: stays[^<]*`).FindAllString(s, -1))
	}
	tl := newTimeline(long)
	if from, to, zoom := tl.window(50 * time.Millisecond); !zoom || to-from != 50 || from > 1502 || to < 1508 {
		t.Errorf("--window 50ms: %v to %v ms (zoom %v), want 50ms around the busy stretch", from, to, zoom)
	}
	ticks := msTicks{}.Ticks(1500, 1550)
	var labels []string
	for _, tk := range ticks {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if strings.Join(labels, " ") != "1500 1510 1520 1530 1540 1550" {
		t.Errorf("ticks for 1,500-1,550 ms: %v", labels)
	}
	if len(ticks) <= len(labels) {
		t.Errorf("no minor ticks between the labelled ones")
	}
}

func readFile(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNiceCeil(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{{0.3, 0.5}, {1, 1}, {1.1, 2}, {3, 5}, {7, 10}, {42, 50}, {0.013, 0.02}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestMutexChart(t *testing.T) {
	var runs []*coordinator.MutexResult
	for _, a := range []dmutex.Algorithm{dmutex.RicartAgrawala, dmutex.Maekawa, dmutex.TokenRing} {
		for _, n := range []int{4, 9} {
			r := mutexResult(a)
			r.Procs, r.Cost = n, a.Cost(n)
			r.MessagesPerEntry = r.Cost.Heavy.Lo
			runs = append(runs, r)
		}
	}
	var b bytes.Buffer
	if err := MutexChart(&b, Mutex{Runs: runs}, SVG); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"<svg", "ricart-agrawala", "maekawa", "token-ring", "Messages per entry against processes"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("chart lacks %q", w)
		}
	}
	if err := MutexChart(&b, Mutex{}, SVG); err != ErrNoData {
		t.Errorf("no runs: %v", err)
	}
}

func TestMutexAlgorithms(t *testing.T) {
	var b bytes.Buffer
	if err := MutexAlgorithms(&b, []int{4, 9, 16}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, a := range dmutex.Algorithms() {
		if !strings.Contains(out, a.String()) || !strings.Contains(out, a.Source()) {
			t.Errorf("the list lacks %v or its source", a)
		}
	}
	for _, re := range []string{`(?m)^lamport +3\(N-1\) +9 +24 +45 +1T +2T +FIFO$`, `(?m)^maekawa +3\(K-1\) to 5\(K-1\) +6 / 6-10 +12 / 12-20 +18 / 18-30 `} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the list lacks %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "broken") || strings.Contains(out, "naive") {
		t.Errorf("the list shows a hidden variant")
	}
}

func TestMutexLogLine(t *testing.T) {
	var b bytes.Buffer
	e := dmutex.Event{Kind: dmutex.Deferred, Process: 2, Peer: 1, TS: 19, Why: dmutex.BecauseEarlier, Other: dmutex.Stamp{TS: 17, ID: 2}}
	MutexLogLine(&b, coordinator.MutexLogEntry{At: 1500 * time.Microsecond, Event: &e})
	MutexLogLine(&b, coordinator.MutexLogEntry{At: 2 * time.Millisecond, Problem: &coordinator.Problem{Kind: "rejected", Text: "P0 rejected a message"}})
	want := "    0.001500  ts 19      P2 deferred P1: P2's own request (ts 17, P2) is earlier\n    0.002000  rejected   P0 rejected a message\n"
	if b.String() != want {
		t.Errorf("log lines:\n%q\nwant\n%q", b.String(), want)
	}
}

// TestExploreReports: the text report, the sequence chart and the JSON of
// a real counterexample.
func TestExploreReports(t *testing.T) {
	res, err := explore.Explore(context.Background(), explore.Config{Algorithm: dmutex.Broken, N: 2, Entries: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := ExploreText(&b, res); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, re := range []string{
		`Result: FAILED: mutual exclusion violated: P0 and P1 are in the critical section at once`,
		`The shortest counterexample, 6 steps`,
		`(?m)^step  P0 +P1$`,
		`(?m)^   1  \| \* request ts 1 +\|$`,
		`(?m)^   [34]  \|-+ REQUEST 1 -+>\| +P1 replied to P0$`,
		`(?m)^   6  #<-+ REPLY 1 -+# +P0 received a reply from P1; P0 is in the critical section$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("explore report lacks %s:\n%s", re, out)
		}
	}
	b.Reset()
	if err := MSCSVG(&b, dmutex.Broken, 2, res.Failure); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"<svg", "REQUEST 1", "#dc0000", "mutual exclusion violated"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("sequence chart lacks %q", w)
		}
	}
	b.Reset()
	if err := ExploreJSON(&b, res); err != nil {
		t.Fatal(err)
	}
	var doc ExploreDoc
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Proved || !doc.Complete || doc.Failure == nil || len(doc.Failure.Trace) != 6 || doc.Failure.Trace[2].Message == "" {
		t.Errorf("explore JSON %+v", doc)
	}
	proved, err := explore.Explore(context.Background(), explore.Config{Algorithm: dmutex.RicartAgrawala, N: 2, Entries: 1})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	ExploreText(&b, proved)
	if !strings.Contains(b.String(), "Result: PROVED for this size") {
		t.Errorf("proved report:\n%s", b.String())
	}
	cut, _ := explore.Explore(context.Background(), explore.Config{Algorithm: dmutex.Lamport, N: 3, Entries: 2, MaxStates: 100})
	b.Reset()
	ExploreText(&b, cut)
	if !strings.Contains(b.String(), "Result: NOT PROVED: the search stopped at the state limit of 100 states") {
		t.Errorf("stopped report:\n%s", b.String())
	}
}
