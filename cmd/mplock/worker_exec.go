package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// workerExecCommand is the init of mplock run's command: `mplock worker
// exec PATH ARGV0 ARGS...`, with a control pipe from mplock run on fd 3 and
// a report pipe to it on fd 4 (the protocol is below).
//
// It waits for "go", which mplock run sends only once its janitor knows
// this process, then starts the command as its child, in its own process
// group (which mplock run lends the terminal), with its environment, stdin,
// stdout and stderr. It stays the
// ancestor of everything the command starts, however that detaches
// (setsid, a double fork):
//
//   - started by mplock run as the init (pid 1) of a new PID namespace, it
//     is its namespace's reaper, and when it dies, however it dies, the
//     kernel kills every process in the namespace. It dies with mplock
//     run: a parent-death signal, and the control pipe's end of file.
//   - where no namespace can be had, it is a child subreaper
//     (PR_SET_CHILD_SUBREAPER): orphans of the command come back to it. At
//     the control pipe's end of file (mplock run died, even by SIGKILL) it
//     kills every descendant it has, and only then exits. This holds only
//     while it lives; the janitor kills its process group if it dies too.
//
// It keeps a clock on the lease of its own (initDeadline): mplock run
// tells it the lease's deadline before "go" and again whenever it moves,
// and the init sends SIGTERM to every process of the command --grace
// before it and SIGKILL at it, whether or not mplock run can still act (a
// SIGSTOP of mplock run alone stops nothing of the command's).
//
// It reaps every child, reports the command's stops and exit, and reports
// when no process of the command remains. Signals sent to its process group
// (a terminal's Ctrl-C, mplock run passing one on) reach the command
// directly; this process catches and ignores them, so that it outlives the
// command and can clean up after it.
func workerExecCommand() *cli.Command {
	return &cli.Command{
		Name:            "exec",
		Usage:           "(internal) the init of mplock run's command: control on fd 3, reports on fd 4",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 {
				return usageErrorf("worker exec: want PATH ARGV0 [ARGS...]")
			}
			return runInit(args[0], args[1:])
		},
	}
}

// The control lines mplock run sends to the init (fd 3). Each is a verb
// and at most two unsigned decimal numbers, ends with a newline, and is at
// most maxControlLine bytes long. Before "go" only "deadline" may come.
// The init takes anything else (an unknown verb, a malformed or
// out-of-range number, a longer line, a line before "go" that is neither)
// as a broken mplock run: it says so on stderr, kills every process of the
// command and exits, as at end of file. Times are CLOCK_MONOTONIC in
// nanoseconds (monotonicNow), the clock of Go's timers and of time.Time's
// monotonic reading, which both processes share (they run on one host, in
// one time namespace); like those, it stands still while the host is
// suspended.
const (
	ctlGo       = "go"       // start the command
	ctlDeadline = "deadline" // "deadline D G": the lease's deadline is D; SIGTERM at D-G, SIGKILL at D (the latest D given counts)
	ctlSignal   = "signal"   // "signal N": send signal N, then SIGCONT, to every process of the command
	ctlStop     = "stop"     // "stop K": the lock is ending: SIGTERM (then SIGCONT) to every process of the command unless sent already, SIGKILL at K at the latest
	ctlKill     = "kill"     // SIGKILL every process of the command, reap, exit (end of file: the same)
)

// maxControlLine bounds a control line, newline included: "deadline" and
// two 18-digit numbers fit (parseDecimal).
const maxControlLine = 64

// The report lines the init sends to mplock run (fd 4).
const (
	repFailed   = "failed"   // "failed CODE MESSAGE": the command could not be started (126, 127; 76: its lease had run out)
	repStopped  = "stopped"  // "stopped SIG": the command was stopped (a terminal's Ctrl-Z)
	repExited   = "exited"   // "exited CODE": the command ended, as a shell reports it (128+N: killed by signal N)
	repEmpty    = "empty"    // no process of the command is left
	repExpiring = "expiring" // the init sent SIGTERM to every process of the command, --grace before the deadline it knows
	repKilled   = "killed"   // "killed N PROCS": on its own clock (the deadline, or a stop's K) the init sent SIGKILL to N processes, PROCS (describeProcs, shortened)
)

// controlLine is one parsed control line.
type controlLine struct {
	verb string
	a, b int64 // the numbers, as the verb takes them
}

// parseControl reads one control line strictly (see ctlGo). line includes
// its newline.
func parseControl(line []byte) (controlLine, error) {
	if len(line) > maxControlLine || len(line) == 0 || line[len(line)-1] != '\n' {
		return controlLine{}, fmt.Errorf("control line of %d bytes, not one line of at most %d", len(line), maxControlLine)
	}
	f := strings.Split(string(line[:len(line)-1]), " ")
	want := map[string]int{ctlGo: 0, ctlDeadline: 2, ctlSignal: 1, ctlStop: 1, ctlKill: 0}
	n, ok := want[f[0]]
	if !ok || len(f) != n+1 {
		return controlLine{}, fmt.Errorf("control line %q: unknown, or not %d numbers", line, n)
	}
	c := controlLine{verb: f[0]}
	for i, s := range f[1:] {
		v, ok := parseDecimal(s)
		if !ok {
			return controlLine{}, fmt.Errorf("control line %q: %q is not a decimal number", line, s)
		}
		if i == 0 {
			c.a = v
		} else {
			c.b = v
		}
	}
	switch {
	case c.verb == ctlSignal && (c.a < 1 || c.a > 64):
		return controlLine{}, fmt.Errorf("control line %q: no signal %d", line, c.a)
	case (c.verb == ctlDeadline || c.verb == ctlStop) && c.a == 0:
		return controlLine{}, fmt.Errorf("control line %q: time 0", line)
	case c.verb == ctlDeadline && c.b > c.a:
		return controlLine{}, fmt.Errorf("control line %q: a grace longer than the deadline's clock time", line)
	}
	return c, nil
}

// parseDecimal parses 1 to 18 ASCII digits: no sign, no spaces, nothing
// that could overflow an int64.
func parseDecimal(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int64(s[i]-'0')
	}
	return v, true
}

// monotonicNow reads CLOCK_MONOTONIC, the clock of the control protocol's
// times.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("mplock: clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // not on a kernel Go runs on
	}
	return time.Duration(ts.Nano())
}

// monotonicAt converts t, a time.Time with a monotonic reading (from
// time.Now or computed from one), to CLOCK_MONOTONIC. The clock is read
// before time.Now, so the result is never later than t: the init may act
// a few microseconds early, never late.
func monotonicAt(t time.Time) time.Duration {
	m := monotonicNow()
	return m + t.Sub(time.Now())
}

// initReport is one parsed report line.
type initReport struct {
	kind string
	code int    // failed, stopped (the signal), exited
	text string // failed
}

// readInitReports parses the init's reports from r onto a channel, which is
// closed at end of file (the init exited).
func readInitReports(r io.Reader) <-chan initReport {
	ch := make(chan initReport, 8)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			kind, rest, _ := strings.Cut(sc.Text(), " ")
			num, text, _ := strings.Cut(rest, " ")
			n, _ := strconv.Atoi(num)
			ch <- initReport{kind: kind, code: n, text: text}
		}
	}()
	return ch
}

// waitStatusCode is the shell's exit status for a wait status: the exit
// code, or 128+N for a process killed by signal N.
func waitStatusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// execFailure is how the init reports a command that could not be
// started: 127 not found, 126 found but not runnable, as shells do.
func execFailure(argv0 string, err error) string {
	code := 126
	if errors.Is(err, syscall.ENOENT) {
		code = 127
	}
	return fmt.Sprintf("%s %d run: %s: %v", repFailed, code, argv0, err)
}
