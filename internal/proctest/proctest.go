// Package proctest helps tests that start and watch real processes: a
// helper process re-run from the test binary and handed off to through its
// output lines, the children of a process, whether a process is still alive,
// and waiting for an effect that another process does not signal.
package proctest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helper is a process started from the running test binary.
type Helper struct {
	Cmd *exec.Cmd
	out *bufio.Reader
}

// StartHelper runs this test binary again, running no test, with env added
// to its environment: the test's TestMain recognises the helper by that
// environment. Its stderr is the test's; its stdout is read with Line. The
// helper is killed and reaped when the test ends.
func StartHelper(t testing.TB, env ...string) *Helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return &Helper{Cmd: cmd, out: bufio.NewReader(out)}
}

// Pid returns the helper's process id.
func (h *Helper) Pid() int { return h.Cmd.Process.Pid }

// Line reads the helper's next line of output, without its newline: the
// hand-off between the test and its helper, instead of sleeping.
func (h *Helper) Line(t testing.TB) string {
	t.Helper()
	s, err := h.out.ReadString('\n')
	if err != nil {
		t.Fatalf("helper %d: %v (read %q)", h.Pid(), err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// Expect reads the helper's next line and fails the test unless it is want.
func (h *Helper) Expect(t testing.TB, want string) {
	t.Helper()
	if got := h.Line(t); got != want {
		t.Fatalf("helper %d said %q, want %q", h.Pid(), got, want)
	}
}

// Children returns the live (not zombie) processes whose parent is pid.
func Children(pid int) []int {
	var kids []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		state, ppid, ok := stat(p)
		if !ok || state == 'Z' || state == 'X' || ppid != pid {
			continue
		}
		k, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		kids = append(kids, k)
	}
	return kids
}

// ChildrenRunning returns the live children of pid whose command line
// contains args, in sequence ("worker", "bank").
func ChildrenRunning(pid int, args ...string) []int {
	var kids []int
	for _, k := range Children(pid) {
		line := Cmdline(k)
		for i := range line {
			if i+len(args) <= len(line) && slices.Equal(line[i:i+len(args)], args) {
				kids = append(kids, k)
				break
			}
		}
	}
	return kids
}

// Cmdline returns the command line of process pid, or nil.
func Cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	state, _, ok := stat("/proc/" + strconv.Itoa(pid) + "/stat")
	return ok && state != 'Z' && state != 'X'
}

// Stopped reports whether every thread of process pid is stopped (state
// T or t): a SIGSTOP has taken effect once kill has returned only when
// each thread has handled it, and until then a thread can still run and
// write.
func Stopped(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return false
	}
	for _, e := range ents {
		state, _, ok := stat(filepath.Join(dir, e.Name(), "stat"))
		if !ok || state != 'T' && state != 't' {
			return false
		}
	}
	return true
}

// stat reads a process's state letter and parent pid from /proc/<pid>/stat.
// The command name before them is in parentheses and may contain ')'.
func stat(path string) (state byte, ppid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0][0], ppid, true
}

// Eventually polls cond until it holds, failing the test if it does not
// within 20 seconds: for effects of another process that nothing signals
// to the test (a janitor's cleanup, a process's death by parent-death
// signal). It is a bound on a hang, not a timing assertion.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
