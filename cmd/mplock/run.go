package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/janitor"
	"mplock/lockd"
	"mplock/reexec"
)

// Exit codes of `mplock run` and `mplock client` beyond exit.go's, a
// contract for scripts. Chosen outside the range commands commonly use;
// 75 is sysexits' EX_TEMPFAIL ("try again later").
const (
	exitLockTaken = 75 // --timeout ran out (or 0: try-lock) with the lock still taken; nothing run
	exitLockLost  = 76 // the lock was lost while the command ran; the command was stopped
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command while holding a named lock on the lock server (like flock(1), across hosts)",
		UsageText: "mplock run <name> [--shared] [--timeout D] [--ttl D] [--grace D] [--server ADDR] -- command [args...]",
		Description: `Takes the lock <name> (exclusive, or shared with --shared), runs the command
with MPLOCK_NAME, MPLOCK_TOKEN (the fencing token) and MPLOCK_SERVER in its
environment, releases the lock when the command ends, and exits with the
command's exit status.

If the lock is lost while the command runs (its lease was not renewed in
time, the server shut down or became unreachable), the command is stopped
rather than left running beside the next holder: SIGTERM to its process
group, then SIGKILL after --grace. The command runs in its own process
group, so its children are stopped too; SIGINT, SIGTERM and SIGHUP sent to
mplock run are passed on to that group (with SIGCONT, should it be
stopped). If mplock run itself is killed, even by SIGKILL, the command's
whole process group is killed by a watchdog process (mplock worker
janitor), and the server releases the lock with the connection.

Run from a terminal's prompt, the command gets the terminal while it runs,
as any job the shell starts: it can read it, Ctrl-C and Ctrl-Z reach it,
and Ctrl-Z stops mplock run with it (fg resumes both). Within a pipeline
(mplock run ... | less), the terminal stays with the pipeline.

Examples:
  mplock run nightly-backup -- ./backup.sh
  mplock run nightly-backup --timeout 0 -- ./backup.sh    # skip if already running
  mplock run reports --shared --timeout 30s -- ./read-reports.sh
  mplock run deploy --ttl 15s -- ./deploy.sh              # lost if this host stalls 15s

Exit status: the command's (128+N if killed by signal N); 75 the lock stayed
taken (--timeout; with 0, at once); 76 the lock was lost and the command
stopped; 126 the command could not be run (not executable); 127 the command
was not found; 1 the server could not be reached; 2 usage; 130 interrupted
while waiting for the lock.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "shared", Usage: "take the lock shared (READ): other --shared runs may hold it at once"},
			&cli.GenericFlag{Name: "timeout", Value: seconds(0), DefaultText: "wait as long as it takes", Usage: "give up waiting after this long; 0: do not wait at all"},
			&cli.GenericFlag{Name: "ttl", Value: seconds(0), DefaultText: "the server's --ttl", Usage: "lease length, renewed while the command runs"},
			&cli.GenericFlag{Name: "grace", Value: seconds(10 * time.Second), Usage: "after losing the lock, wait this long between SIGTERM and SIGKILL"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say on stderr when the lock is taken and released"},
		}, serverFlags()...),
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	pos, err := trailingFlags(c, true)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageErrorf("run: want <name> -- command [args...]")
	}
	name, argv := pos[0], pos[1:]
	if err := lockd.ValidName(name); err != nil {
		return usageErrorf("run: %v", err)
	}
	if c.Duration("timeout") < 0 || c.Duration("grace") < 0 {
		return usageErrorf("run: --timeout and --grace cannot be negative")
	}
	if err := checkTTL("run", c.Duration("ttl")); err != nil {
		return err
	}
	errw := c.App.ErrWriter
	verbose := func(format string, args ...any) {
		if c.Bool("verbose") {
			fmt.Fprintf(errw, "mplock: run: "+format+"\n", args...)
		}
	}
	cl, addr, err := dialServer(c, "run", "run")
	if err != nil {
		return err
	}
	defer cl.Close()

	mode := lockd.Exclusive
	if c.Bool("shared") {
		mode = lockd.Shared
	}
	var opts []lockd.LockOption
	if c.IsSet("ttl") {
		opts = append(opts, lockd.WithTTL(c.Duration("ttl")))
	}
	opts = append(opts, lockd.OnQueued(func(p int) { verbose("waiting for %s (position %d)", name, p) }))
	ctx := c.Context
	var lease *lockd.Lease
	if c.IsSet("timeout") && c.Duration("timeout") == 0 {
		lease, err = cl.TryLock(ctx, name, mode, opts...)
	} else {
		if c.IsSet("timeout") {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.Duration("timeout"))
			defer cancel()
		}
		lease, err = cl.Lock(ctx, name, mode, opts...)
	}
	switch {
	case c.Context.Err() != nil:
		return withCode(exitInterrupted, fmt.Errorf("run: interrupted while waiting for %s; command not run", name))
	case errors.Is(err, lockd.ErrLocked):
		return withCode(exitLockTaken, fmt.Errorf("run: %s is locked by another client; command not run", name))
	case errors.Is(err, context.DeadlineExceeded):
		return withCode(exitLockTaken, fmt.Errorf("run: %s still locked after %v; command not run", name, c.Duration("timeout")))
	case err != nil:
		return fmt.Errorf("run: lock %s: %w", name, err)
	}
	verbose("locked %s (token %d)", name, lease.Token)

	// Found and executable, or 127 and 126 before anything is started.
	path, err := exec.LookPath(argv[0])
	if err != nil {
		lease.Unlock(context.Background())
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return withCode(code, fmt.Errorf("run: %w", err))
	}
	// The command is started through a trampoline (mplock worker exec) that
	// waits at a gate until the janitor knows its process group; see below.
	gateR, gateW, err := os.Pipe()
	if err != nil {
		lease.Unlock(context.Background())
		return fmt.Errorf("run: %w; command not run", err)
	}
	defer gateW.Close()
	cmd := reexec.Command(reexec.Options{}, append([]string{"worker", "exec", path}, argv...)...)
	cmd.ExtraFiles = []*os.File{gateR}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, c.App.Writer, errw
	cmd.Env = append(os.Environ(), "MPLOCK_NAME="+name, "MPLOCK_TOKEN="+strconv.FormatUint(uint64(lease.Token), 10), "MPLOCK_SERVER="+addr)
	// The command leads a process group of its own (reexec sets that, and
	// Pdeathsig, which execve keeps), so that whatever it starts can be
	// stopped with it.
	tty := foregroundTerminal()
	if tty != nil {
		// A background group that reads its terminal is stopped by
		// SIGTTIN: give the command the terminal, as a shell gives it to
		// the job it runs.
		cmd.SysProcAttr.Foreground, cmd.SysProcAttr.Ctty = true, tty.fd
	}
	// Pdeathsig kills the command if mplock run dies, but nothing else in
	// its group, which would go on without the lock. The janitor, a
	// process of its own, kills the whole group if mplock run dies before
	// telling it the run is over.
	jan, err := janitor.Start()
	if err != nil {
		lease.Unlock(context.Background())
		return fmt.Errorf("run: %w; command not run", err)
	}
	defer jan.Close() // after the command was reaped and its group killed, below
	// Take the signals before starting, so none is lost between the two.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	chld := make(chan os.Signal, 1)
	if tty != nil {
		signal.Notify(chld, syscall.SIGCHLD)
		defer signal.Stop(chld)
	}
	err = cmd.Start()
	gateR.Close()
	if err != nil {
		lease.Unlock(context.Background())
		return fmt.Errorf("run: %w; command not run", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	if err := jan.Track(janitor.Resource{Kind: janitor.Group, ID: strconv.Itoa(pgid)}); err != nil {
		fmt.Fprintf(errw, "mplock: run: %v: were mplock run killed, what the command starts could outlive the lock\n", err)
	}
	// Only now may the command run: if mplock run is killed from here on,
	// the janitor kills the whole group.
	gateW.Write([]byte{1})
	gateW.Close()
	if tty != nil {
		// mplock run is now in a background group of its terminal: a
		// write there (with stty tostop) or taking the terminal back
		// would stop it with SIGTTOU. Shells ignore it for the same
		// reason. Nothing is started after this point to inherit it
		// (the janitor was started before).
		signal.Ignore(syscall.SIGTTOU)
	}

	var waitErr error
	lost := false
wait:
	for {
		select {
		case waitErr = <-exited:
			break wait
		case s := <-sigs:
			signalGroup(pgid, s.(syscall.Signal))
		case <-chld:
			if stopped(pgid) {
				tty.suspend(pgid)
			}
		case <-lease.Done():
			lost = true
			fmt.Fprintf(errw, "mplock: run: lost the lock on %s (%v) while the command ran: stopping it (SIGTERM, then SIGKILL after %v)\n",
				name, lease.Err(), c.Duration("grace"))
			signalGroup(pgid, syscall.SIGTERM)
			select {
			case waitErr = <-exited:
			case <-time.After(c.Duration("grace")):
				fmt.Fprintf(errw, "mplock: run: command still running after %v: SIGKILL\n", c.Duration("grace"))
				syscall.Kill(-pgid, syscall.SIGKILL)
				waitErr = <-exited
			}
			break wait
		}
	}
	if tty != nil {
		tty.give(pgid, tty.pgrp)
	}
	// Whatever the command left in its group goes with it: nothing of it
	// may outlive the lock.
	syscall.Kill(-pgid, syscall.SIGKILL)

	if !lost {
		if err := lease.Unlock(context.Background()); err != nil && !errors.Is(err, lockd.ErrUnlocked) {
			lost = true
			fmt.Fprintf(errw, "mplock: run: the lock on %s was lost before the command finished (%v)\n", name, err)
		} else {
			verbose("unlocked %s", name)
		}
	}
	if lost {
		return withCode(exitLockLost, fmt.Errorf("run: %s: command stopped: it did not finish under the lock", name))
	}
	return withCode(commandExitCode(waitErr), nil)
}

// commandExitCode is the shell's view of how the command ended.
func commandExitCode(err error) int {
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
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
