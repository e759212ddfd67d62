package janitor

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/proctest"
)

func serve(t *testing.T, manifest string) (removed []Resource, log string) {
	t.Helper()
	var buf bytes.Buffer
	err := Serve(strings.NewReader(manifest), &buf, func(r Resource) error {
		removed = append(removed, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return removed, buf.String()
}

func TestServeRemovesWhatIsTrackedWhenTheParentDies(t *testing.T) {
	// No "done" line: the parent died. Forgotten resources stay, the rest
	// goes, semaphores first and directories last.
	removed, log := serve(t, strings.Join([]string{
		"track dir /tmp/mplock-run-1",
		"track file /dev/shm/bank",
		"track sem 42",
		"track sem 43",
		"forget sem 43",
		"",
	}, "\n"))
	want := []Resource{{SysVSem, "42"}, {File, "/dev/shm/bank"}, {Dir, "/tmp/mplock-run-1"}}
	if !reflect.DeepEqual(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if strings.Count(log, "removed") != 3 {
		t.Fatalf("log does not report each removal:\n%s", log)
	}
}

func TestServeRemovesNothingAfterDone(t *testing.T) {
	if removed, _ := serve(t, "track sem 42\ntrack dir /tmp/mplock-run-1\ndone\n"); len(removed) != 0 {
		t.Fatalf("removed %v after done", removed)
	}
}

func TestServeRefusesWhatIsNotMplocks(t *testing.T) {
	removed, log := serve(t, strings.Join([]string{
		"track dir /home",                // not an mplock run directory
		"track dir /tmp/../etc/mplock-x", // not clean
		"track file relative/path",
		"track file /etc/passwd",       // not a named region
		"track file /dev/shm/../etc/x", // not clean
		"track group 1",                // init's
		"track group 0",                // our own
		"track init 1",                 // init's
		"track sem -1",
		"track sem abc",
		"track socket /tmp/x",
		"garbage",
		"",
	}, "\n"))
	if len(removed) != 0 {
		t.Fatalf("removed %v", removed)
	}
	if strings.Count(log, "ignoring") != 12 {
		t.Fatalf("want every bad line reported, got:\n%s", log)
	}
}

func TestRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mplock-run-x")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "bank.lock"), nil, 0o600)
	file := "/dev/shm/mplock-janitor-test-" + strconv.Itoa(os.Getpid())
	os.WriteFile(file, nil, 0o600)
	defer os.Remove(file)
	for _, r := range []Resource{{Dir, dir}, {File, file}} {
		if err := Remove(r); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(r.ID); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", r, err)
		}
		if err := Remove(r); err != nil {
			t.Fatalf("removing %s again: %v, want nil", r, err)
		}
	}
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, nil, 0o600)
	if err := Remove(Resource{File, outside}); err == nil {
		t.Fatal("Remove of a file that is not a named region succeeded")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("refused file removed anyway: %v", err)
	}
}

func TestRemoveGroupKillsTheWholeGroup(t *testing.T) {
	// A shell in its own process group with a child of its own: both must
	// die, the grandchild too, which a parent-death signal would not reach.
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var grandchild int
	if _, err := fmt.Fscan(out, &grandchild); err != nil {
		t.Fatal(err)
	}
	if err := Remove(Resource{Group, strconv.Itoa(cmd.Process.Pid)}); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// Orphaned, the dead grandchild waits for init to reap it: a zombie is
	// dead enough.
	proctest.Eventually(t, "the grandchild to die with its group", func() bool { return !proctest.Alive(grandchild) })
	if err := Remove(Resource{Group, strconv.Itoa(cmd.Process.Pid)}); err != nil {
		t.Fatalf("removing a group that is gone: %v, want nil", err)
	}
}

// TestRemoveInitWaitsForItThenKillsItsGroup: the init of mplock run's
// command cleans up after its command when mplock run dies; the janitor
// must not kill it meanwhile, only its group once it has exited (or after
// InitGrace). Here the "init" is a shell leading its group, with a child
// in that group; it exits when its stdin closes.
func TestRemoveInitWaitsForItThenKillsItsGroup(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; read x")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(child, syscall.SIGKILL)
	removed := make(chan error, 1)
	go func() { removed <- Remove(Resource{Init, strconv.Itoa(cmd.Process.Pid)}) }()
	// It must wait while the init lives (the mustBlock pattern of Go's
	// filelock tests: nothing can show that a call blocks for ever).
	select {
	case err := <-removed:
		t.Fatalf("Remove returned (%v) while the init was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	if !proctest.Alive(child) {
		t.Fatal("the init's group was killed while the init was running")
	}
	stdin.Close()
	cmd.Wait()
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, "the init's group to be killed once it exited", func() bool { return !proctest.Alive(child) })
}
