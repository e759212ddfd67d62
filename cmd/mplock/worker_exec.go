package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
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

// The control lines mplock run sends to the init (fd 3).
const (
	ctlGo     = "go"     // start the command
	ctlSignal = "signal" // "signal N": send signal N, then SIGCONT, to every process of the command
	ctlKill   = "kill"   // SIGKILL every process of the command, reap, exit (end of file: the same)
)

// The report lines the init sends to mplock run (fd 4).
const (
	repFailed  = "failed"  // "failed CODE MESSAGE": the command could not be started (126, 127)
	repStopped = "stopped" // "stopped SIG": the command was stopped (a terminal's Ctrl-Z)
	repExited  = "exited"  // "exited CODE": the command ended, as a shell reports it (128+N: killed by signal N)
	repEmpty   = "empty"   // no process of the command is left
)

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
