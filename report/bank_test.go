package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"mplock/coordinator"
	"mplock/lock"
	"mplock/shm"
	"mplock/worker"
)

func traceOp(slot, pid int, rv uint32, rb int64, read, wrote time.Duration, amount int64) coordinator.TraceOp {
	role := worker.RoleOf(slot)
	wb := rb + amount
	if role == worker.Withdrawer {
		wb = rb - amount
	}
	return coordinator.TraceOp{Slot: slot, Pid: pid, Role: role, ReadVersion: rv, ReadBalance: rb,
		WroteVersion: rv + 1, WroteBalance: wb, Read: read, Wrote: wrote}
}

// The example, as this run's traces would give it.
func textbookLost() *coordinator.LostUpdate {
	x := traceOp(0, 812, 41, 600, 12_301_000, 12_303_000, 5)
	by := traceOp(1, 813, 41, 600, 12_302_000, 12_304_000, 5)
	by.Overwrote, by.SeenVersion, by.SeenBalance = true, 42, 605
	return &coordinator.LostUpdate{Overwritten: x, By: by, SameRead: true, Writes: 1}
}

func TestLostUpdateText(t *testing.T) {
	got := LostUpdateText(textbookLost(), 2)
	want := "W0 (pid 812) read 600 (v41) at 12.301 ms; W1 (pid 813) read 600 (v41) at 12.302 ms; W0 wrote 605 (v42) at 12.303 ms; W1 wrote 595 (v42) at 12.304 ms: W0's deposit of 5 is lost."
	if got != want {
		t.Errorf("textbook:\n got %s\nwant %s", got, want)
	}

	// W1 read long before; W0 wrote 1,310 times meanwhile; times apart by
	// less than a microsecond get more decimals.
	by := traceOp(1, 813, 99045, -112_055, 270_015_006, 271_524_453, 5)
	x := traceOp(0, 812, 100354, 473_130, 270_201_845, 270_202_848, 5)
	lu := &coordinator.LostUpdate{Overwritten: x, By: by, Writes: 1310}
	got = LostUpdateText(lu, 2)
	want = "W1 (pid 813) read -112,055 (v99045) at 270.015 ms; the balance was then written 1,310 times, last by W0 (pid 812): 473,135 (v100355) at 270.203 ms; W1 wrote -112,060 (v99046) at 271.524 ms, over it: W0's deposit of 5, which no one had read, is lost, and with it every one of the 1,310 updates W0 made since W1's read."
	if got != want {
		t.Errorf("chain:\n got %s\nwant %s", got, want)
	}
	// With more workers, others may have carried some of those writes on.
	if got := LostUpdateText(lu, 3); strings.Contains(got, "every one") {
		t.Errorf("3 workers: %s", got)
	}
	// The overwritten write was stale itself: it went back in versions.
	x = traceOp(1, 813, 109663, -311_255, 310_200_000, 313_400_000, 5)
	by = traceOp(0, 812, 109806, -307_110, 313_358_000, 313_409_000, 5)
	got = LostUpdateText(&coordinator.LostUpdate{Overwritten: x, By: by, Writes: 109664 - 109806}, 2)
	want = "W0 (pid 812) read -307,110 (v109806) at 313.358 ms; W1 (pid 813), which had read -311,255 (v109663) at 310.200 ms, then wrote -311,260 (v109664) at 313.400 ms; W0 wrote -307,105 (v109807) at 313.409 ms, over it: W1's withdrawal of 5, which no one had read, is lost."
	if got != want {
		t.Errorf("stale overwritten:\n got %s\nwant %s", got, want)
	}
	if got := msFormat(1_000_100, 1_000_400)(1_000_100); got != "1.0001 ms" {
		t.Errorf("close times: %s", got)
	}
}

func bankFixture() Bank {
	unlocked := &coordinator.BankResult{Kind: lock.None, Workers: 2, Ops: 200, Planned: 200, Amount: 5, Initial: 600,
		Deposits: 100, Withdrawals: 100, Expected: 600, Final: 1100, LostUpdates: 100, LastHolder: -1,
		Procs: []coordinator.ProcResult{{Slot: 0, Pid: 812, Role: worker.Depositor, Ops: 100, Exit: "exit 0"}, {Slot: 1, Pid: 813, Role: worker.Withdrawer, Ops: 100, Exit: "exit 0"}},
		Trace: &coordinator.BankTrace{Lost: textbookLost(), Frozen: -1, Workers: [][]coordinator.TraceOp{
			{traceOp(0, 812, 40, 595, 12_299_000, 12_300_500, 5), textbookLost().Overwritten},
			{textbookLost().By}}},
	}
	h := worker.NewLatencyHistogram()
	h.RecordValues(9, 90)
	h.RecordValues(2000, 10)
	locked := &coordinator.BankResult{Kind: lock.Sem, Workers: 2, Ops: 200, Planned: 200, Amount: 5, Initial: 600,
		Deposits: 100, Withdrawals: 100, Expected: 600, Final: 600, Consistent: true, Latency: h, LastHolder: 0,
		Procs: []coordinator.ProcResult{{Slot: 0, Pid: 820, Role: worker.Depositor, Ops: 100, Exit: "exit 0"}, {Slot: 1, Pid: 821, Role: worker.Withdrawer, Ops: 100, Exit: "exit 0"}},
		Trace: &coordinator.BankTrace{Frozen: -1, Workers: [][]coordinator.TraceOp{
			{traceOp(0, 820, 1, 605, 1000, 2000, 5), traceOp(0, 820, 2, 610, 3000, 4000, 5)},
			{traceOp(1, 821, 3, 615, 5000, 6000, 5)}}},
	}
	clk := worker.Clock{Source: "tsc", Step: 10, ReadCost: 12, Resolution: 12}
	return Bank{Runs: []*coordinator.BankResult{unlocked, locked}, Clock: &clk}
}

// TestBankTextExplainsItself: the legend under each table, acquire times
// below the clock's measured resolution shown as such, the balance's
// expectation said plainly, and the lost update of the run.
func TestBankTextExplainsItself(t *testing.T) {
	var out bytes.Buffer
	if err := BankText(&out, bankFixture()); err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(out.String(), "\n", " ") // the legends are wrapped
	for _, want := range []string{
		"<12ns / 2.00µs / 2.00µs", // p50 of 9ns is below the 12ns resolution
		"ACQUIRE is the time to take the lock",
		"whose resolution is 12ns on this machine",
		"a shorter acquisition shows as <12ns",
		"HANDOFFS counts acquisitions that changed the holder, LONGEST RUN",
		"FAIRNESS is Jain's index",
		"FAIRNESS is Jain's index",
		"One row per worker process",
		"which cancel out, so the balance should have ended where it began, at 600; it ended at 1,100.",
		"One of them, as it happened in this run: W0 (pid 812) read 600 (v41) at 12.301 ms;",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "add up to") {
		t.Errorf("the verdict still says 'add up to':\n%s", s)
	}
}

func TestBankDeathLines(t *testing.T) {
	r := &coordinator.BankResult{Kind: lock.Sem, Workers: 2, LastHolder: 0, Stalled: true, Procs: []coordinator.ProcResult{
		{Slot: 0, Pid: 10, Died: true, KilledByRun: true, Stopped: true, Phase: shm.PhaseHolding},
		{Slot: 1, Pid: 11, Died: true, KilledByRun: true, Phase: shm.PhaseWaiting},
	}}
	lines := strings.Join(Verdict([]*coordinator.BankResult{r}), "\n")
	for _, want := range []string{
		"With sem, worker 0 (pid 10) was stopped (SIGSTOP) while holding the lock, so no other worker could take it: it is why the run stalled.",
		"With sem, worker 1 (pid 11) was waiting for the lock, held by worker 0, when mplock ended the stalled run (SIGKILL).",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("verdict lacks %q:\n%s", want, lines)
		}
	}
	if strings.Contains(lines, "did not hold the lock") {
		t.Errorf("blames the wrong worker:\n%s", lines)
	}
	r = &coordinator.BankResult{Kind: lock.Flock, Workers: 2, Consistent: true, Unguarded: "janitor: the janitor process is gone (pid 77, killed by SIGKILL)"}
	lines = strings.Join(Verdict([]*coordinator.BankResult{r}), "\n")
	if !strings.Contains(lines, "With flock, the janitor died during the run (pid 77, killed by SIGKILL): the run went on") || !strings.Contains(lines, "cleanup after a crash was no longer guaranteed") {
		t.Errorf("verdict does not say the janitor died:\n%s", lines)
	}
}

func TestBankJSONLostUpdate(t *testing.T) {
	var out bytes.Buffer
	if err := BankJSON(&out, bankFixture()); err != nil {
		t.Fatal(err)
	}
	var doc BankDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	lu := doc.Runs[0].LostUpdate
	if lu == nil || !lu.SameRead || lu.Overwritten.Pid != 812 || lu.By.WroteBalance != 595 || !strings.HasPrefix(lu.Text, "W0 (pid 812) read 600") {
		t.Fatalf("lost_update %+v", lu)
	}
	if doc.Runs[1].LostUpdate != nil || doc.Clock == nil || doc.Clock.ResolutionNs != 12 || doc.Clock.Source != "tsc" {
		t.Fatalf("locked lost_update %+v, clock %+v", doc.Runs[1].LostUpdate, doc.Clock)
	}
	if !strings.Contains(out.String(), `"lost_update": null`) {
		t.Errorf("a run without one has no null lost_update:\n%s", out.String())
	}
}

// TestBankTraceChart draws the fixture: a lane per worker, the lost write
// in red, the locked run beside it.
func TestBankTraceChart(t *testing.T) {
	var out bytes.Buffer
	if err := BankTraceChart(&out, bankFixture()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"<svg", "W0 (pid 812)", "W1 (pid 813)", "W0 (pid 820)", "#D01010", "the write overwritten: lost",
		"none: W0&#39;s write of 605 (v42), in red, is lost", "sem: the lock changing hands"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if err := BankTraceChart(&out, Bank{Runs: []*coordinator.BankResult{{Kind: lock.Sem}}}); err != ErrNoData {
		t.Errorf("no traced run: %v, want ErrNoData", err)
	}
}
