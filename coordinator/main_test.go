package coordinator

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/proctest"
	"mplock/janitor"
	"mplock/lock"
	"mplock/worker"
)

// TestMain lets this test binary be the processes a run starts: the
// coordinator re-executes /proc/self/exe with "worker bank ...", "worker
// mutex peer" and the like, and "worker janitor"; the coordinator-kill tests
// start it as a whole coordinator.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "worker" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		var err error
		switch os.Args[2] {
		case "bank":
			err = worker.BankMain(ctx, os.Args[3:])
		case "mutex":
			if len(os.Args) < 4 {
				err = fmt.Errorf("worker mutex: no role")
				break
			}
			err = worker.MutexMain(ctx, worker.MutexRole(os.Args[3]))
		case "janitor":
			err = janitor.Main()
		default:
			err = fmt.Errorf("unknown worker role %q", os.Args[2])
		}
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mplock:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv("MPLOCK_TEST_COORDINATOR") != "" {
		os.Exit(coordinatorHelper())
	}
	if os.Getenv("MPLOCK_TEST_SYSV_HELPER") != "" {
		os.Exit(sysvHelper())
	}
	if os.Getenv("MPLOCK_TEST_MUTEX_COORDINATOR") != "" {
		os.Exit(mutexCoordinatorHelper())
	}
	os.Exit(m.Run())
}

// coordinatorHelper runs a long bank of kind $MPLOCK_TEST_KIND with a named
// region and prints "running" once workers commit operations, so that a
// test can SIGKILL it.
func coordinatorHelper() int {
	kind, err := lock.ParseKind(os.Getenv("MPLOCK_TEST_KIND"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	started := false
	_, err = RunBank(context.Background(), BankPlan{
		Kind: kind, Workers: 2, Duration: time.Hour, Amount: 1,
		ShmName: os.Getenv("MPLOCK_TEST_SHM"),
		Progress: func(p BankProgress) {
			if !started && p.Ops > 0 {
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

// leakCheck fails the test if its runs left anything behind: child
// processes, files in its private TMPDIR (run directories), /dev/shm files
// named for this test. (Other processes on the machine create semaphores
// and shared memory concurrently, so those checks are precise: runBank
// checks the semaphore each sysv run reports.)
func leakCheck(t *testing.T) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Cleanup(func() {
		if kids := proctest.Children(os.Getpid()); len(kids) > 0 {
			t.Errorf("child processes left behind: %v", kids)
		}
		for _, f := range shmFiles(t) {
			if strings.HasPrefix(f, testShmPrefix()) {
				t.Errorf("/dev/shm/%s left behind", f)
			}
		}
		if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
			t.Errorf("%d entries left in TMPDIR, first %s", len(ents), ents[0].Name())
		}
	})
}

// testShmPrefix names this test process's named regions.
func testShmPrefix() string { return "mplock-test-" + strconv.Itoa(os.Getpid()) }

func shmFiles(t *testing.T) []string {
	ents, err := os.ReadDir("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
