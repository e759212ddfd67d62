package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/proctest"
)

// TestParseControl: the control protocol is strict; anything but the
// lines mplock run sends is refused.
func TestParseControl(t *testing.T) {
	for _, tc := range []struct {
		line string
		want controlLine
		ok   bool
	}{
		{"go\n", controlLine{verb: ctlGo}, true},
		{"kill\n", controlLine{verb: ctlKill}, true},
		{"deadline 123456789 1000\n", controlLine{verb: ctlDeadline, a: 123456789, b: 1000}, true},
		{"deadline 5 5\n", controlLine{verb: ctlDeadline, a: 5, b: 5}, true},
		{"signal 15\n", controlLine{verb: ctlSignal, a: 15}, true},
		{"signal 64\n", controlLine{verb: ctlSignal, a: 64}, true},
		{"stop 42\n", controlLine{verb: ctlStop, a: 42}, true},
		{"go", controlLine{}, false},           // no newline
		{"go \n", controlLine{}, false},        // trailing space
		{"go\r\n", controlLine{}, false},       // carriage return
		{"GO\n", controlLine{}, false},         // case
		{"hello\n", controlLine{}, false},      // unknown
		{"\n", controlLine{}, false},           // empty
		{"go 1\n", controlLine{}, false},       // a number too many
		{"deadline 5\n", controlLine{}, false}, // a number too few
		{"deadline 1  2\n", controlLine{}, false},
		{"deadline -5 0\n", controlLine{}, false},
		{"deadline +5 0\n", controlLine{}, false},
		{"deadline 0x10 0\n", controlLine{}, false},
		{"deadline 0 0\n", controlLine{}, false},                   // no time 0
		{"deadline 5 6\n", controlLine{}, false},                   // grace beyond the deadline
		{"deadline 1234567890123456789 0\n", controlLine{}, false}, // 19 digits
		{"signal 0\n", controlLine{}, false},
		{"signal 65\n", controlLine{}, false},
		{"signal TERM\n", controlLine{}, false},
		{"stop 0\n", controlLine{}, false},
		{"stop\n", controlLine{}, false},
		{"deadline " + strings.Repeat("1", 60) + "\n", controlLine{}, false}, // longer than maxControlLine
	} {
		got, err := parseControl([]byte(tc.line))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseControl(%q) = %+v, %v; want %+v, ok %v", tc.line, got, err, tc.want, tc.ok)
		}
	}
}

// initUnderTest is `mplock worker exec sh -c SCRIPT`, run by the test as
// mplock run would run it without a PID namespace.
type initUnderTest struct {
	cmd     *exec.Cmd
	ctl     *os.File
	reports <-chan initReport
	stderr  bytes.Buffer
	exited  chan error
}

func startInit(t *testing.T, script string) *initUnderTest {
	t.Helper()
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	it := &initUnderTest{ctl: ctlW, exited: make(chan error, 1)}
	it.cmd = exec.Command("/proc/self/exe", "worker", "exec", "/bin/sh", "sh", "-c", script)
	it.cmd.Args[0] = "mplock" // TestMain runs the CLI under this name
	it.cmd.ExtraFiles = []*os.File{ctlR, repW}
	it.cmd.Stderr = &it.stderr
	it.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := it.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctlR.Close()
	repW.Close()
	t.Cleanup(func() {
		ctlW.Close()
		killTree(it.cmd.Process.Pid)
		syscall.Kill(-it.cmd.Process.Pid, syscall.SIGKILL)
	})
	it.reports = readInitReports(repR)
	go func() { it.exited <- it.cmd.Wait() }()
	return it
}

func (it *initUnderTest) send(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := it.ctl.WriteString(l); err != nil {
			t.Fatalf("control line %q: %v", l, err)
		}
	}
}

// report waits for the next report line.
func (it *initUnderTest) report(t *testing.T) initReport {
	t.Helper()
	select {
	case r, ok := <-it.reports:
		if !ok {
			t.Fatalf("the init exited without a report; stderr: %s", it.stderr.String())
		}
		return r
	case <-time.After(hangBound):
		t.Fatalf("no report from the init within %v", hangBound)
	}
	return initReport{}
}

// wait waits for the init to exit.
func (it *initUnderTest) wait(t *testing.T) {
	t.Helper()
	select {
	case <-it.exited:
	case <-time.After(hangBound):
		t.Fatalf("the init still runs %v later: %s", hangBound, treeStates(it.cmd.Process.Pid))
	}
}

// TestInitRefusesABrokenControlPipe: a control line outside the protocol
// means a broken mplock run, which cannot be trusted to stop the command:
// before "go" the init runs nothing, after it the init kills the command;
// either way it exits and says why.
func TestInitRefusesABrokenControlPipe(t *testing.T) {
	for _, bad := range []string{"hello\n", "signal 9\n", "deadline 5 6\n", strings.Repeat("9", 100) + "\n", "go\ngo\n"} {
		t.Run(fmt.Sprintf("%.12q", bad), func(t *testing.T) {
			mark := filepath.Join(t.TempDir(), "ran")
			it := startInit(t, fmt.Sprintf(`echo $$ > %q; while :; do sleep 0.05; done`, mark))
			var pid int
			if strings.HasPrefix(bad, "go\n") {
				it.send(t, "go\n")
				pid = waitForPid(t, mark)
				bad = strings.TrimPrefix(bad, "go\n")
			}
			it.send(t, bad)
			it.wait(t)
			if pid == 0 {
				if _, err := os.Stat(mark); err == nil {
					t.Fatal("the command ran, though the control pipe broke the protocol before go")
				}
			} else if processState(pid) != 0 {
				t.Fatalf("the command (pid %d) still runs after its init refused the control pipe", pid)
			}
			if !strings.Contains(it.stderr.String(), "mplock: worker exec: ") {
				t.Errorf("the init did not say what it refused: %q", it.stderr.String())
			}
		})
	}
}

// waitForPid waits for the command to write its pid to path, and returns
// it.
func waitForPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	proctest.Eventually(t, "the command to write its pid to "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid = atoiOrFail(t, strings.TrimSpace(string(b)))
		return true
	})
	return pid
}

// TestInitKeepsItsOwnLeaseClock drives the init as mplock run does and then
// stops: while later deadlines keep coming, the command runs on; when they
// stop, the init sends SIGTERM --grace before the last deadline and, the
// command ignoring it, SIGKILL at it, and reports both. A deadline already
// within --grace when the command is to start keeps it from starting.
func TestInitKeepsItsOwnLeaseClock(t *testing.T) {
	const lease, grace = 450 * time.Millisecond, 150 * time.Millisecond
	line := func() string {
		return deadlineLine(time.Now().Add(lease), grace) + "\n"
	}
	t.Run("renewed, then not", func(t *testing.T) {
		t.Parallel()
		mark := filepath.Join(t.TempDir(), "ran")
		it := startInit(t, fmt.Sprintf(`trap 'echo TERM >> %[1]q' TERM; echo $$ > %[1]q; while :; do sleep 0.05; done`, mark))
		it.send(t, line(), "go\n")
		var pid int
		pid = waitForPid(t, mark)
		// Renewals for three leases' time, every sixth of the lease.
		for end := time.Now().Add(3 * lease); time.Now().Before(end); time.Sleep(lease / 6) {
			it.send(t, line())
			select {
			case r := <-it.reports:
				t.Fatalf("report %+v while the lease was renewed", r)
			default:
			}
		}
		last := time.Now()
		if r := it.report(t); r.kind != repExpiring {
			t.Fatalf("first report %+v, want %s", r, repExpiring)
		}
		for {
			r := it.report(t)
			if r.kind == repKilled {
				if r.code < 1 || !strings.Contains(r.text, fmt.Sprint(pid)) {
					t.Fatalf("killed report %+v does not name the command (pid %d)", r, pid)
				}
				break
			}
		}
		t.Logf("SIGTERM and SIGKILL reported %v after the last deadline was sent, for a %v lease", time.Since(last).Round(time.Millisecond), lease)
		for r := it.report(t); r.kind != repEmpty; r = it.report(t) {
			if r.kind == repExited && r.code != 128+int(syscall.SIGKILL) {
				t.Errorf("the command exited %d, want %d (SIGKILL)", r.code, 128+int(syscall.SIGKILL))
			}
		}
		if b, _ := os.ReadFile(mark); !strings.Contains(string(b), "TERM") {
			t.Errorf("the command did not get SIGTERM before SIGKILL: %q", b)
		}
		if processState(pid) != 0 {
			t.Fatalf("the command (pid %d) still runs after the init's SIGKILL", pid)
		}
	})
	t.Run("passed before go", func(t *testing.T) {
		t.Parallel()
		mark := filepath.Join(t.TempDir(), "ran")
		it := startInit(t, fmt.Sprintf(`echo $$ > %q`, mark))
		it.send(t, deadlineLine(time.Now().Add(grace/2), grace)+"\n", "go\n")
		if r := it.report(t); r.kind != repFailed || r.code != exitLockLost {
			t.Fatalf("report %+v, want %s %d", r, repFailed, exitLockLost)
		}
		if _, err := os.Stat(mark); err == nil {
			t.Fatal("the command ran on a lease within --grace of its deadline")
		}
		it.ctl.Close()
		it.wait(t)
	})
}
