package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/shm"
	"mplock/worker"
)

func mutexResult(a dmutex.Algorithm) *coordinator.MutexResult {
	r := &coordinator.MutexResult{
		Algorithm: a, Procs: 3, Duration: time.Second, CS: time.Millisecond, ThinkMax: 10 * time.Millisecond,
		Network: worker.NetworkUnix, Entries: 100, Wall: time.Second, EntriesPerSecond: 100,
		Messages: 400, MessagesPerEntry: 4, Theory: 4, TheoryExact: true, TheoryText: "2(N-1)", MessagesMatch: true,
		SyncDelay: coordinator.Durations{Count: 50, P50: 30 * time.Microsecond, Mean: 35 * time.Microsecond},
		Delivery:  &worker.Delivery{When: "run", Rounds: 100, Median: 20000},
		Logged:    3,
		Peers:     []coordinator.MutexProc{{ID: 0, Pid: 10, Entries: 50, Exit: "exit 0"}, {ID: 1, Pid: 11, Entries: 50, Exit: "exit 0"}},
		Intervals: []shm.MutexInterval{{Proc: 0, Entered: 10, Exited: 20}, {Proc: 1, Entered: 30, Exited: 40}, {Proc: 0, Entered: 35, Exited: 50}},
	}
	if a == dmutex.Broken {
		r.Violations, r.Overlaps, r.MaxInside = 1, 1, 2
	}
	return r
}

func TestMutexTextVerdict(t *testing.T) {
	for _, tc := range []struct {
		a    dmutex.Algorithm
		want []string
	}{
		{dmutex.RicartAgrawala, []string{"ok: never two processes inside at once", "theory 2(N-1) = 4: exact",
			"1.5x one message's delivery", "Ricart-Agrawala kept mutual exclusion", "granted in timestamp order"}},
		{dmutex.Broken, []string{"VIOLATED: 1 entries overlapped", "broke mutual exclusion", "instead of deferring"}},
	} {
		var b bytes.Buffer
		if err := MutexText(&b, Mutex{Runs: []*coordinator.MutexResult{mutexResult(tc.a)}}); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%v: report lacks %q:\n%s", tc.a, w, b.String())
			}
		}
	}
}

func TestMutexJSON(t *testing.T) {
	var b bytes.Buffer
	r := mutexResult(dmutex.RicartAgrawala)
	r.Failure = &coordinator.MutexFailure{What: "died", Culprit: 2, Waiters: []int{0, 1}, Explanation: "P2 died"}
	if err := MutexJSON(&b, Mutex{Runs: []*coordinator.MutexResult{r}}); err != nil {
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
	if f := run.Failure; f == nil || f.Culprit != "P2" || strings.Join(f.Waiters, ",") != "P0,P1" {
		t.Errorf("failure %+v", run.Failure)
	}
}

func TestMutexTimeline(t *testing.T) {
	file := filepath.Join(t.TempDir(), "t.svg")
	m := Mutex{Runs: []*coordinator.MutexResult{mutexResult(dmutex.Broken), mutexResult(dmutex.Central)}}
	if err := MutexTimeline(file, m); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, w := range []string{"<svg", "1 VIOLATIONS", "central lock server, 3 processes", "fill:#DC0000"} {
		if !strings.Contains(s, w) {
			t.Errorf("timeline lacks %q", w)
		}
	}
	if got := overlapping(m.Runs[0].Intervals); got[0] || got[1] || !got[2] {
		t.Errorf("overlapping = %v, want only the third", got)
	}
}
