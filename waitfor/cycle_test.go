package waitfor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
)

// t0 is the time every hand-built look counts from.
var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// world builds looks by hand: processes P1..Pn (pid 100+i, session i on
// every server), locks lockN on server 127.0.0.1:600N-1.
type world map[string]*LockState

func proc(i int) Proc { return Proc{Name: "P" + string(rune('0'+i)), PID: 100 + i} }

func lock(name string) Lock {
	return Lock{Server: "127.0.0.1:600" + string(rune('0'+name[len(name)-1]-'1')), Name: name}
}

func (w world) state(name string) *LockState {
	if w[name] == nil {
		w[name] = &LockState{Lock: lock(name)}
	}
	return w[name]
}

// hold makes process i hold name (WRITE) since ms with the given token.
func (w world) hold(i int, name string, token, ms int) world {
	s := w.state(name)
	s.Holders = append(s.Holders, Holder{Proc: proc(i), Session: lockd.SessionID(i), Mode: lockd.Exclusive, Token: lockd.Token(token), Since: at(ms)})
	return w
}

func (w world) read(i int, name string, token, ms int) world {
	w.hold(i, name, token, ms)
	s := w.state(name)
	s.Holders[len(s.Holders)-1].Mode = lockd.Shared
	return w
}

// wait queues process i for name (WRITE) since ms.
func (w world) wait(i int, name string, ms int) world {
	s := w.state(name)
	s.Waiters = append(s.Waiters, Waiter{Proc: proc(i), Session: lockd.SessionID(i), Mode: lockd.Exclusive, Position: len(s.Waiters) + 1, Since: at(ms)})
	return w
}

func (w world) waitRead(i int, name string, ms int) world {
	w.wait(i, name, ms)
	s := w.state(name)
	s.Waiters[len(s.Waiters)-1].Mode = lockd.Shared
	return w
}

// timed gives process i's wait for name a deadline.
func (w world) timed(i int, name string, ms int) world {
	s := w.state(name)
	for k := range s.Waiters {
		if s.Waiters[k].Proc == proc(i) {
			s.Waiters[k].Deadline = at(ms)
		}
	}
	return w
}

func (w world) graph() Graph {
	var locks []LockState
	for _, s := range w {
		locks = append(locks, *s)
	}
	return New(locks)
}

// chain describes a cycle as "P1 -lock2-> P2 -lock1-> P1".
func chain(c Cycle) string {
	var b strings.Builder
	for i, e := range c.Edges {
		if i == 0 {
			b.WriteString(e.From().Name)
		}
		sep := "-"
		if e.Kind == QueuedBehind {
			sep = "~"
		}
		b.WriteString(" " + sep + e.Lock.Name + sep + "> " + e.To().Name)
	}
	return b.String()
}

func chains(cs []Cycle) []string {
	var out []string
	for _, c := range cs {
		out = append(out, chain(c))
	}
	return out
}

func TestCycles(t *testing.T) {
	tests := []struct {
		name      string
		look      world
		deadlocks []string // Deadlocks(), as chains
		cycles    []string // Cycles(), when different
	}{
		{
			name:      "two processes in reverse order across two servers",
			look:      world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 1).wait(1, "lock2", 100).wait(2, "lock1", 101),
			deadlocks: []string{"P1 -lock2-> P2 -lock1-> P1"},
		},
		{
			name: "ring of five",
			look: world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 0).hold(3, "lock3", 1, 0).hold(4, "lock4", 1, 0).hold(5, "lock5", 1, 0).
				wait(1, "lock2", 10).wait(2, "lock3", 10).wait(3, "lock4", 10).wait(4, "lock5", 10).wait(5, "lock1", 10),
			deadlocks: []string{"P1 -lock2-> P2 -lock3-> P3 -lock4-> P4 -lock5-> P5 -lock1-> P1"},
		},
		{
			name: "no cycle: a chain of waits ends at a process that waits for nothing",
			look: world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 0).hold(3, "lock3", 1, 0).
				wait(1, "lock2", 10).wait(2, "lock3", 10),
		},
		{
			// P3 holds lock3 and waits for nothing: it will release it, so
			// P2 and then P1 go on. Not a deadlock, however long they wait.
			name: "a waiter on a lock about to be released",
			look: world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 0).hold(3, "lock3", 2, 50).
				wait(1, "lock2", 10).wait(2, "lock3", 20).wait(4, "lock3", 30),
		},
		{
			name: "several cycles, and a process waiting on one of them without being in it",
			look: world{}.
				hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 0).wait(1, "lock2", 10).wait(2, "lock1", 10).
				hold(3, "lock3", 1, 0).hold(4, "lock4", 1, 0).hold(5, "lock5", 1, 0).
				wait(3, "lock4", 10).wait(4, "lock5", 10).wait(5, "lock3", 10).
				hold(6, "lock6", 1, 0).wait(6, "lock1", 20),
			deadlocks: []string{"P1 -lock2-> P2 -lock1-> P1", "P3 -lock4-> P4 -lock5-> P5 -lock3-> P3"},
		},
		{
			// Two cycles through P1 make one strongly connected set; the
			// shortest cycle through its first member is reported, and
			// Members names all three.
			name: "two cycles sharing a process",
			look: world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 0).hold(3, "lock3", 1, 0).
				wait(1, "lock2", 10).wait(2, "lock1", 10).wait(3, "lock1", 12).wait(1, "lock3", 11),
			deadlocks: []string{"P1 -lock2-> P2 -lock1-> P1"},
		},
		{
			// A reader queued behind a writer may not overtake it, even
			// though the holder is a reader too: it waits for the writer.
			name: "a cycle through a FIFO queue",
			look: world{}.read(1, "lock1", 1, 0).wait(2, "lock1", 10).waitRead(3, "lock1", 11).
				hold(3, "lock3", 1, 0).wait(1, "lock3", 12),
			deadlocks: []string{"P1 -lock3-> P3 ~lock1~> P2 -lock1-> P1"},
		},
		{
			name: "readers do not wait for readers",
			look: world{}.read(1, "lock1", 1, 0).read(2, "lock2", 2, 0).waitRead(1, "lock2", 10).waitRead(2, "lock1", 10),
		},
		{
			// A timed acquire gives up at its deadline, which breaks the
			// cycle: transient, not a deadlock.
			name: "a cycle through a timed wait",
			look: world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 1, 0).wait(1, "lock2", 10).wait(2, "lock1", 10).
				timed(2, "lock1", 210),
			cycles: []string{"P1 -lock2-> P2 -lock1-> P1"},
		},
		{
			// The same process (name and pid) through two sessions waits
			// for itself.
			name: "a process waiting for a lock it holds through another session",
			look: func() world {
				w := world{}.hold(1, "lock1", 1, 0).wait(1, "lock1", 10)
				w["lock1"].Waiters[0].Session = 9
				return w
			}(),
			deadlocks: []string{"P1 -lock1-> P1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.look.graph()
			if got := chains(g.Deadlocks()); !slices.Equal(got, tt.deadlocks) {
				t.Errorf("Deadlocks() = %q, want %q", got, tt.deadlocks)
			}
			want := tt.cycles
			if want == nil {
				want = tt.deadlocks
			}
			if got := chains(g.Cycles()); !slices.Equal(got, want) {
				t.Errorf("Cycles() = %q, want %q", got, want)
			}
		})
	}
}

func TestCycleDetails(t *testing.T) {
	g := world{}.hold(1, "lock1", 7, 0).hold(2, "lock2", 3, 1).hold(3, "lock3", 4, 1).
		wait(1, "lock2", 100).wait(2, "lock1", 140).wait(3, "lock1", 120).wait(1, "lock3", 130).graph()
	cs := g.Deadlocks()
	if len(cs) != 1 {
		t.Fatalf("%d cycles, want 1", len(cs))
	}
	c := cs[0]
	if got := c.Members; !slices.Equal(got, []Proc{proc(1), proc(2), proc(3)}) {
		t.Errorf("Members = %v, want P1, P2 and P3", got)
	}
	if got := c.Procs(); !slices.Equal(got, []Proc{proc(1), proc(2)}) {
		t.Errorf("Procs = %v, want P1, P2", got)
	}
	if !c.Formed().Equal(at(140)) {
		t.Errorf("Formed = %v, want the latest wait of the cycle, at +140ms", c.Formed().Sub(t0))
	}
	if got := c.Servers(); !slices.Equal(got, []string{"127.0.0.1:6000", "127.0.0.1:6001"}) {
		t.Errorf("Servers = %q", got)
	}
	if e := c.Edges[0]; e.Holder.Token != 3 || e.Holder.Proc != proc(2) || e.Lock != lock("lock2") || e.Kind != HeldBy {
		t.Errorf("first edge %+v: want P1 waiting for lock2 held by P2 with token 3", e)
	}
	if got := g.Held(proc(1)); len(got) != 1 || got[0].Lock.Name != "lock1" || got[0].Holder.Token != 7 {
		t.Errorf("Held(P1) = %+v", got)
	}
	if got := g.Procs(); len(got) != 3 {
		t.Errorf("Procs() = %v", got)
	}
	if p := proc(1).String(); p != "P1 (pid 101)" {
		t.Errorf("Proc.String() = %q", p)
	}

	// The key is the same whichever process the cycle is read from.
	rot := Cycle{Edges: append(slices.Clone(c.Edges[1:]), c.Edges[0])}
	if rot.Key() != c.Key() {
		t.Errorf("a rotated cycle has another key")
	}
}

// TestConfirm: a cycle is confirmed only when a second look shows every
// edge with the same identity.
func TestConfirm(t *testing.T) {
	first := world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 2, 0).wait(1, "lock2", 10).wait(2, "lock1", 11).graph()
	tests := []struct {
		name   string
		second world
		want   int
	}{
		{"the same waits, the same grants", world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 2, 0).wait(1, "lock2", 10).wait(2, "lock1", 11), 1},
		// Between the looks P2 released lock2, P1 got it (a new token) and
		// released it, and P2 took it again: the cycle of the first look
		// did not exist throughout.
		{"lock2 changed hands in between", world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 5, 30).wait(1, "lock2", 10).wait(2, "lock1", 11), 0},
		{"P1 queued again in between", world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 2, 0).wait(1, "lock2", 25).wait(2, "lock1", 11), 0},
		{"the cycle is gone", world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 2, 0).wait(2, "lock1", 11), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Confirm(first, tt.second.graph().Deadlocks()); len(got) != tt.want {
				t.Errorf("Confirm gave %d cycles, want %d", len(got), tt.want)
			}
		})
	}

	// A look taken mid-handoff, assembled from two servers asked at
	// different times: server 1 was asked before P1 released lock1 to P2,
	// server 2 after P1 asked for lock2 that P2 holds. The cycle never
	// existed; the next look does not show it.
	midHandoff := world{}.hold(1, "lock1", 1, 0).wait(2, "lock1", 5).hold(2, "lock2", 2, 0).wait(1, "lock2", 20).graph()
	if len(midHandoff.Deadlocks()) != 1 {
		t.Fatalf("the mid-handoff look should show a cycle")
	}
	next := world{}.hold(2, "lock1", 3, 15).hold(2, "lock2", 2, 0).wait(1, "lock2", 20).graph()
	if got := Confirm(midHandoff, next.Deadlocks()); len(got) != 0 {
		t.Errorf("a cycle seen mid-handoff was confirmed: %q", chains(got))
	}
}

func TestWithout(t *testing.T) {
	g := world{}.hold(1, "lock1", 1, 0).hold(2, "lock2", 2, 0).wait(1, "lock2", 10).wait(2, "lock1", 11).graph()
	gone := g.Without(func(p Proc) bool { return p == proc(2) })
	if len(gone.Deadlocks()) != 0 || len(gone.Edges) != 0 {
		t.Errorf("without P2: %d edges, %d deadlocks; want none", len(gone.Edges), len(gone.Deadlocks()))
	}
	if len(gone.Held(proc(1))) != 1 {
		t.Errorf("P1's hold was dropped")
	}
}

func TestFromStatus(t *testing.T) {
	st := lockd.Status{Locks: []lockd.LockStatus{{
		Name:    "lock1",
		Holders: []lockd.HolderStatus{{Session: 1, Client: "P1", PID: 101, Mode: lockd.Exclusive, Token: 4, Since: at(0)}},
		Waiters: []lockd.WaiterStatus{{Session: 2, Client: "P2", PID: 102, Mode: lockd.Exclusive, Position: 1, Since: at(5), Deadline: at(50)}},
	}}}
	ls := FromStatus("127.0.0.1:6000", st)
	if len(ls) != 1 || ls[0].Lock != lock("lock1") || ls[0].Holders[0].Proc != proc(1) || ls[0].Holders[0].Token != 4 ||
		ls[0].Waiters[0].Proc != proc(2) || !ls[0].Waiters[0].Deadline.Equal(at(50)) {
		t.Fatalf("FromStatus = %+v", ls)
	}
	g := New(ls)
	if len(g.Edges) != 1 || !g.Edges[0].Bounded() || g.Edges[0].To() != proc(1) {
		t.Errorf("edges %+v", g.Edges)
	}
}
