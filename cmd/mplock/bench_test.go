package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBenchProgressAndInterrupt runs `mplock bench` with its stderr on a
// pseudo-terminal, as a user at a terminal would: the progress line appears
// (run i of n, elapsed, time left), and once it reports the second run — so
// the first has finished — a SIGINT, as Ctrl-C sends, stops the matrix. The
// command must then print the cell that finished, say so on stderr, and exit
// with 130.
func TestBenchProgressAndInterrupt(t *testing.T) {
	ptm, pts := openPTY(t)
	mplock := mplockCommand(t, "bench", "--kind", "sem", "--workers", "1,2", "--duration", "100ms", "--repeat", "100", "--csv")
	var stdout bytes.Buffer
	mplock.Stdout, mplock.Stderr = &stdout, pts
	if err := mplock.Start(); err != nil {
		t.Fatal(err)
	}
	pts.Close()

	// Read the terminal until the progress line shows run 2, then Ctrl-C.
	lines := terminalLines(ptm)
	var seen []string
	deadline := time.After(60 * time.Second)
	for interrupted := false; ; {
		select {
		case line, ok := <-lines:
			if !ok {
				goto done
			}
			seen = append(seen, line)
			if !interrupted && strings.Contains(line, "bench: run 2 of 200,") {
				if err := mplock.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				interrupted = true
			}
		case <-deadline:
			mplock.Process.Kill()
			t.Fatalf("no progress line for run 2 within 60s; the terminal showed %q", seen)
		}
	}
done:
	err := mplock.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit: %v, want status %d; terminal: %q", err, exitInterrupted, seen)
	}
	terminal := strings.Join(seen, "\n")
	for _, want := range []string{"bench: run 1 of 200, cell 1 of 2 (kind=sem/workers=1/hold=0), repeat 1", "elapsed", "left", "interrupted after"} {
		if !strings.Contains(terminal, want) {
			t.Errorf("terminal lacks %q: %q", want, seen)
		}
	}
	rows := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(rows) < 2 || !strings.HasPrefix(rows[0], "name,lock,") || !strings.HasPrefix(rows[1], "kind=sem/workers=1/hold=0,sem,1,") {
		t.Errorf("stdout is not the finished cells as CSV: %q", stdout.String())
	}
}

// scanTerminal splits a terminal's output at newlines and carriage
// returns, so each redraw of the progress line is one token.
func scanTerminal(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// mplockCommand runs this test binary as mplock: TestMain dispatches on the
// name it is called by, so a link named mplock is enough, and the worker
// processes it re-executes find their way too.
func mplockCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "mplock")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	return cmd
}

// openPTY opens a pseudo-terminal pair: the controlling side to read what
// the program writes, and the terminal side to give it as stderr.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	return ptm, pts
}
