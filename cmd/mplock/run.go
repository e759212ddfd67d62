package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/lockd"
)

// Exit codes of `mplock run` and `mplock client` beyond exit.go's, a
// contract for scripts. Chosen outside the range commands commonly use;
// 75 is sysexits' EX_TEMPFAIL ("try again later").
const (
	exitLockTaken = 75 // --timeout ran out (or 0: try-lock) with the lock still taken; nothing run (run: -E)
	exitLockLost  = 76 // the lock was lost while the command ran; the command was stopped
)

// releaseTimeout bounds mplock run's wait for the server to confirm the
// release of its lock.
const releaseTimeout = 10 * time.Second

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run a command while holding a named lock on the lock server (like flock(1), across hosts)",
		UsageText: "mplock run <name> [--shared] [--timeout D] [--ttl D] [--grace D] [-E N] [--keep-lock-for-descendants] [--server ADDR] -- command [args...]",
		Description: `Takes the lock <name> (exclusive, or shared with --shared), runs the command
with MPLOCK_NAME, MPLOCK_TOKEN (the fencing token) and MPLOCK_SERVER in its
environment, releases the lock once the command and everything it started
have ended, and exits with the command's exit status.

Nothing of the command runs on without the lock:
  - mplock run keeps its own clock on the lease: it is surely held until the
    send time of the last renewal the server confirmed plus the TTL, and the
    server may give it to someone else from then on. Renewals go out every
    third of the TTL. If none is confirmed in time (the server or the link is
    gone, even without a word), the command gets SIGTERM --grace before that
    deadline and SIGKILL at it, and mplock run exits 76. --grace is at most a
    third of the lease: by default 10s or a third, whichever is shorter; a
    longer --grace with --ttl is a usage error. Without any lease, the
    server's idle timeout plays the TTL's part (7/8 of it).
  - The command's init (below), a process of its own, keeps that deadline
    too: mplock run tells it the deadline (on CLOCK_MONOTONIC) when the
    command starts and whenever a confirmed renewal moves it, and the init
    sends the SIGTERM and the SIGKILL itself, on its own clock. So an
    mplock run that is stopped alone (SIGSTOP, a debugger) or starved
    stops nothing of the command's: the command ends before the lock can
    pass to anyone else, and mplock run, continued, says so and exits 76.
  - A lock taken away at once (the server shut down, the connection broke)
    gives the command SIGTERM at once and SIGKILL --grace later, or at the
    deadline if that comes first.
  - Against a cluster (--server or MPLOCK_SERVER listing its members), the
    lock belongs to the session, not the connection: if mplock run's member
    dies, it resumes the session at another and the lock stays held, with
    its token; the deadline above is then also capped by the session's
    (the send time of the last PING the leader confirmed plus the session
    TTL), past which the command is stopped as above. The command's
    MPLOCK_SERVER lists every member.
  - When the command exits, whatever it started that is still running
    (a background job, a daemon that called setsid or forked twice) gets
    SIGTERM, then SIGKILL after --grace, before the lock is released, and
    mplock run names each process. With --keep-lock-for-descendants it
    holds the lock instead, renewing it, until they have all exited, as a
    daemon that inherits flock(1)'s lock file holds it.
  - If mplock run itself dies, even by SIGKILL (pkill -9 mplock), the command
    runs in a PID namespace of its own, whose init is mplock's (mplock
    worker exec, pid 1 there), which dies with mplock run; the kernel then
    kills every process in the namespace. As root this needs nothing more;
    otherwise a user namespace too, mapping your uid to itself (setuid
    programs such as sudo gain no privileges there). Inside, the command
    sees a small pid of the namespace's as its own ($$), and cannot signal
    processes outside by pid (kill $(cat /run/x.pid) fails); ps and /proc
    still show the host's pids, kill of the command's host pid from outside
    works as usual, and a shell learns its host pid with
    read -r pid rest </proc/self/stat.
    --no-pid-namespace, or a kernel or sandbox that refuses namespaces, runs
    it without one: the init is then a child subreaper that kills every
    process of the command when mplock run dies, and a watchdog (mplock
    worker janitor) kills the init's process group should the init die
    too; only a process that left that group (setsid) survives mplock run,
    its init and its janitor all killed at once. --verbose says which holds.

What no runner can prevent: mplock run and the command's init stopped both
(SIGSTOP to each, as pkill -STOP mplock sends; a frozen cgroup, as docker
pause makes; a paused VM; a suspended host, on whose resumption their
monotonic clocks have not moved while a server elsewhere counted the time)
cannot stop the command in time, and neither can anything else on that
host; a lock taken away at once leaves the command its --grace. Then only
the fencing token protects the resource: the resource must refuse a token
lower than the highest it has accepted. For a file:
  mplock run report -- sh -c 'exec 9>>report.token && flock 9 &&
    seen=$(cat report.token) && [ "$MPLOCK_TOKEN" -ge "${seen:-0}" ] &&
    echo "$MPLOCK_TOKEN" > report.token && echo "token $MPLOCK_TOKEN" >> report.txt'
(the README's fenced-write script is the same, with a message).

Run from a terminal's prompt, the command gets the terminal while it runs,
as any job the shell starts: it can read it, Ctrl-C and Ctrl-Z reach it,
and Ctrl-Z stops mplock run with it (fg resumes both). Suspended, mplock
run renews nothing: if the lease runs out meanwhile, the init gives the
command SIGTERM (with SIGCONT, so that it can act on it) --grace before the
deadline and SIGKILL at it, and fg finds it ended, exit 76. Within a
pipeline (mplock run ... | less), the terminal stays with the pipeline. SIGINT,
SIGTERM and SIGHUP sent to mplock run are passed on to the command's process
group (with SIGCONT, should it be stopped).

Examples:
  mplock run nightly-backup -- ./backup.sh
  mplock run nightly-backup --timeout 0 -- ./backup.sh    # skip if already running
  mplock run nightly-backup --timeout 0 -E 0 -- ./backup.sh   # ... and exit 0 then (cron)
  mplock run reports --shared --timeout 30s -- ./read-reports.sh
  mplock run deploy --ttl 15s -- ./deploy.sh              # stopped if this host is cut off 15s
  mplock run web --keep-lock-for-descendants -- ./start-daemon.sh

Exit status: the command's (128+N if killed by signal N); 75, or -E N, the
lock stayed taken (--timeout; with 0, at once); 76 the lock was lost, or
about to be, and the command stopped; 126 the command could not be run (not
executable); 127 the command was not found; 1 the server could not be
reached; 2 usage; 130 interrupted while waiting for the lock.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "shared", Usage: "take the lock shared (READ): other --shared runs may hold it at once"},
			&cli.GenericFlag{Name: "timeout", Value: seconds(0), DefaultText: "wait as long as it takes", Usage: "give up waiting after this long; 0: do not wait at all"},
			&cli.GenericFlag{Name: "ttl", Value: seconds(0), DefaultText: "the server's --ttl", Usage: "lease length, renewed while the command runs"},
			&cli.GenericFlag{Name: "grace", Value: seconds(10 * time.Second), DefaultText: "10s, at most a third of the lease", Usage: "SIGTERM this long before the lease's deadline (SIGKILL at it), and before SIGKILL of what the command leaves running"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say on stderr when the lock is taken and released"},
			&cli.GenericFlag{Name: "conflict-exit-code", Aliases: []string{"E"}, Value: number(exitLockTaken, 0), Usage: "exit `N` (0-255) when the lock stays taken, as flock(1) -E; 0 makes a skipped run look like success"},
			&cli.BoolFlag{Name: "keep-lock-for-descendants", Usage: "when the command exits, hold the lock until every process it started has exited, instead of stopping them"},
			&cli.BoolFlag{Name: "no-pid-namespace", Usage: "run the command without a PID namespace of its own (it can then signal other processes by pid; see above)"},
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
	conflict := c.Int("conflict-exit-code")
	if conflict < 0 || conflict > 255 {
		return usageErrorf("run: --conflict-exit-code %d: want 0 to 255", conflict)
	}
	if ttl := c.Duration("ttl"); ttl > 0 && c.IsSet("grace") && c.Duration("grace") > ttl/3 {
		return usageErrorf("run: --grace %v is more than a third of --ttl %v (%v): the command gets SIGTERM --grace before the lease's deadline, and a healthy lease is only renewed every third of it",
			c.Duration("grace"), ttl, ttl/3)
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
		return withCode(conflict, fmt.Errorf("run: %s is locked by another client; command not run", name))
	case errors.Is(err, context.DeadlineExceeded):
		return withCode(conflict, fmt.Errorf("run: %s still locked after %v; command not run", name, c.Duration("timeout")))
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
	grace := c.Duration("grace")
	if n := lease.Length(); n > 0 && grace > n/3 {
		if c.IsSet("grace") {
			fmt.Fprintf(errw, "mplock: run: --grace %v is more than a third of the lease on %s (%v): using %v\n", grace, name, n, n/3)
		}
		grace = n / 3
	}
	j := &job{
		name: name, lease: lease, grace: grace, keep: c.Bool("keep-lock-for-descendants"),
		errw: errw, verbose: verbose,
	}
	if info, ok := cl.Cluster(); ok {
		addr = strings.Join(info.Servers, ",") // the command's own mplock commands may fail over too
	}
	env := append(os.Environ(), "MPLOCK_NAME="+name, "MPLOCK_TOKEN="+strconv.FormatUint(uint64(lease.Token), 10), "MPLOCK_SERVER="+addr)
	// Take the signals before starting, so none is lost between the two.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := j.start(path, argv, env, c.App.Writer, !c.Bool("no-pid-namespace")); err != nil {
		lease.Unlock(context.Background())
		return fmt.Errorf("run: %w; command not run", err)
	}
	code, lost := j.supervise(sigs)

	// The release is bounded: the server also releases the lock when the
	// connection closes (cl.Close, deferred), and a lease ends at its
	// deadline in any case.
	uctx, ucancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer ucancel()
	err = lease.Unlock(uctx)
	switch {
	case lost:
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(errw, "mplock: run: no answer to the release of %s within %v; the server releases it when the connection closes\n", name, releaseTimeout)
	case err != nil && !errors.Is(err, lockd.ErrUnlocked):
		lost = true
		fmt.Fprintf(errw, "mplock: run: the lock on %s was lost before the command finished (%v)\n", name, err)
	default:
		verbose("unlocked %s", name)
	}
	if lost {
		return withCode(exitLockLost, fmt.Errorf("run: %s: command stopped: it did not finish under the lock", name))
	}
	return withCode(code, nil)
}
