package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"mplock/janitor"
	"mplock/lockd"
	"mplock/reexec"
)

// job is mplock run's command while it runs under the lease: the init that
// runs it (mplock worker exec, see workerExecCommand), and what mplock run
// knows of it. Its one promise: no process of the command runs past the
// moment the lock may be someone else's.
type job struct {
	name    string
	lease   *lockd.Lease
	grace   time.Duration
	keep    bool // --keep-lock-for-descendants
	errw    io.Writer
	verbose func(format string, args ...any)

	init     *exec.Cmd
	pid      int          // the init's, as /proc shows it; it leads the command's process group
	pidns    bool         // the init is pid 1 of a PID namespace of its own
	ctlFile  *os.File     // the control pipe, until the gate is open
	ctl      *initControl // the control pipe, once the command may start
	sent     time.Time    // the last deadline the init was told
	reports  <-chan initReport
	initDone chan error
	exitedC  chan struct{} // closed when the init has exited
	jan      *janitor.Janitor
	tty      *terminal
}

// start launches the janitor and the init, has the janitor track the init,
// and opens the init's gate, telling it the lease's deadline first: the
// command starts only once the janitor could clean up after it, and the
// init could stop it in time by itself. It refuses to start the command on
// a lease whose deadline is already within --grace.
func (j *job) start(path string, argv, env []string, stdout io.Writer, wantNS bool) error {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return err
	}
	j.ctlFile = ctlW
	jan, err := janitor.Start()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		repR.Close()
		repW.Close()
		return err
	}
	j.jan = jan
	j.tty = foregroundTerminal()
	var nsErr error
	if wantNS {
		j.init, nsErr = j.startInit(reexec.Options{PIDNamespace: true}, path, argv, env, stdout, ctlR, repW)
		j.pidns = nsErr == nil
	}
	if !j.pidns {
		// Orphans of the command come back to mplock run should its init
		// die first (see finish).
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
		j.init, err = j.startInit(reexec.Options{Survive: true}, path, argv, env, stdout, ctlR, repW)
	}
	ctlR.Close()
	repW.Close()
	if err != nil {
		repR.Close()
		ctlW.Close()
		jan.Close()
		return err
	}
	switch {
	case j.pidns:
		j.verbose("the command runs in a PID namespace of its own: if mplock run dies, even by SIGKILL, the kernel kills every process of it")
	case nsErr != nil:
		j.verbose("no PID namespace for the command (%v): its init kills every process of it if mplock run dies, and the janitor kills its process group if the init dies too", nsErr)
	default:
		j.verbose("no PID namespace for the command (--no-pid-namespace): its init kills every process of it if mplock run dies, and the janitor kills its process group if the init dies too")
	}
	j.pid = j.init.Process.Pid
	if j.tty != nil {
		// mplock run is now in a background group of its terminal: a
		// write there (with stty tostop) or taking the terminal back
		// would stop it with SIGTTOU. Shells ignore it for the same
		// reason. Nothing is started after this point to inherit it.
		signal.Ignore(syscall.SIGTTOU)
	}
	j.reports = readInitReports(repR)
	j.initDone, j.exitedC = make(chan error, 1), make(chan struct{})
	go func() {
		err := j.init.Wait()
		close(j.exitedC)
		j.initDone <- err
	}()
	if err := jan.Track(janitor.Resource{Kind: janitor.Init, ID: strconv.Itoa(j.pid)}); err != nil {
		fmt.Fprintf(j.errw, "mplock: run: %v: were mplock run killed, what the command starts could outlive the lock\n", err)
	}
	if d := j.lease.Deadline(); !d.IsZero() && time.Until(d) <= j.grace {
		j.abort()
		return fmt.Errorf("the lease on %s ends in %v, within --grace %v (is --ttl too short for the round trip to the server?)",
			j.name, time.Until(d).Round(time.Millisecond), j.grace)
	}
	// The init has just started and reads nothing else: these few bytes
	// go into an empty pipe at once.
	gate := ctlGo + "\n"
	if d := j.lease.Deadline(); !d.IsZero() {
		gate = deadlineLine(d, j.grace) + "\n" + gate
		j.sent = d
	}
	if _, err := io.WriteString(j.ctlFile, gate); err != nil {
		j.abort()
		return fmt.Errorf("the command's init: %w", err)
	}
	j.ctl = newInitControl(j.ctlFile)
	return nil
}

// abort ends a job whose command was never let through the gate: the init
// reads end of file there and runs nothing.
func (j *job) abort() {
	j.ctlFile.Close()
	<-j.initDone
	if j.tty != nil {
		j.tty.give(j.pid, j.tty.pgrp)
	}
	j.jan.Close()
}

func (j *job) startInit(opts reexec.Options, path string, argv, env []string, stdout io.Writer, ctlR, repW *os.File) (*exec.Cmd, error) {
	cmd := reexec.Command(opts, append([]string{"worker", "exec", path}, argv...)...)
	cmd.ExtraFiles = []*os.File{ctlR, repW}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, j.errw
	cmd.Env = env
	if j.tty != nil {
		// A background group that reads its terminal is stopped by
		// SIGTTIN: give the command's group the terminal, as a shell gives
		// it to the job it runs.
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, j.tty.fd
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

// supervise runs the job to its end and returns the command's exit status,
// and whether the lock was lost (or about to be) while any process of the
// command ran.
func (j *job) supervise(sigs <-chan os.Signal) (code int, lost bool) {
	var (
		exited   bool // the command has ended (code is its status)
		killed   bool // everything was sent SIGKILL
		killSaid bool // a SIGKILL of processes still running was reported
		initDone = j.initDone
		initErr  error       // how the init ended, once initDone has said
		killAt   *time.Timer // SIGKILL for every process left, once set
		killC    <-chan time.Time
		reports  = j.reports
		deadline = time.NewTimer(time.Hour) // SIGTERM, --grace before the lease's deadline
		// Closed for good once it closes: nil after it is handled, so
		// that the select does not spin on it.
		leaseDone = j.lease.Done()
	)
	defer deadline.Stop()
	deadlineC := j.armDeadline(deadline)
	// The init keeps the deadline too (initDeadline), and is told each time
	// it moves, at most syncEvery later.
	var syncC <-chan time.Time
	if every := j.syncEvery(); every > 0 {
		tick := time.NewTicker(every)
		defer tick.Stop()
		syncC = tick.C
	}
	// stop sends SIGTERM to every process of the command, once, and sets
	// the SIGKILL for at (sooner if at is past), both by mplock run and by
	// the init, which acts on its own should mplock run be stopped.
	stop := func(at time.Time) {
		j.control(stopLine(at))
		if killAt != nil {
			return
		}
		killAt = time.NewTimer(max(time.Until(at), 0))
		killC = killAt.C
	}
	// expiring stops the command because no renewal of the lease was
	// confirmed in time, by mplock run's clock or by the init's; if the
	// deadline has passed already, mplock run was kept from acting (it
	// was stopped, say), and the init has acted alone.
	expiring := func() {
		if lost {
			return
		}
		lost = true
		d := j.lease.Deadline()
		left := time.Until(d)
		silent := (j.lease.Length() - left).Round(time.Millisecond)
		running := processTree(j.pid)
		switch {
		case left >= 0:
			fmt.Fprintf(j.errw, "mplock: run: no renewal of the lease on %s confirmed for %v: it may pass to another client in %v; stopping %s (SIGTERM now, SIGKILL then)\n",
				j.name, silent, left.Round(time.Millisecond), describeProcs(running))
		case len(running) == 0:
			fmt.Fprintf(j.errw, "mplock: run: no renewal of the lease on %s confirmed for %v: its deadline passed %v ago while mplock run itself could not act (was it stopped?); the command's init had stopped the command by then, on its own clock (SIGTERM --grace before the deadline, SIGKILL at it)\n",
				j.name, silent, (-left).Round(time.Millisecond))
		default:
			fmt.Fprintf(j.errw, "mplock: run: no renewal of the lease on %s confirmed for %v: its deadline passed %v ago while mplock run itself could not act (was it stopped?), and %s still running\n",
				j.name, silent, (-left).Round(time.Millisecond), describeProcs(running))
		}
		stop(d)
	}
	// bound is how long after a SIGTERM now the SIGKILL comes: --grace,
	// but no later than the lease's deadline.
	bound := func(now time.Time) time.Duration {
		delay := j.grace
		if d := j.lease.Deadline(); !d.IsZero() && d.Sub(now) < delay {
			delay = max(d.Sub(now), 0)
		}
		return delay
	}
	for {
		select {
		case r, ok := <-reports:
			if !ok {
				reports = nil // the init has exited: initDone follows
				if initDone == nil {
					return j.initDied(initErr, code, exited, killed, lost)
				}
				continue
			}
			switch r.kind {
			case repStopped:
				if j.tty == nil || exited {
					continue
				}
				// Suspended with its job, mplock run renews nothing: the
				// lock may be someone else's by the time the shell
				// continues it. A command whose lease has passed its
				// deadline is then killed as it stands, never continued.
				// (The init stops the command at the deadline meanwhile.)
				j.tty.suspend(j.pid)
				if d := j.lease.Deadline(); j.lease.Err() != nil || !d.IsZero() && !time.Now().Before(d) {
					lost = true
					if left := processTree(j.pid); len(left) > 0 {
						killed = true
						fmt.Fprintf(j.errw, "mplock: run: the lock on %s may have passed to another client while the job was suspended: SIGKILL to the stopped command, %s\n",
							j.name, describeProcs(left))
						j.killAll()
					} else {
						fmt.Fprintf(j.errw, "mplock: run: the lock on %s may have passed to another client while the job was suspended: the command's init stopped the command at the lease's deadline\n", j.name)
					}
					continue
				}
				j.tty.resume(j.pid)
			case repFailed:
				fmt.Fprintf(j.errw, "mplock: %s\n", r.text)
				exited, code = true, r.code
			case repExpiring:
				expiring()
			case repKilled:
				// At the deadline, after its expiring report, or at the
				// SIGKILL of a stop mplock run sent, whichever of the two
				// came first.
				killed = true
				if !killSaid {
					killSaid = true
					fmt.Fprintf(j.errw, "mplock: run: still running: SIGKILL to %s\n", r.text)
				}
			case repExited:
				exited, code = true, r.code
				if lost || killed {
					continue
				}
				left := processTree(j.pid)
				if len(left) == 0 {
					continue // empty follows
				}
				if j.keep {
					fmt.Fprintf(j.errw, "mplock: run: the command exited (status %d), leaving %s; holding the lock on %s until %s exited (--keep-lock-for-descendants)\n",
						code, describeProcs(left), j.name, map[bool]string{true: "it has", false: "they have"}[len(left) == 1])
					continue
				}
				now := time.Now()
				delay := bound(now)
				fmt.Fprintf(j.errw, "mplock: run: the command exited (status %d), leaving %s; stopping %s (SIGTERM, then SIGKILL after %v): nothing of it may outlive the lock on %s\n",
					code, describeProcs(left), itOrThem(left), delay.Round(time.Millisecond), j.name)
				stop(now.Add(delay))
			case repEmpty:
				if exited {
					j.finish()
					return code, lost
				}
			}
		case s := <-sigs:
			if exited {
				// Only what the command left is running: pass it on to all
				// of it.
				j.control(fmt.Sprintf("%s %d", ctlSignal, int(s.(syscall.Signal))))
			} else {
				signalGroup(j.pid, s.(syscall.Signal))
			}
		case <-syncC:
			if j.syncDeadline() && !lost {
				deadlineC = j.armDeadline(deadline)
			}
		case <-deadlineC:
			if lost {
				deadlineC = nil
				continue
			}
			if time.Until(j.lease.Deadline()) > j.grace { // renewed meanwhile
				deadlineC = j.armDeadline(deadline)
				continue
			}
			expiring()
		case <-leaseDone:
			leaseDone = nil
			if d := j.lease.Deadline(); !d.IsZero() && !time.Now().Before(d) {
				expiring() // its deadline passed before mplock run could act
			} else if !lost {
				lost = true
				now := time.Now()
				delay := bound(now)
				fmt.Fprintf(j.errw, "mplock: run: lost the lock on %s (%v) while the command ran: stopping it (SIGTERM, then SIGKILL after %v)\n",
					j.name, j.lease.Err(), delay.Round(time.Millisecond))
				stop(now.Add(delay))
			}
		case <-killC:
			killC = nil
			if !killed {
				killed = true
				if left := processTree(j.pid); len(left) > 0 && !killSaid {
					killSaid = true
					fmt.Fprintf(j.errw, "mplock: run: still running: SIGKILL to %s\n", describeProcs(left))
				}
				j.killAll()
			}
		case err := <-initDone:
			j.initDone <- err // for finish
			// What it reported before it died is read first: the report
			// pipe's end of file follows.
			initDone, initErr = nil, err
			if reports == nil {
				return j.initDied(initErr, code, exited, killed, lost)
			}
		}
	}
}

// initDied ends supervise once the init has exited, with err, and its
// reports are all read: with the command's status if it reported one.
func (j *job) initDied(err error, code int, exited, killed, lost bool) (int, bool) {
	if !exited {
		code = commandExitCode(err)
		if !killed {
			fmt.Fprintf(j.errw, "mplock: run: the command's init (pid %d) died (%v); the command died with it\n", j.pid, err)
		}
	}
	j.finish()
	return code, lost
}

// armDeadline sets t for --grace before the lease's deadline, and returns
// its channel, or nil for a lock without a deadline.
func (j *job) armDeadline(t *time.Timer) <-chan time.Time {
	d := j.lease.Deadline()
	if d.IsZero() {
		return nil
	}
	t.Reset(max(time.Until(d.Add(-j.grace)), 0))
	return t.C
}

// control sends one line to the init, without waiting for it to be read;
// a failure means the init is gone, which initDone reports.
func (j *job) control(line string) { j.ctl.send(line) }

// syncEvery is how often mplock run looks whether the lease's deadline
// has moved, to tell the init: a 32nd of the lease, at most a second, so that
// the init's deadline lags mplock run's by far less than the third of the
// lease a renewal leaves to spare; zero for a lock without a deadline.
func (j *job) syncEvery() time.Duration {
	n := j.lease.Length()
	if n <= 0 {
		return 0
	}
	return min(max(n/32, time.Millisecond), time.Second)
}

// syncDeadline tells the init the lease's deadline if it has moved since
// it was last told, and reports whether it had.
func (j *job) syncDeadline() bool {
	d := j.lease.Deadline()
	if d.IsZero() || d.Equal(j.sent) {
		return false
	}
	j.sent = d
	j.ctl.sendDeadline(deadlineLine(d, j.grace))
	return true
}

// killAll sends SIGKILL to every process of the command. In a PID
// namespace, SIGKILL to its init does it all: the kernel kills the rest.
// Otherwise mplock run kills every process it can see below the init, and
// the init, their subreaper, kills whatever they fork meanwhile until it
// has no child left, then exits. Killing its process group would kill the
// init too, and hand what left the group to mplock run: that happens only
// if the init has not exited InitGrace later.
func (j *job) killAll() {
	if j.pidns {
		syscall.Kill(j.pid, syscall.SIGKILL)
		return
	}
	for _, p := range processTree(j.pid) {
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	j.control(ctlKill)
	time.AfterFunc(janitor.InitGrace, func() {
		select {
		case <-j.exitedC:
		default:
			syscall.Kill(-j.pid, syscall.SIGKILL)
		}
	})
}

// finish ends the job once the command has: the init is told to go (it
// kills whatever is left) and reaped, so that nothing of the command
// remains when the lock is released. Orphans that came to mplock run
// because the init died first are killed and named.
func (j *job) finish() {
	j.ctl.Close()
	err := <-j.initDone
	j.initDone <- err
	// Whatever is left in the group goes with it, should the init have
	// died unexpectedly.
	syscall.Kill(-j.pid, syscall.SIGKILL)
	if !j.pidns {
		if left := adoptedOrphans(j.jan.Pid()); len(left) > 0 {
			fmt.Fprintf(j.errw, "mplock: run: the command's init died before them: SIGKILL to %s\n", describeProcs(left))
			for _, p := range left {
				syscall.Kill(p.pid, syscall.SIGKILL)
				var ws syscall.WaitStatus
				syscall.Wait4(p.pid, &ws, 0, nil)
			}
		}
	}
	if j.tty != nil {
		j.tty.give(j.pid, j.tty.pgrp)
	}
	j.jan.Close()
}

// adoptedOrphans lists the processes below mplock run other than the
// janitor (the init is reaped by now): processes of the command that came
// to mplock run, a child subreaper, because the init died before them.
func adoptedOrphans(janitorPid int) []proc {
	var out []proc
	for _, p := range processTree(os.Getpid()) {
		if p.pid != janitorPid {
			out = append(out, p)
		}
	}
	return out
}

// commandExitCode is the shell's view of how a process mplock run waited
// for ended.
func commandExitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return waitStatusCode(ws)
		}
		return ee.ExitCode()
	}
	return exitFailure
}

// signalGroup sends sig to the command's process group, then SIGCONT: a
// stopped process acts on no signal but SIGKILL until it is continued.
func signalGroup(pgid int, sig syscall.Signal) {
	syscall.Kill(-pgid, sig)
	if sig != syscall.SIGCONT && sig != syscall.SIGKILL {
		syscall.Kill(-pgid, syscall.SIGCONT)
	}
}

func itOrThem(ps []proc) string {
	if len(ps) == 1 {
		return "it"
	}
	return "them"
}
