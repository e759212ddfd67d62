package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mplock/lockd"
	"mplock/lockd/replica"
)

// consistency maps the protocol's consistency to replica's.
func consistency(c lockd.Consistency) replica.Consistency {
	switch c {
	case lockd.ConsistencyStale:
		return replica.Stale
	case lockd.ConsistencyConsistent:
		return replica.Consistent
	}
	return replica.Default
}

// readError answers a read that failed.
func readError(err error) []byte {
	if errors.Is(err, replica.ErrStale) {
		return lockd.AppendError(nil, lockd.CodeStale, trim(err))
	}
	return lockd.AppendError(nil, lockd.CodeUnavailable, unavailable(err))
}

// check answers CHECK <name> [consistency=C]: the holders, and what the
// answer is worth (index, node, leader, and for a stale read the time
// since this node heard from the leader).
func (b *Backend) check(cn *conn, req lockd.Request) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	r := lockd.CheckResult{Name: req.Name, Consistency: req.Consistency, Contact: -1}
	if r.Consistency == "" {
		r.Consistency = lockd.ConsistencyDefault
	}
	info, err := b.node.Read(ctx, consistency(req.Consistency), func(v replica.View) error {
		r.Holders = v.Owners(req.Name)
		return nil
	})
	if err != nil {
		cn.c.Push(readError(err))
		return
	}
	r.Index, r.Node, r.Leader = info.Index, info.Node, info.Leader
	if info.Consistency == replica.Stale {
		r.Contact = max(info.LastContact, 0)
	}
	cn.c.Push(lockd.AppendCheck(nil, r))
}

// status answers STATUS at the stated consistency.
func (b *Backend) status(cn *conn, req lockd.Request) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	var st lockd.Status
	q := lockd.StatusQuery{Name: req.Name, After: req.After, Limit: req.Limit}
	_, err := b.node.Read(ctx, consistency(req.Consistency), func(v replica.View) error {
		st = v.StatusPage(q)
		return nil
	})
	if err != nil {
		cn.c.Push(readError(err))
		return
	}
	cn.c.Push(lockd.AppendStatus(nil, st))
}

// memberTimeout bounds how long MEMBERS waits for one member's status.
const memberTimeout = time.Second

// MemberStatus asks every member for its raft state, at once, each within
// a second; a member that does not answer is listed as down.
func (b *Backend) MemberStatus(ctx context.Context) lockd.Members {
	members, _ := b.node.Members()
	out := make([]lockd.MemberStatus, len(members))
	sts := make([]*replica.Status, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		out[i] = lockd.MemberStatus{ID: m.ID, RaftAddr: m.RaftAddr, ClientAddr: m.ClientAddr, Voter: m.Voter, Role: "down", Contact: -1}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, cancel := context.WithTimeout(ctx, memberTimeout)
			defer cancel()
			if st, err := b.node.PeerStatus(c, m.ID); err == nil {
				sts[i] = &st
			}
		}()
	}
	wg.Wait()
	res := lockd.Members{}
	var commit uint64
	for _, st := range sts {
		if st != nil && st.State == "Leader" {
			res.Leader, res.Term, commit = st.Node, st.Term, st.CommitIndex
		}
	}
	for i, st := range sts {
		if st == nil {
			continue
		}
		o := &out[i]
		o.Role = strings.ToLower(st.State)
		o.Term, o.Commit, o.Applied, o.Contact = st.Term, st.CommitIndex, st.AppliedIndex, st.LastContact
		if commit > st.AppliedIndex {
			o.Lag = commit - st.AppliedIndex
		}
		if res.Leader == "" {
			res.Term = max(res.Term, st.Term)
		}
	}
	res.Members = out
	return res
}

// members answers MEMBERS.
func (b *Backend) members(cn *conn) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	cn.c.Push(lockd.AppendMembers(nil, b.MemberStatus(ctx)))
}

// member answers MEMBER ADD and MEMBER REMOVE, at the leader (forwarded
// from a follower), for a connection that presented the server's secret
// only: one voter added at an address nobody serves can leave the
// cluster without a majority.
func (b *Backend) member(cn *conn, req lockd.Request) {
	if !cn.c.Authenticated() {
		cn.c.Push(lockd.AppendError(nil, lockd.CodeAuth, req.Verb.String()+
			" needs AUTH with the server's secret, and this member has no --token-file: a membership change can take the cluster's majority away; restart the members with --token-file to change the membership"))
		return
	}
	if !cn.c.Member() {
		cn.c.Push(lockd.AppendError(nil, lockd.CodeAuth, req.Verb.String()+
			" needs AUTH with the members' secret (--peer-token-file), not the clients'"))
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 3*b.timeout)
	defer cancel()
	var err error
	var line string
	if req.Verb == lockd.VerbMemberAdd {
		err = b.node.Join(ctx, req.Name, req.Addr)
		line = fmt.Sprintf("OK MEMBER ADDED %s raft=%s\n", req.Name, req.Addr)
	} else {
		err = b.node.RemoveMember(ctx, req.Name)
		line = fmt.Sprintf("OK MEMBER REMOVED %s\n", req.Name)
	}
	switch {
	case errors.Is(err, replica.ErrBadCommand):
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSyntax, trim(err)))
	case err != nil:
		cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, unavailable(err)))
	default:
		b.log.Info("membership changed", "request", req.String(), "by", cn.c.RemoteAddr())
		cn.c.Push([]byte(line))
	}
}
