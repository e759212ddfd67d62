package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runInit is the init's whole life (see workerExecCommand). It returns only
// if mplock run is gone before the command could start; otherwise it ends
// with os.Exit once the control pipe says so.
func runInit(path string, argv []string) error {
	// The parent-death signal belongs to the thread that sets it, and the
	// kernel sends it when the parent dies only while that thread lives:
	// the main goroutine stays on this thread for good (Go ends a thread
	// only when a goroutine locked to it returns, and this one never
	// does before the process exits).
	runtime.LockOSThread()
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	ctl, rep := os.NewFile(3, "control"), os.NewFile(4, "report")
	// As pid 1 of its namespace; getpid says so, and no other mplock
	// process is ever pid 1 in its own namespace.
	nsInit := os.Getpid() == 1
	if nsInit {
		unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
	} else {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
	// Outlive the command: a signal to the process group is the command's.
	// (As pid 1 the kernel would drop those without a handler anyway; a
	// subreaper would die of them.)
	ignored := make(chan os.Signal, 16)
	signal.Notify(ignored, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGTSTP,
		unix.SIGTTIN, unix.SIGTTOU, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM)
	go func() {
		for range ignored {
		}
	}()

	// Lines longer than the buffer are refused (readControl).
	in := bufio.NewReaderSize(ctl, maxControlLine)
	clock := &initDeadline{kick: make(chan struct{}, 1)}
	// The gate: mplock run says go only once its janitor knows this
	// process, and tells the lease's deadline first. End of file here, or
	// later, means mplock run is gone (and after the parent-death signal
	// was set, so it cannot be missed).
	for {
		c, err := readControl(in)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "mplock: worker exec: %v: the command is not run\n", err)
			}
			return withCode(exitFailure, nil)
		}
		if c.verb == ctlGo {
			break
		}
		if c.verb != ctlDeadline {
			fmt.Fprintf(os.Stderr, "mplock: worker exec: control line %q before %q: the command is not run\n", c.verb, ctlGo)
			return withCode(exitFailure, nil)
		}
		clock.set(c.a, c.b)
	}
	it := &initProc{nsInit: nsInit, rep: rep, empty: make(chan struct{}), reaped: make(chan struct{}, 1)}
	clock.it = it
	if clock.termPassed() {
		// mplock run checked before it said go; it may have been stopped
		// since.
		it.report(fmt.Sprintf("%s %d run: the lease's deadline was within --grace when the command was to start; command not run", repFailed, exitLockLost))
		it.report(repEmpty)
		close(it.empty)
		it.control(in, clock)
		return nil // not reached: control exits
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		// The command dies with this process, should that ever die first.
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		it.report(execFailure(argv[0], err))
		it.report(repEmpty)
		close(it.empty)
	} else {
		go it.reap(pid)
		go clock.run()
	}
	it.control(in, clock)
	return nil // not reached: control exits
}

// readControl reads and parses one control line. A line longer than in's
// buffer (maxControlLine) is an error; io.EOF means mplock run is gone.
func readControl(in *bufio.Reader) (controlLine, error) {
	line, err := in.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return controlLine{}, fmt.Errorf("control line longer than %d bytes", maxControlLine)
	case err != nil:
		return controlLine{}, err
	}
	return parseControl(line)
}

// initProc is the init's state once the command is started.
type initProc struct {
	nsInit bool
	rep    *os.File
	repMu  sync.Mutex
	empty  chan struct{} // closed when the init has no child left
	reaped chan struct{} // poked at every reap
}

func (it *initProc) report(line string) {
	it.repMu.Lock()
	defer it.repMu.Unlock()
	fmt.Fprintln(it.rep, line)
}

// reap waits for every child: the command (its stops, its end) and the
// orphans that come to the init. Once it has none left it reports empty.
func (it *initProc) reap(cmd int) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WUNTRACED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: the command has been reaped, and nothing else is left
			it.report(repEmpty)
			close(it.empty)
			return
		}
		select {
		case it.reaped <- struct{}{}:
		default:
		}
		if pid != cmd {
			continue
		}
		switch {
		case ws.Stopped():
			it.report(fmt.Sprintf("%s %d", repStopped, int(ws.StopSignal())))
		case ws.Exited() || ws.Signaled():
			it.report(fmt.Sprintf("%s %d", repExited, waitStatusCode(syscall.WaitStatus(ws))))
		}
	}
}

// control obeys mplock run's control lines until "kill" or end of file,
// then kills every process of the command and exits. A line that breaks
// the protocol ends it the same way: a broken mplock run cannot be trusted
// to stop the command in time.
func (it *initProc) control(in *bufio.Reader, clock *initDeadline) {
	for {
		c, err := readControl(in)
		if err == nil && c.verb == ctlGo {
			err = fmt.Errorf("control line %q a second time", ctlGo)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				fmt.Fprintf(os.Stderr, "mplock: worker exec: %v: killing the command\n", err)
			}
			it.killAll()
		}
		switch c.verb {
		case ctlDeadline:
			clock.set(c.a, c.b)
		case ctlSignal:
			it.signalAll(unix.Signal(c.a))
		case ctlStop:
			clock.stop(c.a)
		case ctlKill:
			it.killAll()
		}
	}
}

// signalAll sends sig to every process of the command, then SIGCONT so
// that a stopped one acts on it.
func (it *initProc) signalAll(sig unix.Signal) {
	it.kill(sig)
	if sig != unix.SIGCONT && sig != unix.SIGKILL {
		it.kill(unix.SIGCONT)
	}
}

// kill sends sig to every process of the command: in a PID namespace,
// every process in it but the init (kill(-1, ...) counts only those); else
// every descendant the init has.
func (it *initProc) kill(sig unix.Signal) {
	if it.nsInit {
		unix.Kill(-1, sig)
		return
	}
	for _, p := range processTree(selfPid()) {
		unix.Kill(p.pid, sig)
	}
}

// killAll kills every process of the command and exits once none is left.
// In a PID namespace the init's own exit does it: the kernel kills what is
// left in the namespace, and the init's exit completes only when all of it
// has gone. A subreaper kills its descendants until it has no child left:
// whatever one of them forks meanwhile is its descendant too.
func (it *initProc) killAll() {
	if it.nsInit {
		unix.Kill(-1, unix.SIGKILL)
		os.Exit(0)
	}
	it.killUntilEmpty()
	os.Exit(0)
}

// killUntilEmpty sends SIGKILL to every process of the command until the
// init has no child left.
func (it *initProc) killUntilEmpty() {
	for {
		it.kill(unix.SIGKILL)
		select {
		case <-it.empty:
			return
		case <-it.reaped:
		case <-time.After(100 * time.Millisecond): // one in uninterruptible sleep dies when it wakes
		}
	}
}

// selfPid is this process's pid as /proc shows it: in a PID namespace whose
// /proc was not mounted anew, os.Getpid is the namespace's number, and
// /proc lists the parent namespace's.
func selfPid() int {
	s, err := os.Readlink("/proc/self")
	if n, perr := strconv.Atoi(s); err == nil && perr == nil {
		return n
	}
	return os.Getpid()
}
