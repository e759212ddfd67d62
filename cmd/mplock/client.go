package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/lockd"
)

func clientCommand() *cli.Command {
	return &cli.Command{
		Name:      "client",
		Usage:     "lock a named resource on the lock server to READ (shared) or WRITE (exclusive) its file; PREEMPT, RELEASE, CHECK it",
		UsageText: "mplock client <resource> READ|WRITE [value] [seconds] [--hold D] [--dir D] [--server ADDR[,ADDR...]] [--json]\n   mplock client <resource> PREEMPT|RELEASE|CHECK [--hold D] [--keep] [--session ID:SECRET] [--consistency C] [--json]",
		Description: `The original distributed-lock client, working. READ takes a shared lock on
<resource> and prints the content of <dir>/<resource>.txt (at most 1 MiB:
a larger file is refused, unread; on a terminal, control characters are
shown as escapes like \x1b); WRITE takes an
exclusive lock, holds it for --hold (the original's sleep, default 2s for
WRITE, 0 for READ), then writes [value] to <dir>/<resource>.txt atomically
(a temporary file renamed over it, with the umask's permissions). A
symbolic link in place of <resource>.txt is never followed. Waiting is in the server's FIFO queue:
readers share, a writer waits for them, and a reader that comes after a
waiting writer waits too. Each grant prints its fencing token.

Resource names: letters, digits, '.', '_', '-', not starting with '.', at
most 128 bytes (they become file names).

The seed's verbs, without files:
  PREEMPT  takes <resource> (WRITE) if it is free, or fails at once (exit
           75) naming its holder; holds it for --hold (default 0), then
           releases it. With --keep (against a cluster) it leaves instead,
           with the lock still held by its session, and prints the session
           as MPLOCK_SESSION=ID:SECRET: the lock is released by RELEASE
           --session, or when the session TTL passes.
  RELEASE  releases <resource> for the session --session ID:SECRET
           (MPLOCK_SESSION): only the owner's session can.
  CHECK    lists the holders of <resource>, with --consistency stale (the
           answering member's own table, with how far behind it may be),
           default (the leader's view) or consistent (linearizable). A
           check is information, never proof of ownership: by the time you
           act on it the lock may have changed hands; only the fencing
           token protects a resource.

With a list of servers (--server a,b,c or MPLOCK_SERVER), the first that
answers is used; against a cluster the client moves to another member if
its own fails, and keeps its locks (docs/protocol.md, "Cluster").

Examples:
  mplock client file_A WRITE "Hello Distributed World" --hold 5s
  mplock client file_A READ                 # waits while a writer holds file_A
  mplock client file_A WRITE "v" 5          # the original's form: hold 5 seconds
  mplock client db_connection READ --json
  mplock client file_A PREEMPT --hold 2s    # take it if free, else exit 75 at once
  mplock client file_A CHECK --consistency stale

Exit status: 0 done; 1 the lock was lost before the work was done, or the
server could not be reached; 75 with --timeout (or PREEMPT) when the lock
stayed taken; 2 usage; 130 interrupted (the lock is released, nothing
written).`,
		Flags: append([]cli.Flag{
			&cli.GenericFlag{Name: "hold", Value: seconds(0), DefaultText: "2s for WRITE, 0 for READ", Usage: "hold the lock this long before the READ or WRITE"},
			&cli.StringFlag{Name: "dir", Value: ".", Usage: "`DIR` of the resource files <resource>.txt"},
			&cli.GenericFlag{Name: "timeout", Value: seconds(0), DefaultText: "wait as long as it takes", Usage: "give up waiting after this long; 0: do not wait at all"},
			&cli.GenericFlag{Name: "ttl", Value: seconds(0), DefaultText: "the server's --ttl", Usage: "ask for a lease of this length (renewed while held)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document instead of the lines"},
			&cli.StringFlag{Name: "consistency", Value: "default", Usage: "CHECK: how current the answer must be (stale, consistent; see above)"},
			&cli.BoolFlag{Name: "keep", Usage: "PREEMPT: leave with the lock held by the session (cluster), printing MPLOCK_SESSION"},
			&cli.StringFlag{Name: "session", EnvVars: []string{"MPLOCK_SESSION"}, Usage: "RELEASE: the cluster session `ID:SECRET` that holds the lock (from PREEMPT --keep)"},
		}, serverFlags()...),
		Action: clientAction,
	}
}

// maxHoldSeconds bounds the original's trailing hold, as the protocol bounds
// every duration; a longer hold is surely a slip of the keyboard.
const maxHoldSeconds = int(lockd.MaxDuration / time.Second)

// holdSeconds parses the original's trailing sleep_seconds. ParseFloat also
// takes NaN, Inf and 1e30, none of them a hold (and the last overflows a
// Duration into a negative one): they are refused rather than becoming no
// hold at all.
func holdSeconds(s string) (time.Duration, error) {
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(secs) || secs < 0 || secs > float64(maxHoldSeconds) {
		return 0, usageErrorf("client: hold %q: want a number of seconds from 0 to %d, like 5 or 0.5 (or --hold 90m)", s, maxHoldSeconds)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// clientResult is `mplock client --json`'s document.
type clientResult struct {
	Resource string  `json:"resource"`
	Op       string  `json:"op"`
	Value    *string `json:"value"` // written, or read (null: no file yet)
	File     string  `json:"file"`
	Token    uint64  `json:"token"`
	Session  uint64  `json:"session"`
	Server   string  `json:"server"`
	Waited   float64 `json:"waited_seconds"`
	Held     float64 `json:"held_seconds"`
}

func clientAction(c *cli.Context) error {
	pos, err := trailingFlags(c, false)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageErrorf("client: want <resource> READ|WRITE [value] [seconds]")
	}
	name, opWord := pos[0], strings.ToUpper(pos[1])
	if err := lockd.ValidName(name); err != nil {
		return usageErrorf("client: resource: %v", err)
	}
	switch opWord {
	case "PREEMPT", "RELEASE", "CHECK":
		if len(pos) > 2 {
			return usageErrorf("client: %s takes no value: %q", opWord, strings.Join(pos[2:], " "))
		}
		return seedAction(c, name, opWord)
	}
	mode, err := lockd.ParseMode(opWord)
	if err != nil || (opWord != "READ" && opWord != "WRITE") {
		return usageErrorf("client: operation %q: want READ, WRITE, PREEMPT, RELEASE or CHECK", pos[1])
	}
	rest := pos[2:]
	var value string
	if mode == lockd.Exclusive {
		if len(rest) == 0 {
			return usageErrorf("client: WRITE needs a value")
		}
		value, rest = rest[0], rest[1:]
	}
	hold := time.Duration(0)
	if mode == lockd.Exclusive {
		hold = 2 * time.Second // the original's default
	}
	if len(rest) > 1 {
		return usageErrorf("client: unexpected %q (the original's hold is one number of seconds: `file_A WRITE v 5`)", strings.Join(rest, " "))
	}
	if len(rest) == 1 {
		if hold, err = holdSeconds(rest[0]); err != nil {
			return err
		}
	}
	if c.IsSet("hold") {
		hold = c.Duration("hold")
	}
	if err := checkTTL("client", c.Duration("ttl")); err != nil {
		return err
	}
	dir := c.String("dir")
	file := filepath.Join(dir, name+".txt")
	jsonOut := c.Bool("json")
	out := c.App.Writer
	say := func(format string, args ...any) {
		if !jsonOut {
			fmt.Fprintf(out, format+"\n", args...)
		}
	}

	cl, addr, err := dialServer(c, "client", "client")
	if err != nil {
		return err
	}
	defer cl.Close()
	say("REQUESTING lock for resource: %s", name)
	lockCtx := c.Context
	if c.IsSet("timeout") && c.Duration("timeout") > 0 {
		var cancel context.CancelFunc
		lockCtx, cancel = context.WithTimeout(c.Context, c.Duration("timeout"))
		defer cancel()
	}
	var opts []lockd.LockOption
	if c.IsSet("ttl") {
		opts = append(opts, lockd.WithTTL(c.Duration("ttl")))
	}
	if !jsonOut {
		opts = append(opts, lockd.OnQueued(func(p int) {
			fmt.Fprintf(out, "(waiting until the holder releases %s: position %d in the queue)\n", name, p)
		}))
	}
	start := time.Now()
	var lease *lockd.Lease
	if c.IsSet("timeout") && c.Duration("timeout") == 0 {
		lease, err = cl.TryLock(lockCtx, name, mode, opts...)
	} else {
		lease, err = cl.Lock(lockCtx, name, mode, opts...)
	}
	switch {
	case c.Context.Err() != nil:
		return withCode(exitInterrupted, fmt.Errorf("client: interrupted while waiting for %s; nothing done", name))
	case errors.Is(err, lockd.ErrLocked):
		return withCode(exitLockTaken, fmt.Errorf("client: %s is locked by another client (--timeout 0); nothing done", name))
	case errors.Is(err, context.DeadlineExceeded):
		return withCode(exitLockTaken, fmt.Errorf("client: %s still locked by another client after %v (--timeout); nothing done", name, c.Duration("timeout")))
	case err != nil:
		return fmt.Errorf("client: lock %s: %w", name, err)
	}
	locked := time.Now()
	say("LOCKED %s (token %d)", name, lease.Token)
	res := clientResult{Resource: name, Op: opWord, File: file, Token: uint64(lease.Token), Session: uint64(cl.Session()),
		Server: addr, Waited: locked.Sub(start).Seconds()}

	if hold > 0 {
		unit := "seconds"
		if hold == time.Second {
			unit = "second"
		}
		say("Sleeping for %s %s...", strconv.FormatFloat(hold.Seconds(), 'f', -1, 64), unit)
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-lease.Done():
		case <-c.Context.Done():
			t.Stop()
			lease.Unlock(context.Background())
			say("UNLOCKED %s", name)
			return withCode(exitInterrupted, fmt.Errorf("client: interrupted while holding %s; nothing %s", name, map[bool]string{true: "written", false: "read"}[mode == lockd.Exclusive]))
		}
		t.Stop()
	}
	// Check the lock is still ours, with time to spare, before touching
	// the file; after this, only the fencing token could protect the file
	// from a later holder.
	if err := stillHeld(lease); err != nil {
		return fmt.Errorf("client: LOST %s before the %s: %w; nothing done", name, opWord, err)
	}
	if mode == lockd.Exclusive {
		if err := writeResource(file, []byte(value)); err != nil {
			lease.Unlock(context.Background())
			return fmt.Errorf("client: %w", err)
		}
		say("WROTE '%s' to %s", value, name)
		res.Value = &value
	} else {
		b, err := readResource(file)
		switch {
		case errors.Is(err, os.ErrNotExist):
			say("READ from %s: ", name)
			if !jsonOut {
				fmt.Fprintf(c.App.ErrWriter, "mplock: client: %s does not exist yet (nothing was written to %s)\n", file, name)
			}
		case err != nil:
			lease.Unlock(context.Background())
			return fmt.Errorf("client: %w", err)
		default:
			s := string(b)
			res.Value = &s
			shown := s
			if isTerminal(out) {
				shown = escapeControls(s)
			}
			say("READ from %s: %s", name, shown)
		}
	}
	if err := lease.Unlock(c.Context); err != nil {
		return fmt.Errorf("client: unlock %s: %w", name, err)
	}
	res.Held = time.Since(locked).Seconds()
	say("UNLOCKED %s", name)
	if jsonOut {
		return writeJSON(out, res)
	}
	return nil
}

// stillHeld returns nil if lease is held with at least a third of its
// length to go before its deadline (the time the client's own clock gives
// it, see lockd.Lease): a file operation fits in that, and a healthy link
// keeps twice as much.
func stillHeld(lease *lockd.Lease) error {
	select {
	case <-lease.Done():
		return lease.Err()
	default:
	}
	if d := lease.Deadline(); !d.IsZero() {
		if left := time.Until(d); left < lease.Length()/3 {
			return fmt.Errorf("%w: no renewal confirmed for %v, and the server may give the lock to another client in %v",
				lockd.ErrLeaseExpired, (lease.Length() - left).Round(time.Millisecond), left.Round(time.Millisecond))
		}
	}
	return nil
}
