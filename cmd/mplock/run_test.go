package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mplock/internal/proctest"
)

// hangBound bounds each wait of these tests, so that a regression (a
// command stopped for ever) fails the test rather than hanging it. Nothing
// waits for it to pass.
const hangBound = 20 * time.Second

// TestRunLendsTheTerminal runs `mplock run` on a pseudo-terminal, as a
// user at a terminal would: it is the session leader and its group the
// terminal's foreground, and its command reads the terminal. A command in a
// background group of its terminal would be stopped by SIGTTIN at its first
// read, for ever, with the lock held.
func TestRunLendsTheTerminal(t *testing.T) {
	addr := dlServe(t)
	dir := t.TempDir()
	for _, fifo := range []string{"go", "done"} {
		if err := unix.Mkfifo(filepath.Join(dir, fifo), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		argv   []string // run on the terminal, as the session leader
		output string   // a line the terminal shows once the input was read
		code   int
	}{
		{
			name:   "command reads a line",
			argv:   []string{"run", "job", "--server", addr, "--", "sh", "-c", `read line; echo "got $line"; exit 7`},
			output: "got hello",
			code:   7,
		},
		{
			// Ctrl-Z stops the terminal's foreground group, the command's.
			// mplock run must pass the stop on rather than wait for ever
			// beside a stopped group that holds the terminal; here, with
			// no shell above it to resume it, it continues the command.
			name:   "command stopped as by Ctrl-Z",
			argv:   []string{"run", "job", "--server", addr, "--", "sh", "-c", `kill -TSTP $$; read line; echo "got $line"; exit 7`},
			output: "got hello",
			code:   7,
		},
		{
			// A pipeline shares mplock run's process group: its last
			// process reads the terminal (as a pager reads its keys) while
			// the command runs, and the command waits for it. The terminal
			// must stay with the group, or both wait for ever.
			name: "another process of the job reads the terminal",
			argv: []string{"shell", "-c", `
				sh -c 'read x < "$D/go"; read line </dev/tty; echo "reader got $line" >/dev/tty; echo > "$D/done"' |
				"$MPLOCK" run job --server "$ADDR" -- sh -c 'echo > "$D/go"; read y < "$D/done"' </dev/tty`},
			output: "reader got hello",
			code:   0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptm, pts := openPTY(t)
			var cmd *exec.Cmd
			if tc.argv[0] == "shell" {
				mplock := mplockCommand(t)
				cmd = exec.Command("sh", tc.argv[1:]...)
				cmd.Env = append(mplock.Env, "MPLOCK="+mplock.Path, "ADDR="+addr, "D="+dir)
			} else {
				cmd = mplockCommand(t, tc.argv...)
			}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pts.Close()
			t.Cleanup(func() { killTree(cmd.Process.Pid) })
			// The terminal keeps the line until someone reads it.
			if _, err := ptm.Write([]byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			seen := readTerminal(t, ptm, tc.output, cmd.Process.Pid)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var err error
			select {
			case err = <-exited:
			case <-time.After(hangBound):
				t.Fatalf("still running %v after showing %q; processes: %s", hangBound, tc.output, treeStates(cmd.Process.Pid))
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit status %d, want %d; terminal: %q", code, tc.code, seen)
			}
		})
	}
}

// TestRunSignalResumesStoppedCommand: a signal that mplock run passes on to
// the command's group must take effect even if the command is stopped (a
// stopped process acts on nothing but SIGKILL until continued).
func TestRunSignalResumesStoppedCommand(t *testing.T) {
	cmd, pid := startRunPrinting(t, echoHostPid+`; kill -STOP $$; echo resumed`)
	proctest.Eventually(t, "the command to stop", func() bool { return processState(pid) == 'T' })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Exit status 143: the command was killed by the SIGTERM passed on.
	wantExit(t, "mplock run, after SIGTERM", cmd, waitInBackground(cmd), 128+int(syscall.SIGTERM), nil)
}

// TestRunKilledTakesTheCommandsChildren: when mplock run is SIGKILLed, the
// server releases its lock at once, so nothing the command started may go
// on running. Pdeathsig reaches only the command itself; its child here,
// a sleep in the same process group, must die too.
func TestRunKilledTakesTheCommandsChildren(t *testing.T) {
	cmd, child := startRunPrinting(t, `sh -c '`+echoHostPid+`; exec sleep 300' & wait`)
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if !proctest.Alive(child) {
		t.Fatalf("the command's child %d is not running", child)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	proctest.Eventually(t, fmt.Sprintf("the command's child %d to die with mplock run", child), func() bool {
		return !proctest.Alive(child)
	})
}

// readTerminal reads what the terminal shows until a line contains want,
// and returns the lines.
func readTerminal(t *testing.T, ptm *os.File, want string, leader int) []string {
	t.Helper()
	lines := terminalLines(ptm)
	var seen []string
	deadline := time.After(hangBound)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the terminal closed without showing %q: %q", want, seen)
			}
			seen = append(seen, line)
			if strings.Contains(line, want) {
				return seen
			}
		case <-deadline:
			t.Fatalf("no %q on the terminal within %v: %q; processes: %s", want, hangBound, seen, treeStates(leader))
		}
	}
}

// descendants returns pid's live descendants, parents before children.
func descendants(pid int) []int {
	var out []int
	for _, k := range proctest.Children(pid) {
		out = append(out, k)
		out = append(out, descendants(k)...)
	}
	return out
}

// treeStates describes pid and its descendants with their states, for a
// failure message: "T" is stopped.
func treeStates(pid int) string {
	var b strings.Builder
	for _, p := range append([]int{pid}, descendants(pid)...) {
		b.WriteString(strings.Join(proctest.Cmdline(p), " "))
		b.WriteString(" [" + string(processState(p)) + "]; ")
	}
	return b.String()
}

// killTree kills pid and its descendants, whatever their process groups.
func killTree(pid int) {
	for _, p := range append(descendants(pid), pid) {
		syscall.Kill(p, syscall.SIGKILL)
	}
}

// processState returns the state letter of process pid, 0 if it is gone.
func processState(pid int) byte {
	st, ok := procStat(pid)
	if !ok {
		return 0
	}
	return st.state
}

func atoiOrFail(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// echoHostPid is a shell command that prints the shell's pid as /proc (and
// the test) knows it. In mplock run's PID namespace, $$ and $! are the
// namespace's pids; the shell opens /proc/self itself here (a builtin's
// redirection), and /proc is the host's.
const echoHostPid = `read -r hostpid rest </proc/self/stat; echo $hostpid`

// startRunPrinting starts `mplock run job -- sh -c script` against a fresh
// lock server; script's first line of output is a pid, which it returns
// with the command. Everything is killed when the test ends.
func startRunPrinting(t *testing.T, script string) (*exec.Cmd, int) {
	t.Helper()
	cmd := mplockCommand(t, "run", "job", "--server", dlServe(t), "--", "sh", "-c", script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTree(cmd.Process.Pid) })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the command said %q: %v", line, err)
	}
	return cmd, atoiOrFail(t, strings.TrimSpace(line))
}

// terminalLines delivers what a terminal shows, line by line, until it
// closes.
func terminalLines(ptm *os.File) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(ptm)
		sc.Split(scanTerminal)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// TestRunSuspendedJobIsNotResumedWithoutItsLock: at a terminal, Ctrl-Z
// stops the command and mplock run with it, as a job; stopped, mplock run
// renews nothing, and the lease runs out. Another client takes the lock.
// The command must not run on beside the new holder: its init stops it by
// its own clock while the job is suspended (SIGTERM with SIGCONT --grace
// before the deadline: it is continued only to die of it, SIGKILL at the
// deadline), and mplock run, continued (fg), kills whatever is left where
// it stands, and exits 76.
func TestRunSuspendedJobIsNotResumedWithoutItsLock(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash for an interactive shell with job control")
	}
	addr := dlServe(t)
	mplock := mplockCommand(t)
	ptm, pts := openPTY(t)
	shell := exec.Command("bash", "--norc", "--noprofile", "-i")
	shell.Env = append(mplock.Env, "PS1=$ ", "PATH="+filepath.Dir(mplock.Path)+":"+os.Getenv("PATH"))
	shell.Stdin, shell.Stdout, shell.Stderr = pts, pts, pts
	shell.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := shell.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()
	t.Cleanup(func() { killTree(shell.Process.Pid) })
	lines := terminalLines(ptm)
	expect := func(want string) []string {
		t.Helper()
		var seen []string
		for deadline := time.After(hangBound); ; {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("the terminal closed without showing %q: %q", want, seen)
				}
				seen = append(seen, line)
				if strings.Contains(line, want) {
					return seen
				}
			case <-deadline:
				t.Fatalf("no %q on the terminal within %v: %q; processes: %s", want, hangBound, seen, treeStates(shell.Process.Pid))
			}
		}
	}
	say := func(line string) {
		t.Helper()
		if _, err := ptm.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	say(`mplock run job --ttl 300ms --server ` + addr + ` -- sh -c 'kill -TSTP $$; echo resumed under the lock'`)
	expect("Stopped")
	// The lease runs out with mplock run stopped; another client gets the
	// lock, which it could not before the server expired it.
	proctest.Eventually(t, "another client to get the lock", func() bool {
		return exitCodeOf(mplockCommand(t, "run", "job", "--timeout", "0", "--server", addr, "--", "true")) == 0
	})
	say("fg")
	seen := expect("may have passed to another client while the job was suspended")
	say("echo status=$?")
	for {
		seen = append(seen, expect("status=")...)
		if last := strings.TrimSpace(seen[len(seen)-1]); strings.HasPrefix(last, "status=") {
			if last != "status=76" {
				t.Fatalf("mplock run exited with %s, want status=76: %q", last, seen)
			}
			break
		}
	}
	for _, line := range seen {
		if strings.TrimSpace(line) == "resumed under the lock" {
			t.Fatalf("the command ran on after its lease had passed: %q", seen)
		}
	}
}
