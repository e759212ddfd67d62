package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/lockd"
)

// seedResult is `mplock client NAME PREEMPT|RELEASE --json`'s document.
type seedResult struct {
	Resource string  `json:"resource"`
	Op       string  `json:"op"`
	Token    uint64  `json:"token"`
	Session  uint64  `json:"session"`
	Server   string  `json:"server"`
	Held     float64 `json:"held_seconds"`
	Kept     string  `json:"kept_session,omitempty"` // PREEMPT --keep: ID:SECRET
}

// seedAction is the seed's verbs: PREEMPT, RELEASE, CHECK.
func seedAction(c *cli.Context, name, op string) error {
	jsonOut := c.Bool("json")
	out := c.App.Writer
	say := func(format string, args ...any) {
		if !jsonOut {
			fmt.Fprintf(out, format+"\n", args...)
		}
	}
	cons, err := lockd.ParseConsistency(c.String("consistency"))
	if err != nil {
		return usageErrorf("client: --consistency %q: want stale, default or consistent", c.String("consistency"))
	}
	if c.Bool("keep") && op != "PREEMPT" || c.IsSet("consistency") && op != "CHECK" || c.String("session") != "" && op != "RELEASE" && c.IsSet("session") {
		return usageErrorf("client: --keep is PREEMPT's, --consistency CHECK's, --session RELEASE's")
	}
	if err := checkTTL("client", c.Duration("ttl")); err != nil {
		return err
	}
	var resume lockd.SessionCredential
	if op == "RELEASE" {
		if c.String("session") == "" {
			return usageErrorf("client: RELEASE needs the session that holds the lock: --session ID:SECRET (printed by PREEMPT --keep; a client's locks are released when it exits anyway)")
		}
		if resume, err = lockd.ParseSessionCredential(c.String("session")); err != nil {
			return usageErrorf("client: --session: %v", err)
		}
	}
	cl, addr, err := dialServerResume(c, "client", "client", resume)
	if err != nil {
		return err
	}
	switch op {
	case "CHECK":
		defer cl.Close()
		r, err := cl.Check(c.Context, name, cons)
		if err != nil {
			return fmt.Errorf("client: check %s: %w", name, err)
		}
		if jsonOut {
			if r.Holders == nil {
				r.Holders = []lockd.HolderStatus{}
			}
			return writeJSON(out, r)
		}
		if !r.Held() {
			say("%s is free", name)
		}
		for _, h := range r.Holders {
			say("%s is held %s by session %d (%s, pid %d) with token %d", name, h.Mode, h.Session, dashIfEmpty(h.Client), h.PID, h.Token)
		}
		if r.Node != "" {
			where := fmt.Sprintf("(%s read at %s, index %d, leader %s", r.Consistency, r.Node, r.Index, dashIfEmpty(r.Leader))
			if r.Contact >= 0 {
				where += fmt.Sprintf(", last heard from it %v ago", r.Contact.Round(10*time.Microsecond))
			}
			say("%s)", where)
		}
		return nil
	case "RELEASE":
		defer cl.Close()
		lease, ok := cl.Lease(name)
		if !ok {
			return fmt.Errorf("client: session %d does not hold %s", resume.Session, name)
		}
		if err := lease.Unlock(c.Context); err != nil {
			return fmt.Errorf("client: release %s: %w", name, err)
		}
		say("RELEASED %s (token %d)", name, lease.Token)
		if jsonOut {
			return writeJSON(out, seedResult{Resource: name, Op: op, Token: uint64(lease.Token), Session: uint64(cl.Session()), Server: addr})
		}
		return nil
	}
	// PREEMPT
	keep := c.Bool("keep")
	info, cluster := cl.Cluster()
	if keep && !cluster {
		cl.Close()
		return usageErrorf("client: --keep needs a cluster (mplock serve --data-dir or --initial-cluster): a single in-memory server releases a session's locks when its connection ends")
	}
	var opts []lockd.LockOption
	if c.IsSet("ttl") {
		opts = append(opts, lockd.WithTTL(c.Duration("ttl")))
	}
	lease, err := cl.TryLock(c.Context, name, lockd.Exclusive, opts...)
	switch {
	case errors.Is(err, lockd.ErrLocked):
		cl.Close()
		var se *lockd.ServerError
		if errors.As(err, &se) {
			err = errors.New(se.Text)
		}
		return withCode(exitLockTaken, fmt.Errorf("client: PREEMPT failed: %v", err))
	case err != nil:
		cl.Close()
		return fmt.Errorf("client: PREEMPT %s: %w", name, err)
	}
	start := time.Now()
	say("PREEMPTED %s (token %d)", name, lease.Token)
	res := seedResult{Resource: name, Op: op, Token: uint64(lease.Token), Session: uint64(cl.Session()), Server: addr}
	if keep {
		res.Kept = lockd.SessionCredential{Session: cl.Session(), Secret: info.Secret}.String()
		if jsonOut {
			writeJSON(out, res)
		} else {
			fmt.Fprintf(out, "MPLOCK_SESSION=%s\n", res.Kept)
			fmt.Fprintf(c.App.ErrWriter, "mplock: client: %s stays held by session %d until `mplock client %s RELEASE --session ...`, or until the session TTL (%v) passes\n",
				name, cl.Session(), name, info.SessionTTL)
		}
		return cl.Detach()
	}
	defer cl.Close()
	if hold := c.Duration("hold"); hold > 0 {
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-lease.Done():
			return fmt.Errorf("client: LOST %s while holding it: %w", name, lease.Err())
		case <-c.Context.Done():
			t.Stop()
		}
	}
	if err := lease.Unlock(context.Background()); err != nil {
		return fmt.Errorf("client: release %s: %w", name, err)
	}
	res.Held = time.Since(start).Seconds()
	say("RELEASED %s", name)
	if jsonOut {
		return writeJSON(out, res)
	}
	if c.Context.Err() != nil {
		return withCode(exitInterrupted, nil)
	}
	return nil
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
