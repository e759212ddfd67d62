package coordinator

import (
	"strings"
	"testing"
	"time"

	"mplock/worker"
)

// notesAt builds op notes on one clock: times in ms from t0.
type noteBook struct {
	t0    time.Time
	notes []worker.ClusterNote
}

func (b *noteBook) op(client, op, name string, call, ret int, r *worker.Reply, outcome worker.Outcome) {
	n := worker.ClusterNote{Kind: worker.ClusterNoteOp, Client: client, Op: op, Name: name, Outcome: outcome, Reply: r,
		Call: b.t0.Add(time.Duration(call) * time.Millisecond).UnixNano()}
	if outcome != worker.OutcomeUnknown {
		n.Return = b.t0.Add(time.Duration(ret) * time.Millisecond).UnixNano()
	}
	b.notes = append(b.notes, n)
}

func granted(tok uint64) *worker.Reply {
	return &worker.Reply{OK: true, Token: tok, Node: "n1", Role: "leader"}
}

// TestAnalyzeGoodHistory: holds, counts, stale checks and the first
// success after a failover come out of the notes; a linearizable history
// passes.
func TestAnalyzeGoodHistory(t *testing.T) {
	b := &noteBook{t0: time.Now()}
	b.op("aaaa.1", "preempt", "file_A", 0, 2, granted(10), worker.OutcomeOK)
	b.op("bbbb.1", "preempt", "file_A", 3, 4, &worker.Reply{}, worker.OutcomeRefused)
	b.op("bbbb.1", "check", "file_A", 5, 6, &worker.Reply{Owner: "aaaa.1", Consistency: worker.Consistent}, worker.OutcomeOK)
	b.op("bbbb.1", "check", "file_A", 5, 7, &worker.Reply{Owner: "", Consistency: worker.Stale, Contact: 40 * time.Millisecond}, worker.OutcomeOK)
	b.op("aaaa.1", "release", "file_A", 10, 12, &worker.Reply{OK: true}, worker.OutcomeOK)
	b.op("bbbb.1", "preempt", "file_A", 500, 900, granted(11), worker.OutcomeOK) // across a failover at 400 ms
	res := &ClusterResult{Start: b.t0, Clients: []ClusterClientResult{{ID: "aaaa"}, {ID: "bbbb"}},
		Failovers: []Failover{{Fault: KillLeader, Node: "n1", At: 400 * time.Millisecond}}}
	analyzeNotes(res, b.notes, true, time.Minute)
	if len(res.DoubleGrants) != 0 {
		t.Errorf("double grants %+v in a good history", res.DoubleGrants)
	}
	if res.Lin == nil || res.Lin.Result != "ok" || res.Lin.Operations != 5 {
		t.Errorf("linearizability %+v; want ok over 5 operations (the stale check left out)", res.Lin)
	}
	if res.Stale.Count != 1 || res.Stale.LargestLag != 40*time.Millisecond {
		t.Errorf("stale %+v", res.Stale)
	}
	if got := res.Clients[1].Ops; got["preempt refused"] != 1 || got["preempt ok"] != 1 || got["check ok"] != 2 {
		t.Errorf("client bbbb ops %v", got)
	}
	if len(res.Holds) != 2 || res.Holds[0].From != 2*time.Millisecond || res.Holds[0].To != 10*time.Millisecond {
		t.Errorf("holds %+v", res.Holds)
	}
	if f := res.Failovers[0]; f.FirstOK != 500*time.Millisecond {
		t.Errorf("first success after the failover: %v, want 500ms (the grant returned at 900)", f.FirstOK)
	}
}

// TestAnalyzeCatchesDoubleGrant: a grant while another client surely held
// the name is a double grant and a linearizability violation, with its
// failing slice; a grant during the holder's session expiry is neither.
func TestAnalyzeCatchesDoubleGrant(t *testing.T) {
	b := &noteBook{t0: time.Now()}
	b.op("aaaa.1", "preempt", "file_A", 0, 2, granted(10), worker.OutcomeOK)
	b.op("bbbb.1", "preempt", "file_A", 5, 6, granted(11), worker.OutcomeOK)
	b.op("aaaa.1", "release", "file_A", 10, 12, &worker.Reply{OK: true}, worker.OutcomeOK)
	res := &ClusterResult{Start: b.t0}
	analyzeNotes(res, b.notes, true, time.Minute)
	if len(res.DoubleGrants) != 1 || res.DoubleGrants[0].First != "aaaa" || res.DoubleGrants[0].Second != "bbbb" {
		t.Fatalf("double grants %+v; want bbbb granted while aaaa held", res.DoubleGrants)
	}
	if res.Lin.Result != "illegal" || res.Lin.SliceName != "file_A" || len(res.Lin.HTML) == 0 ||
		!strings.Contains(strings.Join(res.Lin.SliceLines, "\n"), "bbbb.1 preempt file_A -> granted, token 11") {
		t.Fatalf("linearizability %+v", res.Lin)
	}
	if !res.Failed() {
		t.Fatal("a double grant is not a failed run")
	}

	// The same grant while aaaa's session was lapsing is fine.
	b = &noteBook{t0: time.Now()}
	b.op("aaaa.1", "preempt", "file_A", 0, 2, granted(10), worker.OutcomeOK)
	b.op("aaaa.1", "expire", "file_A", 3, 20, nil, worker.OutcomeOK)
	b.op("bbbb.1", "preempt", "file_A", 5, 6, granted(11), worker.OutcomeOK)
	res = &ClusterResult{Start: b.t0}
	analyzeNotes(res, b.notes, true, time.Minute)
	if len(res.DoubleGrants) != 0 || res.Lin.Result != "ok" {
		t.Fatalf("grant during an expiry: double grants %+v, linearizability %s", res.DoubleGrants, res.Lin.Result)
	}
}

func TestClusterPlanSchedule(t *testing.T) {
	p := ClusterPlan{Duration: 30 * time.Second, Faults: AllClusterFaults, SessionTTL: 2 * time.Second}
	p.Defaults()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	s := p.Schedule()
	// Every 5 s from 5 s (a third of 30 s is longer), every kind in turn.
	if len(s) < 4 || s[0].At != 5*time.Second || s[1].At != 10*time.Second {
		t.Fatalf("schedule %+v", s)
	}
	for i, k := range AllClusterFaults {
		if s[i].Kind != k {
			t.Fatalf("schedule %+v: fault %d is not %v", s, i+1, k)
		}
	}
	// The default run: the leader killed at a third of it.
	d := ClusterPlan{Faults: []ClusterFault{KillLeader}}
	d.Defaults()
	if s := d.Schedule(); len(s) == 0 || s[0].At != d.Duration/3 {
		t.Fatalf("default schedule %+v: want the first kill at a third of %v", s, d.Duration)
	}
	for _, f := range s {
		if f.At+p.faultLength(f.Kind) > p.Duration {
			t.Errorf("fault %v at %v does not end before the run does", f.Kind, f.At)
		}
	}
	if _, err := ParseClusterFaults("kill,bogus"); err == nil {
		t.Error("ParseClusterFaults accepted bogus")
	}
	if f, err := ParseClusterFaults("all"); err != nil || len(f) != 4 {
		t.Errorf("all: %v, %v", f, err)
	}
	two := ClusterPlan{Nodes: 2, Faults: []ClusterFault{KillLeader}}
	two.Defaults()
	if err := two.Validate(); err == nil {
		t.Error("a leader kill in a 2-node cluster accepted")
	}
}
