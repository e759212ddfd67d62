package proctest

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("PROCTEST_HELPER") != "" {
		fmt.Println("hello")
		fmt.Println("bye")
		time.Sleep(time.Hour) // until the test kills it
	}
	os.Exit(m.Run())
}

func TestHelperChildrenAndAlive(t *testing.T) {
	h := StartHelper(t, "PROCTEST_HELPER=1")
	h.Expect(t, "hello")
	if got := h.Line(t); got != "bye" {
		t.Fatalf("second line %q", got)
	}
	if !slices.Contains(Children(os.Getpid()), h.Pid()) {
		t.Fatalf("helper %d not among the children %v", h.Pid(), Children(os.Getpid()))
	}
	if !slices.Contains(ChildrenRunning(os.Getpid(), "-test.run=^$"), h.Pid()) {
		t.Fatal("helper not found by its command line")
	}
	if len(ChildrenRunning(os.Getpid(), "no-such-argument")) != 0 {
		t.Fatal("ChildrenRunning matched an argument nobody has")
	}
	if !Alive(h.Pid()) {
		t.Fatal("running helper not alive")
	}
	h.Cmd.Process.Kill()
	h.Cmd.Wait()
	Eventually(t, "the helper to be gone", func() bool { return !Alive(h.Pid()) })
	if slices.Contains(Children(os.Getpid()), h.Pid()) {
		t.Fatal("reaped helper still a child")
	}
}

// TestStopped: a helper (a Go program, several threads) is not stopped
// while it runs, is once a SIGSTOP has reached all its threads, and is not
// after SIGCONT.
func TestStopped(t *testing.T) {
	h := StartHelper(t, "PROCTEST_HELPER=1")
	h.Expect(t, "hello")
	if Stopped(h.Pid()) {
		t.Fatal("a running helper counted as stopped")
	}
	if err := syscall.Kill(h.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "the helper's threads to stop", func() bool { return Stopped(h.Pid()) })
	if err := syscall.Kill(h.Pid(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "the helper to go on", func() bool { return !Stopped(h.Pid()) })
	if Stopped(os.Getpid()) || Stopped(-1) {
		t.Fatal("this test, or no process, counted as stopped")
	}
}
