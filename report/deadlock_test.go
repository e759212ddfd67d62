package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"mplock/coordinator"
	"mplock/lockd"
	"mplock/waitfor"
)

func msd(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// deadlockedResult is a two-process deadlock as a run reports it.
func deadlockedResult() *coordinator.DeadlockResult {
	plan := coordinator.DeadlockPlan{Procs: 2, Hold: 100 * time.Millisecond}
	plan.Validate()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms float64) time.Time { return start.Add(msd(ms)) }
	p1, p2 := waitfor.Proc{Name: "P1", PID: 4242}, waitfor.Proc{Name: "P2", PID: 4243}
	l1 := waitfor.Lock{Server: "127.0.0.1:6000", Name: "lock1"}
	l2 := waitfor.Lock{Server: "127.0.0.1:6001", Name: "lock2"}
	g := waitfor.New([]waitfor.LockState{
		{Lock: l1, Holders: []waitfor.Holder{{Proc: p1, Session: 1, Mode: lockd.Exclusive, Token: 1, Since: at(20)}},
			Waiters: []waitfor.Waiter{{Proc: p2, Session: 2, Mode: lockd.Exclusive, Position: 1, Since: at(122)}}},
		{Lock: l2, Holders: []waitfor.Holder{{Proc: p2, Session: 1, Mode: lockd.Exclusive, Token: 1, Since: at(21)}},
			Waiters: []waitfor.Waiter{{Proc: p1, Session: 2, Mode: lockd.Exclusive, Position: 1, Since: at(121)}}},
	})
	return &coordinator.DeadlockResult{
		Plan: plan, Start: start, Elapsed: msd(140),
		Servers: []coordinator.DeadlockServer{{Lock: "lock1", Addr: "127.0.0.1:6000", PID: 4240, Exit: "exit 0"}, {Lock: "lock2", Addr: "127.0.0.1:6001", PID: 4241, Exit: "exit 0"}},
		Holders: []coordinator.DeadlockHolder{
			{Proc: "P1", PID: 4242, Locks: []string{"lock1", "lock2"}, Stopped: "waiting for lock2, holding lock1", Exit: "killed by SIGKILL"},
			{Proc: "P2", PID: 4243, Locks: []string{"lock2", "lock1"}, Stopped: "waiting for lock1, holding lock2", Exit: "killed by SIGKILL"},
		},
		Events: []coordinator.DeadlockEvent{
			{At: msd(5), Kind: coordinator.EventServerUp, Proc: "lock1", PID: 4240, Addr: "127.0.0.1:6000"},
			{At: msd(20), Kind: coordinator.EventGot, Proc: "P1", PID: 4242, Lock: "lock1", Token: 1},
			{At: msd(121), Kind: coordinator.EventWaiting, Proc: "P1", PID: 4242, Lock: "lock2", Other: "P2", OtherPID: 4243},
			{At: msd(131.5), Kind: coordinator.EventDeadlock, Waited: msd(9.5), Text: "P1 waits for P2 (lock2), P2 waits for P1 (lock1)"},
		},
		Deadlock: &coordinator.Deadlock{
			Cycle: []coordinator.CycleEdge{
				{Proc: "P1", PID: 4242, Holds: "lock1", HoldsAt: "127.0.0.1:6000", HoldsToken: 1, HoldsSince: msd(20), WaitsFor: "lock2",
					WaitsAt: "127.0.0.1:6001", WaitsSince: msd(121), Blocker: "P2", BlockerPID: 4243, Kind: waitfor.HeldBy},
				{Proc: "P2", PID: 4243, Holds: "lock2", HoldsAt: "127.0.0.1:6001", HoldsToken: 1, HoldsSince: msd(21), WaitsFor: "lock1",
					WaitsAt: "127.0.0.1:6000", WaitsSince: msd(122), Blocker: "P1", BlockerPID: 4242, Kind: waitfor.HeldBy},
			},
			Servers: 2, Formed: msd(122), Detected: msd(131.5), Latency: msd(9.5), Look: 13,
		},
		Graph: g, GraphAt: msd(131.5), Looks: 14,
	}
}

func TestEdgeLine(t *testing.T) {
	r := deadlockedResult()
	want := "P1 (pid 4242) holds lock1 at 127.0.0.1:6000 since +0.020s, waits for lock2 at 127.0.0.1:6001 since +0.121s, held by P2 (pid 4243)"
	if got := EdgeLine(r.Deadlock.Cycle[0]); got != want {
		t.Errorf("EdgeLine:\n got %s\nwant %s", got, want)
	}
}

func TestDeadlockEventLines(t *testing.T) {
	for _, tt := range []struct {
		e    coordinator.DeadlockEvent
		want string
	}{
		{coordinator.DeadlockEvent{At: msd(5), Kind: coordinator.EventServerUp, Proc: "lock1", PID: 7, Addr: "127.0.0.1:6000"},
			"   +0.005s  lock1: Lock Server started on tcp://127.0.0.1:6000 (pid 7)"},
		{coordinator.DeadlockEvent{At: msd(20), Kind: coordinator.EventGot, Proc: "P1", PID: 8, Lock: "lock1"}, "   +0.020s  P1 (pid 8) got lock1"},
		{coordinator.DeadlockEvent{At: msd(1250), Kind: coordinator.EventGot, Proc: "P1", PID: 8, Lock: "lock2", Waited: msd(12.5)},
			"   +1.250s  P1 (pid 8) got lock2 after waiting 12.5ms"},
		{coordinator.DeadlockEvent{At: msd(121), Kind: coordinator.EventWaiting, Proc: "P1", PID: 8, Lock: "lock2", Other: "P2", OtherPID: 9},
			"   +0.121s  P1 (pid 8) waiting for lock2 held by P2 (pid 9)"},
		{coordinator.DeadlockEvent{At: msd(300), Kind: coordinator.EventGaveUp, Proc: "P2", PID: 9, Lock: "lock1", Waited: msd(200)},
			"   +0.300s  P2 (pid 9) gave up on lock1 after 200ms (timed acquire)"},
		{coordinator.DeadlockEvent{At: msd(131), Kind: coordinator.EventVictim, Proc: "P2", PID: 9, Text: "why"},
			"   +0.131s  victim: killing P2 (pid 9) with SIGKILL: why"},
	} {
		if got := DeadlockEventLine(tt.e); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
}

func TestDeadlockText(t *testing.T) {
	var b bytes.Buffer
	if err := DeadlockText(&b, Deadlock{Result: deadlockedResult(), ExitCode: 3}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"mplock deadlock: 2 processes, 2 lock servers (one lock each), strategy reverse, resolve abort\n",
		"  P1 takes lock1 then lock2; P2 takes lock2 then lock1\n",
		"DEADLOCK: 2 processes wait for each other in a cycle across 2 lock servers; none of them can go on.\n",
		"  P2 (pid 4243) holds lock2 at 127.0.0.1:6001 since +0.021s, waits for lock1 at 127.0.0.1:6000 since +0.122s, held by P1 (pid 4242)\n",
		"The cycle formed at +0.122s",
		"The detector found it on look 12 and confirmed it\n  on look 13, right after, every wait and every grant unchanged, at +0.132s: 9.50ms after it formed.",
		"  +0.121s   lock(lock2)  waits\n",
		"  +0.122s                        lock(lock1)  waits\n",
		"*** DEADLOCK ***",
		"P1            4242  lock1, lock2",
		"Why: P1 takes lock1 then lock2 and P2 takes lock2 then lock1: opposite orders, so each holds the lock the other asks for next.",
		"Resolution (abort): stopped every holder and lock server.\n",
		"Exit status 3.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestDeadlockJSONDoc(t *testing.T) {
	var b bytes.Buffer
	if err := DeadlockJSON(&b, Deadlock{Result: deadlockedResult(), ExitCode: 3}); err != nil {
		t.Fatal(err)
	}
	var doc DeadlockDoc
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Deadlock || doc.Outcome != "aborted" || doc.ExitCode != 3 || *doc.DetectMs != 9.5 || *doc.FormedMs != 122 || len(doc.Cycle) != 2 ||
		doc.Cycle[1].HeldBy != "P1" || doc.Cycle[1].WaitsSinceMs != 122 || doc.Timeline[2].Text != "P1 (pid 4242) waiting for lock2 held by P2 (pid 4243)" {
		t.Errorf("doc %+v", doc)
	}
	r := deadlockedResult()
	r.Deadlock, r.Graph = nil, waitfor.Graph{}
	b.Reset()
	DeadlockJSON(&b, Deadlock{Result: r})
	if !strings.Contains(b.String(), `"detect_ms": null`) || !strings.Contains(b.String(), `"cycle": []`) || !strings.Contains(b.String(), `"outcome": "completed"`) {
		t.Errorf("without a deadlock: %s", b.String())
	}
}

func TestDeadlockDOT(t *testing.T) {
	var b bytes.Buffer
	if err := DeadlockDOT(&b, deadlockedResult()); err != nil {
		t.Fatal(err)
	}
	g := b.String()
	for _, want := range []string{
		"digraph waitfor {",
		`label="mplock deadlock, strategy reverse: DEADLOCK P1 → P2 → P1, confirmed at +0.132s"`,
		`"P1 (pid 4242)" [shape=ellipse, label="P1\npid 4242"];`,
		`"lock2 at 127.0.0.1:6001" [shape=box, label="lock2\n127.0.0.1:6001"];`,
		`"P1 (pid 4242)" -> "lock1 at 127.0.0.1:6000" [label="holds\ntoken 1", dir=back, color=red`,
		`"P1 (pid 4242)" -> "lock2 at 127.0.0.1:6001" [label="waits for", style=dashed, color=red`,
	} {
		if !strings.Contains(g, want) {
			t.Errorf("DOT lacks %s:\n%s", want, g)
		}
	}
}
