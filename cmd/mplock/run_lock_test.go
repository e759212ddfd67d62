package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/netfault"
	"mplock/internal/proctest"
)

// TestRunPartitionStopsCommandBeforeNextHolder is issue 9's first fault.
// Holder A runs a command that appends a timestamped line every 50ms, with
// a 1s lease, through a proxy that then black-holes the link: no FIN, no
// RST, nothing. The server expires A's lease and grants the lock to B, which
// appends one line. A must have stopped its command before that, by its own
// clock: in the file, every A line comes before B's. The gap between them is
// logged (`go test -count=20 -run Partition -v` measures it over 20 runs).
func TestRunPartitionStopsCommandBeforeNextHolder(t *testing.T) {
	addr := dlServe(t)
	proxy := netfault.Start(t, addr)
	log := filepath.Join(t.TempDir(), "writes.log")
	appendLine := func(who string) string {
		return fmt.Sprintf(`echo "%s $(date +%%s.%%N)" >> %q`, who, log)
	}
	a := mplockCommand(t, "run", "job", "--ttl", "1s", "--server", proxy.Addr(), "--",
		"sh", "-c", "while :; do "+appendLine("A")+"; sleep 0.05; done")
	var aErr bytes.Buffer
	a.Stderr = &aErr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTree(a.Process.Pid) })
	aDone := waitInBackground(a)
	proctest.Eventually(t, "A's command to write twice", func() bool { return len(writes(t, log)) >= 2 })

	proxy.Blackhole()
	b := mplockCommand(t, "run", "job", "--server", addr, "--", "sh", "-c", appendLine("B"))
	var bErr bytes.Buffer
	b.Stderr = &bErr
	if err := runBounded(t, b); err != nil {
		t.Fatalf("B: %v\n%s", err, bErr.String())
	}
	wantExit(t, "A, after B ran", a, aDone, exitLockLost, &aErr)
	if !strings.Contains(aErr.String(), "no renewal of the lease on job confirmed") {
		t.Errorf("A did not say why it stopped its command:\n%s", aErr.String())
	}

	lines := writes(t, log)
	lastA, firstB := -1, -1
	for i, w := range lines {
		switch {
		case w.who == "A" && firstB >= 0:
			t.Fatalf("A wrote after B (line %d after line %d): two holders ran at once\n%s", i+1, firstB+1, aErr.String())
		case w.who == "A":
			lastA = i
		case w.who == "B" && firstB < 0:
			firstB = i
		}
	}
	if lastA < 0 || firstB < 0 {
		t.Fatalf("want lines of A then B, got %+v", lines)
	}
	gap := lines[firstB].at.Sub(lines[lastA].at)
	if gap <= 0 {
		t.Fatalf("A's last write at %v, B's first at %v: not before", lines[lastA].at, lines[firstB].at)
	}
	t.Logf("gap between A's last write and B's first: %v", gap.Round(time.Millisecond))
}

type write struct {
	who string
	at  time.Time
}

// writes parses the partition test's log: "WHO SECONDS.NANOS" per line.
func writes(t *testing.T, path string) []write {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []write
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		who, ts, ok := strings.Cut(line, " ")
		sec, nsec, ok2 := strings.Cut(ts, ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt(nsec, 10, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil {
			continue // a line being written
		}
		out = append(out, write{who: who, at: time.Unix(s, ns)})
	}
	return out
}

// runBounded runs cmd to its end, failing the test if that takes longer
// than hangBound.
func runBounded(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTree(cmd.Process.Pid) })
	select {
	case err := <-waitInBackground(cmd):
		return err
	case <-time.After(hangBound):
		t.Fatalf("%v still running after %v; processes: %s", cmd.Args, hangBound, treeStates(cmd.Process.Pid))
		return nil
	}
}

// waitInBackground waits for cmd, started, in a goroutine of its own, and
// returns the channel its Wait result comes on.
func waitInBackground(cmd *exec.Cmd) <-chan error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return done
}

// wantExit takes cmd's Wait result from done (waitInBackground) and fails
// the test unless cmd exited with status want, or if it still runs
// hangBound later. who names cmd in the failure, which shows output, what
// cmd wrote (nil: nothing).
func wantExit(t *testing.T, who string, cmd *exec.Cmd, done <-chan error, want int, output fmt.Stringer) {
	t.Helper()
	said := func() string {
		if output == nil {
			return ""
		}
		return output.String()
	}
	select {
	case err := <-done:
		code := -1
		var ee *exec.ExitError
		switch {
		case err == nil:
			code = 0
		case errors.As(err, &ee):
			code = ee.ExitCode()
		}
		if code != want {
			t.Fatalf("%s: %v, want exit status %d\n%s", who, err, want, said())
		}
	case <-time.After(hangBound):
		t.Fatalf("%s still running %v later; processes: %s\n%s", who, hangBound, treeStates(cmd.Process.Pid), said())
	}
}

// TestRunSIGKILLedWithItsJanitorLeavesNoProcess is issue 9's second fault:
// `pkill -9 mplock` kills mplock run and its janitor at once, at any
// moment. Nothing of the command may survive it: not the command, not a
// child of it, not a daemon that left its process group. 50 tries at
// random moments, with a PID namespace (in a third of them its init is
// killed too) and 20 without (its init, a subreaper, cleans up).
func TestRunSIGKILLedWithItsJanitorLeavesNoProcess(t *testing.T) {
	addr := dlServe(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid())))
	for _, mode := range []struct {
		name  string
		tries int
		args  []string
	}{
		{"pid namespace", 50, nil},
		{"no pid namespace", 20, []string{"--no-pid-namespace"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			survivors, started := 0, 0
			marks := t.TempDir()
			for i := range mode.tries {
				// Every process of the command carries tag in its command
				// line, and nothing else does.
				tag := fmt.Sprintf("7%03d.%d", i, os.Getpid()%100000)
				killTaggedAtEnd(t, tag)
				mark := filepath.Join(marks, tag)
				script := fmt.Sprintf(`setsid sleep %[1]s & sh -c 'sleep %[1]s &'; touch %[2]q; while :; do sleep 0.05; done # %[1]s`, tag, mark)
				args := append([]string{"run", fmt.Sprintf("job%d", i), "--server", addr}, mode.args...)
				run := mplockCommand(t, append(args, "--", "sh", "-c", script)...)
				if err := run.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(200 * time.Millisecond)))) // the random moment
				// Stop it first, so that the children it has are the
				// children it will have; then kill the janitor before mplock
				// run, so that the janitor cannot clean up.
				run.Process.Signal(syscall.SIGSTOP)
				killInit := mode.args == nil && i%3 == 2
				for _, k := range proctest.Children(run.Process.Pid) {
					cmdline := strings.Join(proctest.Cmdline(k), " ")
					if strings.Contains(cmdline, "worker janitor") || killInit && strings.Contains(cmdline, "worker exec") {
						syscall.Kill(k, syscall.SIGKILL)
					}
				}
				run.Process.Kill()
				run.Wait()
				if _, err := os.Stat(mark); err == nil {
					started++ // killed while its command and both daemons ran
				}
				var left []int
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					if left = tagged(tag); len(left) == 0 || time.Now().After(deadline) {
						break
					}
				}
				if len(left) > 0 {
					survivors++
					t.Errorf("try %d: processes of the command survived: %s", i, treeStates(left[0]))
					for _, p := range left {
						syscall.Kill(p, syscall.SIGKILL)
					}
					if survivors == 3 {
						t.Fatalf("giving up after %d tries", i+1)
					}
				}
			}
			t.Logf("%d of %d tries left processes of the command running; %d killed it while it ran", survivors, mode.tries, started)
			if started < mode.tries/4 {
				t.Fatalf("only %d of %d tries killed mplock run while its command ran: the test tried too little", started, mode.tries)
			}
		})
	}
}

// killTaggedAtEnd kills, when the test ends, every process still carrying
// tag: a daemon that escaped a broken mplock run is no descendant of
// anything the test started, and must not outlive the test either.
func killTaggedAtEnd(t *testing.T, tag string) {
	t.Cleanup(func() {
		for _, p := range tagged(tag) {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
}

// tagged returns the live processes whose command line contains tag.
func tagged(tag string) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(strings.Join(proctest.Cmdline(pid), " "), tag) && proctest.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// stderrLines delivers a process's stderr line by line.
func stderrLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	r, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}
