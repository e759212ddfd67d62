package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
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
