package explore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mplock/dmutex"
)

func explore(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Explore(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v: %v", cfg.Algorithm, err)
	}
	return res
}

// TestRealAlgorithmsHold: every algorithm a user can choose keeps mutual
// exclusion, cannot deadlock and serves every request, in every
// interleaving of 3 processes making 2 entries each over FIFO links.
func TestRealAlgorithmsHold(t *testing.T) {
	for _, a := range dmutex.Algorithms() {
		res := explore(t, Config{Algorithm: a, N: 3, Entries: 2})
		if !res.Proved() {
			what := res.Stopped
			if f := res.Failure; f != nil {
				what = f.Kind.String() + ": " + f.What
			}
			t.Errorf("%v: not proved: %s", a, what)
			continue
		}
		// The search did search: many states, and some in which every
		// process finished.
		if res.States < 500 || res.Final == 0 || res.Transitions < res.States-1 {
			t.Errorf("%v: %d states, %d transitions, %d final: too few to be every interleaving", a, res.States, res.Transitions, res.Final)
		}
		t.Logf("%v: %d states, %d transitions in %v", a, res.States, res.Transitions, res.Elapsed)
	}
}

// TestFindsBrokenViolation: the variant that never defers lets two
// processes in, and the counterexample is the shortest there is: both
// request, every request is delivered and answered, 2 + 4(N-1) steps.
func TestFindsBrokenViolation(t *testing.T) {
	for _, n := range []int{2, 3} {
		res := explore(t, Config{Algorithm: dmutex.Broken, N: n, Entries: 2})
		f := res.Failure
		if f == nil || f.Kind != Violation {
			t.Fatalf("N=%d: failure %+v, want a violation", n, f)
		}
		if want := 2 + 4*(n-1); len(f.Trace) != want {
			t.Errorf("N=%d: a counterexample of %d steps, want the shortest, %d", n, len(f.Trace), want)
		}
		last := f.Trace[len(f.Trace)-1]
		if len(last.Inside) != 2 || !strings.Contains(f.What, "in the critical section at once") {
			t.Errorf("N=%d: last step has %v inside: %s", n, last.Inside, f.What)
		}
		for i, st := range f.Trace {
			if st.Kind == StepDeliver && (st.SentAt < 0 || st.SentAt >= i) {
				t.Errorf("N=%d: step %d delivers a message sent at step %d", n, i, st.SentAt)
			}
		}
	}
}

// TestFindsNaiveMaekawaDeadlock: without INQUIRE the votes deadlock. With
// 3 processes on a 2x2 grid (quorums {P0,P1,P2}, {P0,P1}, {P0,P2}) the
// shortest way is 7 steps: all three request, and each REQUEST that
// crosses another's is queued behind the vote it needs.
func TestFindsNaiveMaekawaDeadlock(t *testing.T) {
	res := explore(t, Config{Algorithm: dmutex.MaekawaNaive, N: 3, Entries: 2})
	f := res.Failure
	if f == nil || f.Kind != Deadlock {
		t.Fatalf("failure %+v, want a deadlock", f)
	}
	if len(f.Trace) != 7 || len(f.Waiting) != 3 {
		t.Errorf("deadlock after %d steps with %v waiting, want 7 steps and all three waiting: %s", len(f.Trace), f.Waiting, f.What)
	}
	// The same algorithm with INQUIRE, RELINQUISH and FAILED cannot.
	if res := explore(t, Config{Algorithm: dmutex.Maekawa, N: 3, Entries: 2}); !res.Proved() {
		t.Errorf("Maekawa with INQUIRE: %+v", res.Failure)
	}
}

// TestUnorderedLinks: Lamport's algorithm assumes FIFO links; when a later
// message may overtake an earlier one, the explorer finds a process that
// receives what it cannot make sense of.
func TestUnorderedLinks(t *testing.T) {
	res := explore(t, Config{Algorithm: dmutex.Lamport, N: 2, Entries: 2, Unordered: true})
	if f := res.Failure; f == nil || f.Kind != Refused || !errors.Is(f.Trace[len(f.Trace)-1].Err, dmutex.ErrUnexpected) {
		t.Fatalf("failure %+v, want a refused message", res.Failure)
	}
	// Ricart-Agrawala needs no FIFO.
	if res := explore(t, Config{Algorithm: dmutex.RicartAgrawala, N: 3, Entries: 1, Unordered: true}); !res.Proved() {
		t.Errorf("Ricart-Agrawala over unordered links: %+v", res.Failure)
	}
}

// TestStateLimit: a search stopped by the limit proves nothing, and says so.
func TestStateLimit(t *testing.T) {
	res := explore(t, Config{Algorithm: dmutex.RicartAgrawala, N: 3, Entries: 2, MaxStates: 200})
	if res.Complete || res.Proved() || res.Failure != nil || !strings.Contains(res.Stopped, "state limit of 200 ") || res.States != 200 {
		t.Errorf("complete %v, proved %v, stopped %q, %d states", res.Complete, res.Proved(), res.Stopped, res.States)
	}
}

// TestCancelled: a cancelled search stops and is not a proof.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Explore(ctx, Config{Algorithm: dmutex.Lamport, N: 3, Entries: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete || res.Stopped != "interrupted" {
		t.Errorf("complete %v, stopped %q", res.Complete, res.Stopped)
	}
}

// TestFindsStarvation: a token ring in which P1 lets the token pass even
// when it wants it never deadlocks (the token keeps moving) but never
// serves P1: the components of the state graph show that no continuation
// finishes.
func TestFindsStarvation(t *testing.T) {
	res := explore(t, Config{Algorithm: dmutex.TokenRing, N: 3, Entries: 1, newNode: func(cfg dmutex.Config) (dmutex.Node, error) {
		p, err := dmutex.New(dmutex.TokenRing, cfg)
		if err != nil || cfg.ID != 1 {
			return p, err
		}
		return &impolite{Process: p}, nil
	}})
	f := res.Failure
	if f == nil || f.Kind != Starvation {
		t.Fatalf("failure %+v, want starvation", f)
	}
	if len(f.Waiting) != 1 || f.Waiting[0] != 1 {
		t.Errorf("waiting %v, want P1: %s", f.Waiting, f.What)
	}
}

// impolite is a token-ring process that never enters: asked to, it waits
// but passes the token on, as if it did not want it.
type impolite struct {
	dmutex.Process
	wants bool
}

func (p *impolite) Request() error { p.wants = true; return nil }

func (p *impolite) State() dmutex.State {
	if p.wants {
		return dmutex.Wanted
	}
	return dmutex.Released
}

func (p *impolite) Clone() dmutex.Node {
	return &impolite{Process: p.Process.Clone().(dmutex.Process), wants: p.wants}
}

func (p *impolite) AppendState(dst []byte) []byte {
	dst = p.Process.AppendState(dst)
	if p.wants {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Algorithm: dmutex.RicartAgrawala, N: 1, Entries: 1},
		{Algorithm: dmutex.RicartAgrawala, N: MaxProcs + 1, Entries: 1},
		{Algorithm: dmutex.RicartAgrawala, N: 3, Entries: 0},
		{Algorithm: dmutex.RicartAgrawala, N: 3, Entries: MaxEntries + 1},
		{Algorithm: dmutex.RicartAgrawala, N: 3, Entries: 1, MaxStates: -1},
		{Algorithm: 0, N: 3, Entries: 1},
	} {
		if _, err := Explore(context.Background(), c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// TestMaekawaFourProcesses: with 4 processes (a 2x2 grid, every quorum of
// 3) Maekawa's voters must also tell a request FAILED when an earlier one
// pushes it from the head of their queue; without that rule the explorer
// finds a deadlock in 19 steps here (3 processes are too few to show it).
func TestMaekawaFourProcesses(t *testing.T) {
	if res := explore(t, Config{Algorithm: dmutex.Maekawa, N: 4, Entries: 1}); !res.Proved() {
		t.Errorf("Maekawa, 4 processes: %+v (stopped %q)", res.Failure, res.Stopped)
	}
}
