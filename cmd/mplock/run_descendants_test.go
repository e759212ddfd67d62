package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mplock/internal/proctest"
)

// runModes are the two ways mplock run runs its command: in a PID namespace
// of its own (the default, where the kernel allows it) and without.
var runModes = []struct {
	name string
	args []string
}{
	{"pid namespace", nil},
	{"no pid namespace", []string{"--no-pid-namespace"}},
}

// TestRunStopsWhatTheCommandLeaves is issue 9's third fault: a command that
// exits leaving processes behind, however they detached, must not leave
// them running beside the next holder. mplock run stops them before it
// releases the lock, and names each.
func TestRunStopsWhatTheCommandLeaves(t *testing.T) {
	addr := dlServe(t)
	for _, mode := range runModes {
		for _, tc := range []struct {
			name    string
			script  string // %[1]s is a tag no other process carries
			killed  bool   // it ignores SIGTERM: SIGKILL after --grace
			leaving string // a regular expression: how many processes it leaves
		}{
			// Each daemon says on the FIFO %[2]s that it has detached,
			// and the command exits only then.
			{name: "setsid", script: `setsid sh -c ': %[1]s; echo > %[2]s; exec sleep %[1]s' & read x < %[2]s`, leaving: "1 process"},
			{name: "double fork", script: `sh -c 'setsid sh -c ": %[1]s; echo > %[2]s; exec sleep %[1]s" &'; read x < %[2]s`, leaving: "1 process"},
			{name: "ignores SIGTERM", script: `setsid sh -c ': %[1]s; trap "" TERM; echo > %[2]s; while :; do sleep 0.05; done' & read x < %[2]s`,
				killed: true, leaving: "[12] process(es)?"}, // with its sleep, or between two
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				tag := fmt.Sprintf("8%d.%d", len(tc.name), os.Getpid()%100000)
				killTaggedAtEnd(t, tag)
				ready := filepath.Join(t.TempDir(), "ready")
				if err := unix.Mkfifo(ready, 0o600); err != nil {
					t.Fatal(err)
				}
				args := append([]string{"run", "bg", "--grace", "300ms", "--server", addr}, mode.args...)
				cmd := mplockCommand(t, append(args, "--", "sh", "-c", fmt.Sprintf(tc.script, tag, ready)+"\nexit 7")...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				err := runBounded(t, cmd)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 7 {
					t.Fatalf("exit: %v, want the command's status 7\n%s", err, stderr.String())
				}
				if left := tagged(tag); len(left) > 0 {
					t.Fatalf("still running after mplock run exited: %s\n%s", treeStates(left[0]), stderr.String())
				}
				named := regexp.MustCompile(`the command exited \(status 7\), leaving ` + tc.leaving + `: ([0-9]+) \([^)]*` + regexp.QuoteMeta(tag))
				m := named.FindStringSubmatch(stderr.String())
				if m == nil {
					t.Fatalf("stderr does not name the %s left behind, by pid and command line:\n%s", tc.leaving, stderr.String())
				}
				// The SIGKILL names that process again, by pid: the init and
				// mplock run both kill, and a process caught dying by one's
				// listing shows only its name (sh), its command line gone.
				pid := m[len(m)-1] // after tc.leaving's own groups
				if tc.killed && !regexp.MustCompile(`still running: SIGKILL to [12] process(es)?: (.*, )?`+pid+` \(`).MatchString(stderr.String()) {
					t.Errorf("stderr does not say SIGTERM was not enough for %s:\n%s", pid, stderr.String())
				}
				if code := exitCodeOf(mplockCommand(t, "run", "bg", "--timeout", "0", "--server", addr, "--", "true")); code != 0 {
					t.Fatalf("the next run of bg exited %d: the lock was not released", code)
				}
			})
		}
	}
}

// TestRunLostLockStopsDetachedProcesses: when the lock is lost while the
// command runs, every process of the command is stopped, a daemon that
// left its process group too, and mplock run exits 76. The command ignores
// SIGTERM, so mplock run waits out --grace before its SIGKILL: waiting, not
// spinning (its CPU time stays far below the grace).
func TestRunLostLockStopsDetachedProcesses(t *testing.T) {
	for _, mode := range runModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := startServe(t)
			tag := fmt.Sprintf("9%d.%d", len(mode.args), os.Getpid()%100000)
			killTaggedAtEnd(t, tag)
			ready := filepath.Join(t.TempDir(), "ready")
			if err := unix.Mkfifo(ready, 0o600); err != nil {
				t.Fatal(err)
			}
			const grace = 1500 * time.Millisecond
			args := append([]string{"run", "job", "--grace", grace.String(), "--server", srv.addr}, mode.args...)
			// The daemon says on the FIFO that it has left the group; only
			// then does the command print its pid.
			script := fmt.Sprintf(`trap "" TERM; setsid sh -c ': %[1]s; echo > %[2]s; exec sleep %[1]s' & read x < %[2]s; `+
				echoHostPid+`; while :; do sleep 0.1; done`, tag, ready)
			cmd := mplockCommand(t, append(args, "--", "sh", "-c", script)...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killTree(cmd.Process.Pid) })
			var pid int
			if _, err := fmt.Fscan(out, &pid); err != nil {
				t.Fatal(err)
			}
			if len(tagged(tag)) == 0 {
				t.Fatal("the daemon is not running")
			}
			srv.cmd.Process.Kill() // the lock is gone with the server
			wantExit(t, "mplock run, its server killed", cmd, waitInBackground(cmd), exitLockLost, &stderr)
			if left := tagged(tag); len(left) > 0 {
				t.Fatalf("the detached daemon outlived the lost lock: %s\n%s", treeStates(left[0]), stderr.String())
			}
			if proctest.Alive(pid) {
				t.Fatalf("the command (pid %d) outlived the lost lock", pid)
			}
			if !strings.Contains(stderr.String(), "still running: SIGKILL") {
				t.Errorf("the command ignored SIGTERM, yet no SIGKILL was reported:\n%s", stderr.String())
			}
			if cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(); cpu > grace/4 {
				t.Errorf("mplock run used %v of CPU, waiting out a %v grace: it spins", cpu, grace)
			}
		})
	}
}

// TestRunKeepLockForDescendants: with --keep-lock-for-descendants, a daemon
// the command leaves keeps the lock: the next holder starts only once it
// has exited, and mplock run exits with the command's status.
func TestRunKeepLockForDescendants(t *testing.T) {
	for _, mode := range runModes {
		t.Run(mode.name, func(t *testing.T) {
			addr := dlServe(t)
			dir := t.TempDir()
			fifo, log := filepath.Join(dir, "release"), filepath.Join(dir, "log")
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"run", "bg", "--keep-lock-for-descendants", "--server", addr}, mode.args...)
			tag := fmt.Sprintf("84%d.%d", len(mode.args), os.Getpid()%100000)
			killTaggedAtEnd(t, tag)
			daemon := fmt.Sprintf(`: %s; read x < %q; echo daemon >> %q`, tag, fifo, log)
			a := mplockCommand(t, append(args, "--", "sh", "-c",
				fmt.Sprintf(`setsid sh -c '%s' & echo command >> %q; exit 3`, daemon, log))...)
			aErr := stderrLines(t, a)
			if err := a.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killTree(a.Process.Pid) })
			var said []string
			for line := range aErr {
				said = append(said, line)
				if strings.Contains(line, "holding the lock on bg until it has exited") {
					break
				}
			}
			if code := exitCodeOf(mplockCommand(t, "run", "bg", "--timeout", "0", "--server", addr, "--", "true")); code != exitLockTaken {
				t.Fatalf("a try-lock of bg while the daemon runs exited %d, want %d", code, exitLockTaken)
			}
			b := mplockCommand(t, "run", "bg", "--server", addr, "--", "sh", "-c", fmt.Sprintf(`echo next >> %q`, log))
			if err := b.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { killTree(b.Process.Pid) })
			if code := exitCodeOf(mplockCommand(t, "status", "bg", "--wait-waiters", "1", "--server", addr)); code != 0 {
				t.Fatal("the next holder never queued for bg")
			}
			// Release the daemon.
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("go\n"))
			w.Close()
			if err := b.Wait(); err != nil {
				t.Fatalf("next holder: %v", err)
			}
			var ee *exec.ExitError
			if err := a.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("mplock run: %v, want the command's status 3; it said %q", err, said)
			}
			got, _ := os.ReadFile(log)
			if string(got) != "command\ndaemon\nnext\n" {
				t.Fatalf("log %q: the next holder ran before the daemon ended", got)
			}
		})
	}
}

// exitCodeOf runs cmd and returns its exit status.
func exitCodeOf(cmd *exec.Cmd) int {
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestRunFallsBackWhenNamespacesAreRefused: where the kernel refuses a PID
// namespace, mplock run runs the command without one, says so with
// --verbose, and still stops what the command leaves. The refusal is made
// real inside a user namespace of the test's own, whose max_pid_namespaces
// is set to 0 (the machine's settings are not touched).
func TestRunFallsBackWhenNamespacesAreRefused(t *testing.T) {
	if err := exec.Command("unshare", "-U", "-r", "true").Run(); err != nil {
		t.Skipf("no user namespace for the test (unshare -U -r: %v)", err)
	}
	addr := dlServe(t)
	mplock := mplockCommand(t)
	tag := fmt.Sprintf("85.%d", os.Getpid()%100000)
	killTaggedAtEnd(t, tag)
	ready := filepath.Join(t.TempDir(), "ready")
	if err := unix.Mkfifo(ready, 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`setsid sh -c ': %[1]s; echo > %[2]s; exec sleep %[1]s' & read x < %[2]s`, tag, ready)
	cmd := exec.Command("unshare", "-U", "-r", "sh", "-c",
		`echo 0 > /proc/sys/user/max_pid_namespaces && exec "$MPLOCK" run job -v --server "$ADDR" -- sh -c "$SCRIPT"`)
	cmd.Env = append(mplock.Env, "MPLOCK="+mplock.Path, "ADDR="+addr, "SCRIPT="+script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := runBounded(t, cmd); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no PID namespace for the command (") {
		t.Errorf("--verbose does not say the command ran without a PID namespace, and why:\n%s", stderr.String())
	}
	if !regexp.MustCompile(`leaving 1 process: [0-9]+ \([^)]*` + regexp.QuoteMeta(tag)).MatchString(stderr.String()) {
		t.Errorf("the daemon left behind is not named:\n%s", stderr.String())
	}
	if left := tagged(tag); len(left) > 0 {
		t.Fatalf("still running after mplock run exited: %s\n%s", treeStates(left[0]), stderr.String())
	}
}
