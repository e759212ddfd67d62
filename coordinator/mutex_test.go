package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mplock/dmutex"
	"mplock/internal/proctest"
)

// mutexCoordinatorHelper runs a long Ricart-Agrawala run and prints
// "running" once the peers have entered the critical section, so that a test
// can SIGKILL it.
func mutexCoordinatorHelper() int {
	os.Unsetenv("MPLOCK_TEST_MUTEX_COORDINATOR") // not for the processes it starts
	started := false
	_, err := RunMutex(context.Background(), MutexPlan{
		Procs: 4, Duration: time.Hour, CS: 100 * time.Microsecond, ThinkMax: time.Millisecond,
		Progress: func(p MutexProgress) {
			if !started && p.Entries > 0 {
				started = true
				fmt.Println("running")
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestRunMutexInterrupted cancels a run once the peers are going, as Ctrl-C
// does: every outstanding request is still served, so the run is complete
// and correct (exactly 2(N-1) messages per entry), and nothing is left.
func TestRunMutexInterrupted(t *testing.T) {
	leakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := RunMutex(ctx, MutexPlan{
		Procs: 5, Duration: time.Hour, CS: 50 * time.Microsecond, ThinkMax: 500 * time.Microsecond,
		Progress: func(p MutexProgress) {
			if p.Entries >= 200 {
				cancel()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Failure != nil {
		t.Fatalf("interrupted %v, failure %+v; want an interrupted run without failure", res.Interrupted, res.Failure)
	}
	if res.Entries < 200 || res.Violations != 0 || res.Overlaps != 0 || res.Inversions != 0 {
		t.Errorf("%d entries, %d violations, %d overlaps, %d inversions", res.Entries, res.Violations, res.Overlaps, res.Inversions)
	}
	if want := 8 * res.Entries; res.Messages != want || !res.Ok() {
		t.Errorf("%d messages for %d entries, want %d (ok %v)", res.Messages, res.Entries, want, res.Ok())
	}
	for _, p := range res.Peers {
		if p.Died || p.Exit != "exit 0" {
			t.Errorf("%s: %s", p.Name(), p.Exit)
		}
	}
}

// TestRunMutexCoordinatorKilled kills the coordinator with SIGKILL in the
// middle of a run: its peers die with it (parent-death signal), and the
// janitor removes the run directory. (The peers' sockets are gone by then:
// each closes its listener, which removes the socket, once its links are up.)
func TestRunMutexCoordinatorKilled(t *testing.T) {
	leakCheck(t)
	coord := proctest.StartHelper(t, "MPLOCK_TEST_MUTEX_COORDINATOR=1")
	coord.Expect(t, "running")
	peers := proctest.ChildrenRunning(coord.Pid(), "worker", "mutex", "peer")
	if len(peers) != 4 {
		t.Fatalf("found %d peers, want 4", len(peers))
	}
	dirs, _ := os.ReadDir(os.Getenv("TMPDIR"))
	if len(dirs) != 1 || !strings.HasPrefix(dirs[0].Name(), "mplock-run-") {
		t.Fatalf("TMPDIR holds %v, want the run directory", dirs)
	}

	coord.Cmd.Process.Kill()
	coord.Cmd.Wait()
	proctest.Eventually(t, "the peers to die with their coordinator", func() bool {
		for _, pid := range peers {
			if proctest.Alive(pid) {
				return false
			}
		}
		return true
	})
	proctest.Eventually(t, "the janitor to remove the run directory", func() bool {
		ents, _ := os.ReadDir(os.Getenv("TMPDIR"))
		return len(ents) == 0
	})
}

func TestMutexPlanValidate(t *testing.T) {
	for _, tc := range []struct {
		plan MutexPlan
		ok   bool
	}{
		{MutexPlan{Procs: 2, Duration: time.Second}, true},
		{MutexPlan{Procs: 64, Duration: time.Second}, true},
		{MutexPlan{Procs: 1, Duration: time.Second}, false},
		{MutexPlan{Procs: 65, Duration: time.Second}, false},
		{MutexPlan{Procs: 3}, false},
		{MutexPlan{Procs: 3, Duration: time.Second, CS: -1}, false},
		{MutexPlan{Procs: 3, Duration: time.Second, ThinkMin: 2, ThinkMax: 1}, false},
		{MutexPlan{Procs: 3, Duration: time.Second, Network: "udp"}, false},
		{MutexPlan{Procs: 3, Duration: time.Second, Fault: &MutexFault{Kind: FaultKill, Peer: 3}}, false},
		{MutexPlan{Procs: 3, Duration: time.Second, Fault: &MutexFault{Kind: FaultKill, Peer: dmutex.ServerID}}, false},
		{MutexPlan{Procs: 3, Duration: time.Second, Algorithm: dmutex.Central, Fault: &MutexFault{Kind: FaultKill, Peer: dmutex.ServerID}}, true},
	} {
		p := tc.plan
		err := p.Validate()
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrPlan) {
			t.Errorf("%+v: Validate() = %v, want ok %v", tc.plan, err, tc.ok)
		}
	}
}

// TestRunMutexEveryAlgorithm runs every algorithm among real processes, 3
// and 9 of them, briefly: the independent check finds no overlap, every
// process exits cleanly, and the messages per entry lie within the
// algorithm's bounds (exactly its count where the theory is exact).
func TestRunMutexEveryAlgorithm(t *testing.T) {
	leakCheck(t)
	for _, a := range dmutex.Algorithms() {
		for _, n := range []int{3, 9} {
			res, err := RunMutex(context.Background(), MutexPlan{
				Algorithm: a, Procs: n, Duration: 150 * time.Millisecond, CS: 50 * time.Microsecond,
				ThinkMax: time.Millisecond, Pings: 20,
			})
			if err != nil {
				t.Fatalf("%v N=%d: %v", a, n, err)
			}
			name := fmt.Sprintf("%v N=%d", a, n)
			if res.Failure != nil || res.Violations != 0 || res.Overlaps != 0 || res.Entries == 0 {
				t.Errorf("%s: failure %+v, %d violations, %d overlaps, %d entries", name, res.Failure, res.Violations, res.Overlaps, res.Entries)
				continue
			}
			if !res.Bounds.Contains(res.MessagesPerEntry) || !res.MessagesMatch || !res.Ok() {
				t.Errorf("%s: %.2f messages per entry, bounds %v (match %v, ok %v)", name, res.MessagesPerEntry, res.Bounds, res.MessagesMatch, res.Ok())
			}
			if res.Cost.Exact() && res.Messages != int64(res.Cost.Bounds.Lo)*res.Entries {
				t.Errorf("%s: %d messages for %d entries, want exactly %s each", name, res.Messages, res.Entries, res.Cost.Formula)
			}
			if a.GrantsInOrder() && res.Inversions != 0 {
				t.Errorf("%s: %d inversions", name, res.Inversions)
			}
			for _, p := range res.Peers {
				if p.Died || p.Exit != "exit 0" || p.Rejected != 0 {
					t.Errorf("%s: %s %s, %d rejected", name, p.Name(), p.Exit, p.Rejected)
				}
			}
		}
	}
}

// TestRunMutexNoPause runs every algorithm with two real processes that
// neither stay in the critical section nor think between requests. A
// process that may enter again without a message (Roucairol-Carvalho's kept
// permissions, Suzuki-Kasami's idle token, the token at Raymond's root) must
// still handle, between two entries, the request the other sent it, and give
// up what it keeps: both processes enter, neither dies, and the run stops
// when it should.
func TestRunMutexNoPause(t *testing.T) {
	leakCheck(t)
	for _, a := range dmutex.Algorithms() {
		res, err := RunMutex(context.Background(), MutexPlan{Algorithm: a, Procs: 2, Duration: 150 * time.Millisecond})
		if err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		if res.Failure != nil || res.Violations != 0 || res.Overlaps != 0 {
			t.Errorf("%v: failure %+v, %d violations, %d overlaps", a, res.Failure, res.Violations, res.Overlaps)
			continue
		}
		for _, p := range res.Peers {
			if p.Entries == 0 || p.Died || p.Exit != "exit 0" {
				t.Errorf("%v: %s made %d of %d entries, %s", a, p.Name(), p.Entries, res.Entries, p.Exit)
			}
		}
	}
}

// TestRunMutexLiveLog: with a Log callback, a verbose run's events arrive
// while it runs, in time order, with why each deferral happened.
func TestRunMutexLiveLog(t *testing.T) {
	var mu sync.Mutex
	var entries []MutexLogEntry
	var during int
	res, err := RunMutex(context.Background(), MutexPlan{
		Procs: 3, Duration: 300 * time.Millisecond, CS: 200 * time.Microsecond, Verbose: true, Pings: 20,
		Log: func(e MutexLogEntry) { mu.Lock(); entries = append(entries, e); mu.Unlock() },
		Progress: func(MutexProgress) {
			mu.Lock()
			during = max(during, len(entries))
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if during == 0 {
		t.Errorf("no event arrived while the run went on (%d at the end)", len(entries))
	}
	if len(entries) != len(res.Events) {
		t.Errorf("%d entries streamed, %d events collected", len(entries), len(res.Events))
	}
	why := 0
	for i, e := range entries {
		if i > 0 && e.At < entries[i-1].At {
			t.Fatalf("entry %d at %v before entry %d at %v", i, e.At, i-1, entries[i-1].At)
		}
		if e.Event != nil && e.Event.Kind == dmutex.Deferred && e.Event.Why != dmutex.NoReason {
			why++
		}
	}
	if why == 0 {
		t.Errorf("no deferral says why")
	}
}
