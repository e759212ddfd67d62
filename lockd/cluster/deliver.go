package cluster

import (
	"errors"
	"fmt"

	"mplock/lockd"
	"mplock/lockd/replica"
)

// observe is the node's Observer: it runs for every applied entry, in log
// order, in the apply goroutine, and only pushes (never blocks). It
// attaches sessions to the connections that opened or resumed them here,
// pushes the replies of this node's pending requests, and the events of
// every session attached here.
func (b *Backend) observe(a replica.Applied) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.Restored {
		// The FSM was replaced by a snapshot (this node fell far behind):
		// the events between are not known here. Every connection attached
		// here is dropped; its client resumes and learns its state whole.
		for s, cn := range b.attached {
			cn.c.Drop("resync")
			cn.session = 0
			delete(b.attached, s)
		}
		b.log.Warn("replica restored from a snapshot: connections dropped so that their clients resume", "index", a.Index)
		return
	}
	cmd, r := a.Command, a.Result
	switch cmd.Op {
	case replica.OpOpenSession:
		if p := b.opens[cmd.SecretHash]; p != nil && !p.done && cmd.Node == b.id {
			b.attach(p.conn, r.Session)
			p.done = true
		}
	case replica.OpResumeSession:
		b.resumed(cmd, r)
	case replica.OpCloseSession, replica.OpExpireSession:
		if cn := b.attached[cmd.Session]; cn != nil && r.Err == nil {
			delete(b.attached, cmd.Session)
			cn.session = 0
			if cmd.Op == replica.OpExpireSession {
				// Its locks are gone with it: the client must not go on
				// believing it holds them.
				cn.c.Drop("expired")
			}
		}
	case replica.OpLock, replica.OpUnlock, replica.OpRenew, replica.OpCancel:
		p := b.reqs[reqKey{r.Session, r.Request}]
		if p != nil && !p.done && b.attached[r.Session] == p.conn {
			p.done = true
			if cmd.Op == replica.OpRenew {
				// A renewal that came too late applied the expiry: the LOST
				// comes before the refusal, as on one server.
				b.events(r.Events)
				p.conn.c.Push(replyTo(nil, p.req, r))
				return
			}
			p.conn.c.Push(replyTo(nil, p.req, r))
		}
	}
	b.events(r.Events)
}

// events pushes each event to its session's connection, if attached here.
// b.mu is held.
func (b *Backend) events(evs []lockd.Event) {
	for _, ev := range evs {
		if cn := b.attached[ev.Session]; cn != nil {
			cn.c.Send(lockd.AppendEvent(nil, ev))
		}
		if ev.Kind == lockd.EventLost || ev.Kind == lockd.EventTimedOut {
			b.log.Info("lock event", "event", ev.Kind.String(), "name", ev.Name, "session", ev.Session, "token", ev.Token, "reason", ev.Reason)
		}
	}
}

// resumed handles an applied OpResumeSession. b.mu is held.
func (b *Backend) resumed(cmd replica.Command, r *replica.Result) {
	if cmd.Node == b.id {
		p := b.resumes[cmd.Request]
		if p == nil || p.done {
			return // an older resume of this node's (a replayed entry, an attempt given up)
		}
		p.done = true
		if r.Err != nil {
			p.conn.c.Push(lockd.AppendError(nil, lockd.CodeSession, fmt.Sprintf("session %d: %s", cmd.Session, resumeRefusal(r.Err))))
			return
		}
		b.attach(p.conn, cmd.Session)
		p.conn.lastReq = max(p.conn.lastReq, r.State.LastRequest)
		leader := ""
		if _, id := b.leader(); id != "" {
			leader = id
		}
		p.conn.c.Push(lockd.AppendResumed(nil, lockd.Resumed{Session: cmd.Session, SessionTTL: r.State.TTL, State: lockd.Status{Locks: r.State.Locks},
			Node: b.id, Leader: leader, LastReq: r.State.LastRequest}))
		return
	}
	if cn := b.attached[cmd.Session]; cn != nil && r.Err == nil {
		// Resumed at another node: the events go there from now on, and
		// this connection is stale.
		delete(b.attached, cmd.Session)
		cn.session = 0
		cn.c.Drop("resumed")
	}
}

func resumeRefusal(err error) string {
	switch {
	case errors.Is(err, replica.ErrNoSession):
		return "no such session (never opened, closed, or expired: its locks are gone)"
	case errors.Is(err, lockd.ErrAuth):
		return "wrong secret"
	}
	return trim(err)
}

// leader returns the leader's raft address and id as this node knows it.
func (b *Backend) leader() (string, string) {
	st := b.metrics.status()
	return st.LeaderRaftAddr, st.Leader
}

// replyTo formats the reply to req from its applied result: the table's
// refusal, or its outcome. A retried LOCK (a duplicate) is answered with
// where the session stands now: the grant it holds, its place in line, or
// that the grant or wait it once had has ended.
func replyTo(b []byte, req lockd.Request, r *replica.Result) []byte {
	if r.Err != nil {
		var te *replica.TableError
		code := lockd.CodeSyntax
		if errors.As(r.Err, &te) {
			code = te.Code
		}
		switch code {
		case replica.CodeNoSession:
			code = lockd.CodeSession
		case replica.CodeRequestOrder:
			code = lockd.CodeSyntax
		}
		return lockd.AppendError(b, code, trim(r.Err))
	}
	switch req.Verb {
	case lockd.VerbLock:
		lock := r.Lock
		if r.Duplicate && r.Current != nil {
			switch cur := r.Current; {
			case cur.Held:
				return lockd.AppendLocked(b, cur.Grant)
			case cur.Position > 0:
				return lockd.AppendQueued(b, req.Name, req.Mode, cur.Position)
			default:
				what := "queued"
				if lock.Granted {
					what = fmt.Sprintf("granted (token %d)", lock.Grant.Token)
				}
				return lockd.AppendError(b, lockd.CodeNotHeld, fmt.Sprintf("%s: request %d was %s, and that has since ended (lease expired or wait timed out)", req.Name, r.Request, what))
			}
		}
		if lock.Granted {
			return lockd.AppendLocked(b, lock.Grant)
		}
		return lockd.AppendQueued(b, req.Name, req.Mode, lock.Position)
	case lockd.VerbUnlock:
		return lockd.AppendUnlocked(b, req.Name, r.Grant.Token)
	case lockd.VerbRenew:
		return lockd.AppendRenewed(b, r.Grant)
	case lockd.VerbCancel:
		return lockd.AppendCancelled(b, req.Name)
	}
	return lockd.AppendError(b, lockd.CodeSyntax, fmt.Sprintf("%s does not change the table", req.Verb))
}
