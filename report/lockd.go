package report

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"mplock/lockd"
)

// LockdStatus renders `mplock status`: one row per holder and per waiter
// (waiters in queue order, #1 next), then the sessions when st lists them.
// Ages are measured against the server's clock (st.Now), so a skewed local
// clock does not distort them.
func LockdStatus(w io.Writer, st lockd.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(st.Locks) == 0 {
		fmt.Fprintln(tw, "no locks held or waited for")
	} else {
		fmt.Fprintln(tw, "NAME\tSTATE\tMODE\tTOKEN\tCLIENT\tPID\tSESSION\tFOR\tLEASE")
		for _, l := range st.Locks {
			for _, h := range l.Holders {
				lease := "-"
				if h.TTL > 0 {
					lease = "expires in " + dur(h.Expires.Sub(st.Now)) + " (ttl " + h.TTL.String() + ")"
				}
				fmt.Fprintf(tw, "%s\theld\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", l.Name, h.Mode, h.Token,
					dash(h.Client), pid(h.PID), h.Session, age(st.Now, h.Since), lease)
			}
			for _, q := range l.Waiters {
				limit := "-"
				if !q.Deadline.IsZero() {
					limit = "gives up in " + dur(q.Deadline.Sub(st.Now))
				}
				fmt.Fprintf(tw, "%s\twaiting #%d\t%s\t-\t%s\t%s\t%d\t%s\t%s\n", l.Name, q.Position, q.Mode,
					dash(q.Client), pid(q.PID), q.Session, age(st.Now, q.Since), limit)
			}
		}
	}
	if len(st.Sessions) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "SESSION\tCLIENT\tPID\tADDRESS\tCONNECTED\tHELD\tWAITING")
		for _, s := range st.Sessions {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\n", s.ID, dash(s.Client), pid(s.PID), s.Addr, age(st.Now, s.Since), s.Held, s.Waiting)
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pid(p int) string {
	if p == 0 {
		return "-"
	}
	return strconv.Itoa(p)
}

func age(now, since time.Time) string {
	d := now.Sub(since)
	if d < 0 {
		d = 0
	}
	return dur(d)
}

// LockdMembers renders the members of a cluster, as `mplock status` shows
// them before the locks: each member's role, term, commit and applied
// index, how far it lags the leader's commit index, and when it last
// heard from the leader.
func LockdMembers(w io.Writer, m lockd.Members) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tROLE\tTERM\tCOMMIT\tAPPLIED\tLAG\tCONTACT\tCLIENT\tRAFT")
	for _, s := range m.Members {
		if s.Role == "down" {
			fmt.Fprintf(tw, "%s\tdown\t-\t-\t-\t-\t-\t%s\t%s\n", s.ID, dash(s.ClientAddr), dash(s.RaftAddr))
			continue
		}
		contact := "-"
		if s.Role != "leader" && s.Contact >= 0 {
			contact = dur(s.Contact) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.ID, s.Role, s.Term, s.Commit, s.Applied, s.Lag, contact,
			dash(s.ClientAddr), dash(s.RaftAddr))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w)
	return err
}
