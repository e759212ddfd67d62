package cluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	"mplock/lockd"
	"mplock/lockd/replica"
)

// hello opens the connection's session (a log entry) and answers with the
// server's fields and the cluster's: the secret to RESUME it with, its
// TTL, this node, the leader, and every member's client address. A
// second HELLO answers the same without opening another.
func (b *Backend) hello(cn *conn, req lockd.Request) string {
	s, _ := b.sessionOf(cn)
	if s == 0 {
		cn.client, cn.pid = req.Name, req.PID
		var err error
		if s, err = b.open(cn); err != nil {
			cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, "could not open a session: "+unavailable(err)))
			return ""
		}
	}
	kind, above := b.Tokens()
	st := b.metrics.status()
	var members []string
	for _, m := range st.Members {
		if m.ClientAddr != "" {
			members = append(members, m.ID+"@"+m.ClientAddr)
		}
	}
	line := cn.c.AppendHello(nil, s, kind, above)
	cn.c.Push(lockd.AppendClusterHello(line, lockd.ClusterHello{Secret: cn.secret, SessionTTL: b.ttl, Node: b.id,
		Leader: st.Leader, Members: members}))
	return ""
}

// ping is a keepalive of the connection's session, answered OK PONG only
// once the leader has accepted it: a client that counts its session's
// life from the send time of its last confirmed PING counts safely.
func (b *Backend) ping(cn *conn) string {
	s, _ := b.sessionOf(cn)
	if s == 0 {
		cn.c.Push([]byte("OK PONG\n"))
		return ""
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	unknown, err := b.node.Keepalive(ctx, []lockd.SessionID{s})
	switch {
	case err != nil:
		cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, "keepalive not confirmed: "+unavailable(err)))
	case slices.Contains(unknown, s):
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSession, fmt.Sprintf("session %d has expired (its locks are gone)", s)))
		return "session"
	default:
		cn.c.Push([]byte("OK PONG\n"))
	}
	return ""
}

// quit closes the session (its locks are released) and ends the
// connection.
func (b *Backend) quit(cn *conn) string {
	s, last := b.sessionOf(cn)
	if s != 0 {
		if _, err := b.apply(replica.CloseSession(s, last+1)); err != nil {
			b.log.Warn("QUIT: the session could not be closed; it expires after its TTL", "session", s, "err", err)
		}
	}
	cn.c.Push([]byte("OK BYE\n"))
	return "quit"
}

// resume re-attaches a session at this node (RESUME <id> <secret>): the
// observer attaches it at the apply of the resume and answers with the
// session's whole state.
func (b *Backend) resume(cn *conn, req lockd.Request) string {
	if s, _ := b.sessionOf(cn); s != 0 {
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSession, fmt.Sprintf("this connection has session %d already; RESUME on a new connection", s)))
		return ""
	}
	// A wrong secret for a session this replica knows is refused here,
	// without a log entry.
	wrong := false
	b.node.ReadLocal(func(v replica.View) error {
		if _, ok := v.Session(req.Session); ok {
			wrong = !v.CheckSecret(req.Session, req.Secret)
		}
		return nil
	})
	if wrong {
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSession, fmt.Sprintf("session %d: %s", req.Session, resumeRefusal(lockd.ErrAuth))))
		return ""
	}
	attempt := randomID()
	p := &pending{conn: cn, req: req}
	b.mu.Lock()
	b.resumes[attempt] = p
	b.mu.Unlock()
	res, err := b.apply(replica.ResumeAttempt(req.Session, req.Secret, b.id, attempt))
	b.mu.Lock()
	delete(b.resumes, attempt)
	done := p.done
	b.mu.Unlock()
	switch {
	case done:
		if s, _ := b.sessionOf(cn); s != 0 {
			cn.secret = req.Secret
			b.log.Debug("session resumed", "session", s, "addr", cn.c.RemoteAddr())
		}
	case err != nil:
		cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, "resume: "+unavailable(err)))
	case res.Err != nil:
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSession, fmt.Sprintf("session %d: %s", req.Session, resumeRefusal(res.Err))))
	default:
		cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, "resume applied but not seen here; RESUME again"))
	}
	return ""
}

// keepalives renews, every third of the session TTL, the sessions of the
// connections attached here (batched, one exchange with the leader): an
// nc user who holds a lock need not PING. A session the leader no longer
// knows has expired: its connection is dropped.
func (b *Backend) keepalives() {
	defer b.wg.Done()
	t := time.NewTicker(b.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		ids := make([]lockd.SessionID, 0, len(b.attached))
		for s := range b.attached {
			ids = append(ids, s)
		}
		b.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, b.ttl/3)
		unknown, err := b.node.Keepalive(ctx, ids)
		cancel()
		if err != nil {
			if b.ctx.Err() == nil {
				b.log.Warn("keepalive of this node's sessions not confirmed; will retry", "sessions", len(ids), "err", err)
			}
			continue
		}
		b.mu.Lock()
		for _, s := range unknown {
			if cn := b.attached[s]; cn != nil {
				delete(b.attached, s)
				cn.session = 0
				cn.c.Drop("expired")
			}
		}
		b.mu.Unlock()
	}
}
