package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/lockd"
	"mplock/report"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show who holds which lock on the lock server, who waits, since when",
		UsageText: "mplock status [name] [--json] [--server ADDR[,ADDR...]] [--wait-holders N] [--wait-waiters N]",
		Description: `Lists every holder (client name, pid, session, mode, fencing token, how long
it has held, its lease) and every waiter in queue order, for one name or for
all; for all, also the sessions. Ages are by the server's clock. Against a
cluster, every member comes first: its role, term, commit and applied
index, its lag behind the leader's commit index (entries), and when it last
heard from the leader; a member that does not answer is shown down.
All names are read page by page (STATUS after=, up to 10,000 names or
256 KiB a request), so a server with many locks never holds the whole
listing for one client; the pages are not one snapshot, but each name's
holders and waiters are consistent.

--wait-holders and --wait-waiters make status wait (polling every 10ms, up
to --timeout) until the listing has at least that many holders and waiters,
which lets a script start a second client only once the first is in place.

Examples:
  mplock status
  mplock status file_A --json
  mplock status file_A --wait-waiters 1      # until someone queues for file_A

Exit status: 0; 1 the server could not be reached, or --timeout passed
before the wait condition held; 2 usage.`,
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
			&cli.GenericFlag{Name: "wait-holders", Value: number(0, 1), DefaultText: "no wait", Usage: "first wait until at least `N` holders are listed"},
			&cli.GenericFlag{Name: "wait-waiters", Value: number(0, 1), DefaultText: "no wait", Usage: "first wait until at least `N` waiters are listed"},
			&cli.GenericFlag{Name: "timeout", Value: seconds(10 * time.Second), Usage: "how long --wait-holders/--wait-waiters may wait"},
		}, serverFlags()...),
		Action: statusAction,
	}
}

// statusDoc is `mplock status --json`'s document: the table's status and,
// against a cluster, its members (the "cluster" object).
type statusDoc struct {
	lockd.Status
	Cluster *lockd.Members `json:"cluster,omitempty"`
}

func statusAction(c *cli.Context) error {
	pos, err := trailingFlags(c, false)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageErrorf("status: at most one name")
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
		if err := lockd.ValidName(name); err != nil {
			return usageErrorf("status: %v", err)
		}
	}
	cl, _, err := dialServer(c, "status", "status")
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := c.Context
	wantH, wantW := c.Int("wait-holders"), c.Int("wait-waiters")
	waiting := wantH > 0 || wantW > 0
	if waiting {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration("timeout"))
		defer cancel()
	}
	for {
		st, err := cl.Status(ctx, name)
		if err != nil {
			if c.Context.Err() != nil {
				return withCode(exitInterrupted, nil)
			}
			if waiting && ctx.Err() != nil {
				return fmt.Errorf("status: after %v, still not %d holders and %d waiters", c.Duration("timeout"), wantH, wantW)
			}
			return fmt.Errorf("status: %w", err)
		}
		h, w := 0, 0
		for _, l := range st.Locks {
			h += len(l.Holders)
			w += len(l.Waiters)
		}
		if h >= wantH && w >= wantW {
			var members *lockd.Members
			if _, ok := cl.Cluster(); ok && name == "" {
				m, err := cl.Members(ctx)
				if err != nil {
					return fmt.Errorf("status: members: %w", err)
				}
				members = &m
			}
			if c.Bool("json") {
				if st.Locks == nil {
					st.Locks = []lockd.LockStatus{}
				}
				// Empty lists print as [], never null, so a script can
				// take their length.
				for i := range st.Locks {
					if st.Locks[i].Holders == nil {
						st.Locks[i].Holders = []lockd.HolderStatus{}
					}
					if st.Locks[i].Waiters == nil {
						st.Locks[i].Waiters = []lockd.WaiterStatus{}
					}
				}
				return writeJSON(c.App.Writer, statusDoc{Status: st, Cluster: members})
			}
			if members != nil {
				if err := report.LockdMembers(c.App.Writer, *members); err != nil {
					return err
				}
			}
			return report.LockdStatus(c.App.Writer, st)
		}
		select {
		case <-ctx.Done():
			if c.Context.Err() != nil {
				return withCode(exitInterrupted, nil)
			}
			return fmt.Errorf("status: after %v, %d holders and %d waiters, not yet %d and %d", c.Duration("timeout"), h, w, wantH, wantW)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
