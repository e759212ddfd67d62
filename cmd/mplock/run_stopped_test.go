package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/proctest"
)

// TestRunStoppedRunnerCannotOutliveItsLease is review finding H5: SIGSTOP
// of mplock run alone, not of its command's init, must not let the command
// run on past the lease. Holder A appends a timestamped line every 50ms
// under a 1s lease; right after its command has written, A's mplock run
// (and only it) is stopped, so nothing renews the lease. The server
// expires it and grants the lock to B, which appends 10 lines. The init,
// a process of its own, must have stopped A's command by its own lease
// clock before that: every A line precedes B's first, and no process of
// A's command is left when B is done, though A's mplock run is still
// stopped. Continued, A's mplock run exits 76 and says why.
func TestRunStoppedRunnerCannotOutliveItsLease(t *testing.T) {
	for _, mode := range runModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			testStoppedRunner(t, mode.args)
		})
	}
}

// testStoppedRunner is one run of TestRunStoppedRunnerCannotOutliveItsLease,
// with modeArgs for A's mplock run.
func testStoppedRunner(t *testing.T, modeArgs []string) {
	addr := dlServe(t)
	log := filepath.Join(t.TempDir(), "writes.log")
	tag := fmt.Sprintf("86%d.%d", len(modeArgs), os.Getpid()%100000)
	killTaggedAtEnd(t, tag)
	appendLine := func(who string) string {
		return fmt.Sprintf(`echo "%s $(date +%%s.%%N)" >> %q`, who, log)
	}
	args := append([]string{"run", "stopme", "--ttl", "1s", "--server", addr}, modeArgs...)
	a := mplockCommand(t, append(args, "--", "sh", "-c",
		"while :; do "+appendLine("A")+"; sleep 0.05; done # "+tag)...)
	var aErr bytes.Buffer
	a.Stderr = &aErr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTree(a.Process.Pid) })
	aDone := waitInBackground(a)
	proctest.Eventually(t, "A's command to write", func() bool { return len(writes(t, log)) >= 1 })
	init := -1
	for _, k := range proctest.Children(a.Process.Pid) {
		if strings.Contains(strings.Join(proctest.Cmdline(k), " "), "worker exec") {
			init = k
		}
	}
	if init < 0 {
		t.Fatalf("no init below A's mplock run: %s", treeStates(a.Process.Pid))
	}
	t.Cleanup(func() { a.Process.Signal(syscall.SIGCONT) })
	if err := a.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	proctest.Eventually(t, "A's mplock run to stop", func() bool { return processState(a.Process.Pid) == 'T' })
	if processState(init) == 'T' {
		t.Fatalf("A's init is stopped too: the test must stop mplock run alone; processes: %s", treeStates(a.Process.Pid))
	}

	b := mplockCommand(t, "run", "stopme", "--timeout", "10s", "--server", addr, "--", "sh", "-c",
		"for i in 1 2 3 4 5 6 7 8 9 10; do "+appendLine("B")+"; done")
	var bErr bytes.Buffer
	b.Stderr = &bErr
	if err := runBounded(t, b); err != nil {
		t.Fatalf("B: %v\n%s", err, bErr.String())
	}
	if left := descendants(init); len(left) > 0 {
		t.Errorf("A's command still runs beside the next holder, with A's mplock run stopped: %s", treeStates(init))
	}

	lines := writes(t, log)
	lastA, firstB, afterStop := -1, -1, 0
	for i, w := range lines {
		switch {
		case w.who == "A" && firstB >= 0:
			t.Errorf("A wrote after B (line %d after line %d): two holders ran at once", i+1, firstB+1)
		case w.who == "A":
			lastA = i
			if w.at.After(stoppedAt) {
				afterStop++
			}
		case w.who == "B" && firstB < 0:
			firstB = i
		}
	}
	if lastA < 0 || firstB < 0 {
		t.Fatalf("want lines of A then B, got %+v", lines)
	}
	t.Logf("A's command wrote %d lines after its mplock run was stopped; gap between A's last write and B's first: %v",
		afterStop, lines[firstB].at.Sub(lines[lastA].at).Round(time.Millisecond))

	a.Process.Signal(syscall.SIGCONT)
	wantExit(t, "A, continued", a, aDone, exitLockLost, &aErr)
	if !strings.Contains(aErr.String(), "no renewal of the lease on stopme confirmed") {
		t.Errorf("A did not say why its command was stopped:\n%s", aErr.String())
	}
	t.Logf("A said:\n%s", aErr.String())
}

// TestRunRenewedLeaseKeepsTheCommand: the init stops the command by its own
// clock only if renewals stop; while mplock run keeps renewing the lease,
// it tells the init each new deadline. A command that runs four TTLs, and
// with --keep-lock-for-descendants a daemon it leaves that runs four TTLs,
// both finish their work: the init was told of every renewal. (Without
// the renewals reaching it, the init would stop them after one TTL.)
func TestRunRenewedLeaseKeepsTheCommand(t *testing.T) {
	const ttl = 750 * time.Millisecond
	run := fmt.Sprintf("sleep %.2f", (4 * ttl).Seconds())
	for _, mode := range runModes {
		for _, tc := range []struct {
			name   string
			args   []string
			script string // %[1]q is the file to write to at the end
		}{
			{"command", nil, run + `; echo finished >> %[1]q`},
			{"daemon left running", []string{"--keep-lock-for-descendants"}, `setsid sh -c '` + run + `; echo finished >> %[1]q' & exit 0`},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				addr := dlServe(t)
				log := filepath.Join(t.TempDir(), "log")
				args := append([]string{"run", "long", "--ttl", ttl.String(), "--server", addr}, mode.args...)
				args = append(args, tc.args...)
				cmd := mplockCommand(t, append(args, "--", "sh", "-c", fmt.Sprintf(tc.script, log))...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				if err := runBounded(t, cmd); err != nil {
					t.Fatalf("%v\n%s", err, stderr.String())
				}
				if got, _ := os.ReadFile(log); string(got) != "finished\n" {
					t.Fatalf("the work of %v under a %v lease did not finish (log %q):\n%s", time.Since(start).Round(time.Millisecond), ttl, got, stderr.String())
				}
				if strings.Contains(stderr.String(), "SIG") {
					t.Errorf("a process of the command was signalled though the lease was renewed:\n%s", stderr.String())
				}
			})
		}
	}
}
