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
	"mplock/worker"
)

// recordedCluster is a small run as RunCluster would return it: a leader
// kill and a failover, a stale check, a refused late write.
func recordedCluster() *coordinator.ClusterResult {
	p := coordinator.ClusterPlan{Fencing: true, Check: true, Faults: []coordinator.ClusterFault{coordinator.KillLeader}}
	p.Defaults()
	grant := &worker.ClusterNote{Kind: worker.ClusterNoteOp, Client: "3f2a0000-1111-4222-8333-444455556666.1", Op: "preempt", Name: "file_A",
		Outcome: worker.OutcomeOK, Reply: &worker.Reply{OK: true, Token: 41, Node: "n2", Role: "follower", Leader: "n1"}}
	check := &worker.ClusterNote{Kind: worker.ClusterNoteOp, Client: "77c00000-1111-4222-8333-444455556666.1", Op: "check", Name: "file_A",
		Outcome: worker.OutcomeOK, Reply: &worker.Reply{Owner: "3f2a0000-1111-4222-8333-444455556666.1", Node: "n3", Consistency: worker.Stale, Contact: 4 * time.Millisecond}}
	refused := &worker.ClusterNote{Kind: worker.ClusterNoteRegister, Client: "77c00000-1111-4222-8333-444455556666.1", Name: "file_A", Token: 39, Refused: true, Highest: 41}
	return &coordinator.ClusterResult{
		Plan: p, Elapsed: 10 * time.Second,
		Nodes: []coordinator.ClusterNodeResult{
			{ID: "n1", PIDs: []int{10, 20}, Leader: 3 * time.Second, Terms: []uint64{2}, Applied: 900, Downtime: 1600 * time.Millisecond, Exit: "exit 0"},
			{ID: "n2", PIDs: []int{11}, Leader: 7 * time.Second, Terms: []uint64{3}, Applied: 902, Exit: "exit 0"},
			{ID: "n3", PIDs: []int{12}, Applied: 902, Exit: "exit 0"},
		},
		Clients: []coordinator.ClusterClientResult{
			{ID: "3f2a0000-1111-4222-8333-444455556666", Sessions: 1, Ops: map[string]int{"preempt ok": 20, "preempt refused": 5, "release ok": 20}},
			{ID: "77c00000-1111-4222-8333-444455556666", Sessions: 1, Ops: map[string]int{"check ok": 12}},
		},
		Failovers: []coordinator.Failover{{Fault: coordinator.KillLeader, Node: "n1", At: 3333 * time.Millisecond, NewLeader: "n2", Term: 3,
			Elected: 410 * time.Millisecond, FirstOK: 480 * time.Millisecond}},
		Stale:     coordinator.StaleChecks{Count: 4, LargestLag: 4 * time.Millisecond},
		Registers: []coordinator.RegisterState{{Name: "file_A", Value: 20, Accepted: 20, Refused: 1}},
		Lin:       &coordinator.Linearizability{Result: "ok", Operations: 57, Took: 3 * time.Millisecond},
		Events: []coordinator.ClusterEvent{
			{At: time.Second, Kind: coordinator.ClusterOp, Note: grant},
			{At: 1100 * time.Millisecond, Kind: coordinator.ClusterOp, Note: check},
			{At: 3333 * time.Millisecond, Kind: coordinator.ClusterFaultStart, Fault: coordinator.KillLeader, Node: "n1", Term: 2},
			{At: 3743 * time.Millisecond, Kind: coordinator.ClusterLeader, Node: "n2", Term: 3, Took: 410 * time.Millisecond},
			{At: 5 * time.Second, Kind: coordinator.ClusterRegister, Note: refused},
		},
		Roles: []coordinator.RoleSpan{{Node: "n1", Role: "leader", From: 0, To: 3333 * time.Millisecond}, {Node: "n1", Role: "down", From: 3333 * time.Millisecond, To: 5 * time.Second}},
		Holds: []coordinator.HoldSpan{{Client: "3f2a0000-1111-4222-8333-444455556666", Name: "file_A", Token: 41, From: time.Second, To: 1200 * time.Millisecond}},
	}
}

// TestClusterNarrative: the events read in the seed's words.
func TestClusterNarrative(t *testing.T) {
	r := recordedCluster()
	var lines []string
	for _, e := range r.Events {
		lines = append(lines, ClusterEventText(e))
	}
	want := []string{
		"client 3f2a preempt file_A at n2 (follower): granted, token 41, leader n1",
		"client 77c0 check file_A at n3 (stale, 4.0 ms behind): owner 3f2a",
		"n1 killed (SIGKILL; leader of term 2)",
		"n2 elected leader in 410 ms (term 3)",
		"register file_A refused a write from 77c0 with token 39 (highest seen 41)",
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("event %d: %q\n                 want %q", i, lines[i], want[i])
		}
	}
}

func TestClusterSummaryAndVerdicts(t *testing.T) {
	r := recordedCluster()
	var b bytes.Buffer
	if err := ClusterSummary(&b, Cluster{Result: r}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"leader for 3000 ms in term 2", "kill of n1: n2 leader in 410 ms (term 3); first successful preempt/release 480 ms after it",
		"Double grants: 0", "Linearizability (porcupine): ok, 57 operations", "All held:", "refused 1 access with stale tokens"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("summary lacks %q:\n%s", s, b.String())
		}
	}
	r.Plan.Fencing = false
	r.Registers[0].Lost, r.Registers[0].Refused = 2, 0
	if v := ClusterVerdict(Cluster{Result: r}); !strings.Contains(v[0], "Without fencing the registers lost 2 updates") || r.Failed() {
		t.Errorf("no fencing: %q, failed %v; want the lost updates explained, not a failure", v, r.Failed())
	}
	r.Plan.Fencing = true
	if v := ClusterVerdict(Cluster{Result: r}); !strings.HasPrefix(v[0], "VIOLATION") || !r.Failed() {
		t.Errorf("lost updates with fencing: %q, failed %v", v, r.Failed())
	}
}

func TestClusterJSONAndTimeline(t *testing.T) {
	r := recordedCluster()
	var b bytes.Buffer
	if err := ClusterJSON(&b, Cluster{Result: r}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["outcome"] != "held" || doc["failovers"].([]any)[0].(map[string]any)["elected_ms"] != 410.0 ||
		doc["linearizability"].(map[string]any)["operations"] != 57.0 {
		t.Fatalf("JSON document: %s", b.String())
	}
	file := filepath.Join(t.TempDir(), "run.svg")
	if err := ClusterTimeline(file, r); err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(file)
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("client 3f2a")) {
		t.Fatalf("timeline: %v, %d bytes", err, len(svg))
	}
}
