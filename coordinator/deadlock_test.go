package coordinator

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
	"mplock/waitfor"
)

func TestDeadlockPlanValidate(t *testing.T) {
	for _, p := range []DeadlockPlan{
		{Procs: 1},
		{Procs: 0},
		{Procs: MaxDeadlockProcs + 1},
		{Procs: 2, BasePort: 65535},
		{Procs: 2, BasePort: -1},
		{Procs: 2, Hold: -time.Second},
		{Procs: 2, DetectEvery: time.Microsecond},
		{Procs: 2, DetectEvery: time.Minute},
		{Procs: 2, Timeout: -time.Second},
		{Procs: 2, Strategy: 9},
		{Procs: 2, Resolve: 9},
		{Procs: 2, TryTimeout: -1},
	} {
		if err := p.Validate(); !errors.Is(err, ErrPlan) {
			t.Errorf("Validate(%+v) = %v, want ErrPlan", p, err)
		}
	}

	p := DeadlockPlan{Procs: 2, BasePort: 65534, Hold: 30 * time.Millisecond}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Strategy != Reverse || p.Resolve != Abort || p.Host != DefaultDeadlockHost || p.DetectEvery != DefaultDetectEvery ||
		p.Timeout != DefaultDeadlockTimeout || p.TryTimeout != 60*time.Millisecond || p.Backoff != 30*time.Millisecond {
		t.Errorf("defaults: %+v", p)
	}
	short := DeadlockPlan{Procs: 2}
	if err := short.Validate(); err != nil || short.TryTimeout != minTryTimeout || short.Backoff != minBackoff {
		t.Errorf("with no hold: try timeout %v, backoff %v, %v; want the minimums", short.TryTimeout, short.Backoff, err)
	}
}

func TestParseStrategyAndResolution(t *testing.T) {
	for _, s := range []Strategy{Reverse, Ordered, TryLock} {
		if got, err := ParseStrategy(strings.ToUpper(s.String())); err != nil || got != s {
			t.Errorf("ParseStrategy(%q) = %v, %v", s, got, err)
		}
		if s.Description() == "" {
			t.Errorf("%v has no description", s)
		}
	}
	for _, r := range []Resolution{Abort, Victim, None} {
		if got, err := ParseResolution(r.String()); err != nil || got != r {
			t.Errorf("ParseResolution(%q) = %v, %v", r, got, err)
		}
	}
	if _, err := ParseStrategy("random"); err == nil {
		t.Errorf("ParseStrategy accepted random")
	}
	if _, err := ParseResolution("retry"); err == nil {
		t.Errorf("ParseResolution accepted retry")
	}
}

// TestLockOrders: reverse makes every holder take its own lock, then the
// next one's, a ring; ordered takes the same two locks lower first.
func TestLockOrders(t *testing.T) {
	addrs := []string{"a:1", "a:2", "a:3"}
	for _, tt := range []struct {
		strategy Strategy
		want     [][]string
		sync     bool
		timed    bool
	}{
		{Reverse, [][]string{{"lock1", "lock2"}, {"lock2", "lock3"}, {"lock3", "lock1"}}, true, false},
		{Ordered, [][]string{{"lock1", "lock2"}, {"lock2", "lock3"}, {"lock1", "lock3"}}, false, false},
		{TryLock, [][]string{{"lock1", "lock2"}, {"lock2", "lock3"}, {"lock3", "lock1"}}, true, true},
	} {
		p := DeadlockPlan{Procs: 3, Strategy: tt.strategy}
		if err := p.Validate(); err != nil {
			t.Fatal(err)
		}
		for i, want := range tt.want {
			s := p.holderSpec(i, addrs, 1)
			var got []string
			for _, l := range s.Locks {
				got = append(got, l.Name)
				if l.Addr != addrs[l.Name[4]-'1'] {
					t.Errorf("%v: %s of %s at %s", tt.strategy, l.Name, s.Name, l.Addr)
				}
			}
			if !slices.Equal(got, want) || s.Name != HolderName(i) || s.Sync != tt.sync || (s.TryTimeout > 0) != tt.timed {
				t.Errorf("%v: holder %d: %+v, want locks %v, sync %v, timed %v", tt.strategy, i, s, want, tt.sync, tt.timed)
			}
		}
	}
}

var dt0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func dat(ms int) time.Time { return dt0.Add(time.Duration(ms) * time.Millisecond) }

// ring builds the look of a ring of n holders: Pi holds lock i since
// held[i] and waits for lock i+1 since waits[i]; extra[i] more locks held.
func ring(waits []int, extra []int) waitfor.Graph {
	n := len(waits)
	var locks []waitfor.LockState
	p := func(i int) waitfor.Proc { return waitfor.Proc{Name: HolderName(i), PID: 1000 + i} }
	for i := range n {
		ls := waitfor.LockState{Lock: waitfor.Lock{Server: "127.0.0.1:600" + string(rune('0'+i)), Name: LockName(i)}}
		ls.Holders = []waitfor.Holder{{Proc: p(i), Session: lockd.SessionID(i + 1), Mode: lockd.Exclusive, Token: lockd.Token(i + 1), Since: dat(10)}}
		prev := (i + n - 1) % n
		ls.Waiters = []waitfor.Waiter{{Proc: p(prev), Session: lockd.SessionID(100 + prev), Mode: lockd.Exclusive, Position: 1, Since: dat(waits[prev])}}
		locks = append(locks, ls)
	}
	for i, k := range extra {
		for j := range k {
			locks = append(locks, waitfor.LockState{Lock: waitfor.Lock{Server: "x:1", Name: "extra" + string(rune('a'+j)) + string(rune('0'+i))},
				Holders: []waitfor.Holder{{Proc: p(i), Session: 1, Mode: lockd.Exclusive, Token: 9, Since: dat(1)}}})
		}
	}
	return waitfor.New(locks)
}

func TestChooseVictim(t *testing.T) {
	tests := []struct {
		name   string
		waits  []int
		extra  []int
		want   string
		reason string
	}{
		{"the youngest wait", []int{100, 140, 120}, []int{0, 0, 0}, "P2", "its wait for lock3 began last (+0.140s), so it closed the cycle and had waited least; it held 1 lock (lock2)"},
		{"a tie goes to the one holding fewer locks", []int{100, 100, 100}, []int{2, 0, 1}, "P2", "tied with 2 others) and it held the fewest locks"},
		{"then to the higher pid", []int{50, 50}, []int{0, 0}, "P2", "began last (+0.050s, tied with 1 other)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := ring(tt.waits, tt.extra)
			cs := g.Deadlocks()
			if len(cs) != 1 {
				t.Fatalf("%d cycles", len(cs))
			}
			p, reason := chooseVictim(cs[0], g, dt0)
			if p.Name != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("victim %v because %q; want %s because ...%q...", p, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestDescribeCycle(t *testing.T) {
	g := ring([]int{100, 130}, []int{0, 0})
	c := g.Deadlocks()[0]
	d := describeCycle(c, dt0, dat(142), 7)
	if d.Formed != 130*time.Millisecond || d.Detected != 142*time.Millisecond || d.Latency != 12*time.Millisecond || d.Look != 7 || d.Servers != 2 {
		t.Errorf("formed %v, detected %v, latency %v, look %d, servers %d", d.Formed, d.Detected, d.Latency, d.Look, d.Servers)
	}
	want := []CycleEdge{
		{Proc: "P1", PID: 1000, Holds: "lock1", HoldsAt: "127.0.0.1:6000", HoldsToken: 1, HoldsSince: 10 * time.Millisecond,
			WaitsFor: "lock2", WaitsAt: "127.0.0.1:6001", WaitsSince: 100 * time.Millisecond, Blocker: "P2", BlockerPID: 1001, Kind: waitfor.HeldBy},
		{Proc: "P2", PID: 1001, Holds: "lock2", HoldsAt: "127.0.0.1:6001", HoldsToken: 2, HoldsSince: 10 * time.Millisecond,
			WaitsFor: "lock1", WaitsAt: "127.0.0.1:6000", WaitsSince: 130 * time.Millisecond, Blocker: "P1", BlockerPID: 1000, Kind: waitfor.HeldBy},
	}
	if !slices.Equal(d.Cycle, want) {
		t.Errorf("cycle\n%+v\nwant\n%+v", d.Cycle, want)
	}
}
