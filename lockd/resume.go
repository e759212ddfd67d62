package lockd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// A cluster client's side of failover (see Client): keepalives confirmed
// by the leader, and, when its connection is lost, RESUME at another
// member, the unanswered requests sent again, and its leases and waits
// reconciled with the session's state.

// RequestWindow is how many of a cluster session's latest changes (LOCK,
// UNLOCK, RENEW, CANCEL, each with its req=) the cluster keeps the results
// of, to answer a retry with the recorded result instead of applying it
// twice (lockd/replica's FSM). A retry of an older one cannot be answered:
// its outcome would be lost. So a client keeps at most this many changes
// of one session unanswered at a time (Client does, blocking the next),
// and a server refuses a req= that is RequestWindow or more below the
// highest it has seen of the session.
const RequestWindow = 8

// clusterKeepalive pings every sixth of the session TTL (and every k, if
// shorter), so that the session's deadline (the send time of the last
// confirmed PING plus the TTL) stays well ahead; a PING unanswered for a
// third of the TTL means the member is gone or stuck: the client resumes
// elsewhere.
func (c *Client) clusterKeepalive(k time.Duration) {
	defer c.wg.Done()
	every := c.sessionTTL / 6
	if k > 0 {
		every = min(every, k)
	}
	t := time.NewTicker(max(every, minTick))
	defer t.Stop()
	var last *call
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		conn, reconnecting := c.conn, c.reconnecting
		c.mu.Unlock()
		if reconnecting {
			continue
		}
		if last != nil {
			select {
			case <-last.done:
			default:
				if time.Since(last.sent) > c.sessionTTL/3 {
					c.connLost(conn, fmt.Errorf("%w: no answer to PING within %v", ErrConnLost, c.sessionTTL/3))
					last = nil
				}
				continue
			}
		}
		cl, err := c.send(Request{Verb: VerbPing}, func(cl *call) {
			if cl.reply.kind == replyOK {
				c.mu.Lock()
				if cl.sent.After(c.pinged) {
					c.pinged = cl.sent
				}
				c.mu.Unlock()
			}
		})
		if err != nil {
			return
		}
		last = cl
	}
}

// resumeTry bounds one attempt to resume at one member.
const resumeTry = 2 * time.Second

// reconnect resumes the session at the members in turn (the others first,
// the one just lost last), until one takes it, the session is known lost,
// or its deadline passes.
func (c *Client) reconnect(cause error) {
	defer c.wg.Done()
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		deadline := c.sessionDeadline()
		idx := (c.cur + attempt) % len(c.servers)
		addr := c.servers[idx]
		c.mu.Unlock()
		if !time.Now().Before(deadline) {
			c.fail(fmt.Errorf("%w: could not resume the session at any of %d servers within its TTL (%v) after %v",
				ErrSessionLost, len(c.servers), c.sessionTTL, cause))
			return
		}
		until := time.Now().Add(resumeTry)
		if deadline.Before(until) {
			until = deadline
		}
		ctx, cancel := context.WithDeadline(context.Background(), until)
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		conn, br, data, final, sent, err := c.resumeAt(ctx, addr)
		cancel()
		if errors.Is(err, ErrSessionLost) {
			c.fail(err)
			return
		}
		if err == nil {
			c.resumed(conn, br, idx, data, final, sent, false)
			return
		}
		select {
		case <-c.done:
			return
		case <-time.After(backoff):
			backoff = min(2*backoff, 500*time.Millisecond)
		}
	}
}

// resumeAt connects to addr, presents the secret, and RESUMEs the session:
// it returns the connection, its reader (events may follow the reply),
// RESUME's data lines and final line, and RESUME's send time.
func (c *Client) resumeAt(ctx context.Context, addr string) (net.Conn, *bufio.Reader, []string, reply, time.Time, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, nil, reply{}, time.Time{}, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var req []byte
	if c.opts.Secret != "" {
		req = append(Request{Verb: VerbAuth, Secret: c.opts.Secret}.AppendTo(req), '\n')
	}
	req = append(Request{Verb: VerbResume, Session: c.session, Secret: c.secret}.AppendTo(req), '\n')
	sent := time.Now()
	conn.SetWriteDeadline(sent.Add(writeTimeout))
	if _, err := conn.Write(req); err != nil {
		conn.Close()
		return nil, nil, nil, reply{}, time.Time{}, err
	}
	br := bufio.NewReaderSize(conn, 16<<10)
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			conn.Close()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, nil, nil, reply{}, time.Time{}, err
		}
		r := parseReply(line)
		switch {
		case r.kind == replyData:
			data = append(data, line)
		case r.kind == replyOK && r.word == "AUTH":
		case r.kind == replyOK && r.word == "RESUMED":
			return conn, br, data, r, sent, nil
		case r.kind == replyErr && Code(r.word) == CodeSession:
			conn.Close()
			return nil, nil, nil, reply{}, time.Time{}, fmt.Errorf("%w: %s refused RESUME: %s", ErrSessionLost, addr, r.text)
		case r.kind == replyErr:
			conn.Close()
			return nil, nil, nil, reply{}, time.Time{}, fmt.Errorf("%s: %w", addr, r.err())
		}
	}
}

// resumed makes conn the client's connection: it reconciles the leases and
// the waits already answered with the session's state, sends again every
// request that had no reply (same lines, same req=), and only then starts
// reading, so that what the state settles comes before the events of the
// new connection. The state lists the session's own holds and waits: a
// lease it does not list has ended; a hold or a wait it lists that no
// Lease, Lock or request in flight accounts for (a reply lost with a
// connection, a retry refused) is released or cancelled, so that the
// session holds nothing its client does not know of.
//
// adopt (Options.Resume) takes the state's holds as the client's own: the
// caller makes them leases.
func (c *Client) resumed(conn net.Conn, br *bufio.Reader, idx int, data []string, final reply, sent time.Time, adopt bool) {
	st, _ := parseStatus(data, reply{})
	held := map[string]HolderStatus{}
	waiting := map[string]bool{}
	for _, l := range st.Locks {
		for _, h := range l.Holders {
			held[l.Name] = h
		}
		if len(l.Waiters) > 0 {
			waiting[l.Name] = true
		}
	}
	type grant struct {
		w *lockWait
		h HolderStatus
	}
	var ended []*Lease
	var grants []grant
	var gone []*lockWait
	var strayHeld []Grant      // held, by no Lease or Lock of the client
	var strayWaits []*lockWait // waited for, by no Lock: placeholders, withdrawn below

	c.wmu.Lock()
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		c.wmu.Unlock()
		conn.Close()
		return
	}
	c.conn, c.cur, c.reconnecting = conn, idx, false
	if sent.After(c.pinged) {
		c.pinged = sent
	}
	c.node, c.leader = final.get("node"), dashless(final.get("leader"))
	calls := append(c.resend, c.pending...)
	c.resend, c.pending = nil, calls
	// UNLOCKs in flight, by name and token (0: the name's, whatever its
	// token).
	type unlock struct {
		name  string
		token Token
	}
	unlocking := map[unlock]bool{}
	locking := map[string]bool{}
	cancelling := map[string]bool{}
	for _, cl := range calls {
		switch cl.req.Verb {
		case VerbUnlock:
			unlocking[unlock{cl.req.Name, cl.req.Token}] = true
		case VerbLock:
			locking[cl.req.Name] = true
		case VerbCancel:
			cancelling[cl.req.Name] = true
		}
	}
	for name, h := range held {
		l, w := c.leases[name], c.waits[name]
		switch {
		case adopt, l != nil && l.Token == h.Token, w != nil && w.queued, locking[name],
			unlocking[unlock{name, 0}], unlocking[unlock{name, h.Token}]:
			// Known: a lease, a Lock to be granted below or by its
			// retried LOCK's answer, or an UNLOCK in flight.
		default:
			strayHeld = append(strayHeld, Grant{Name: name, Token: h.Token})
		}
	}
	for name := range waiting {
		if _, isHeld := held[name]; isHeld || c.waits[name] != nil || locking[name] || cancelling[name] {
			continue
		}
		// A placeholder wait: a user's Lock of the name is refused
		// (ErrHeld) until it is withdrawn, and a GRANTED that crosses
		// the CANCEL is released by withdraw.
		w := &lockWait{name: name, ch: make(chan lockOutcome, 2), queued: true}
		c.waits[name] = w
		strayWaits = append(strayWaits, w)
	}
	for name, l := range c.leases {
		if h, ok := held[name]; ok && h.Token == l.Token || unlocking[unlock{name, l.Token}] {
			continue // still held, or its UNLOCK's answer settles it
		}
		ended = append(ended, l)
	}
	for name, w := range c.waits {
		switch h, ok := held[name]; {
		case locking[name]:
			// The LOCK had no answer: it goes again, and its answer (the
			// cluster's, for a retry: where the session stands now) settles it.
		case !w.queued:
			// Its LOCK is not sent yet (it waits for a slot).
		case ok:
			grants = append(grants, grant{w, h})
		case !waiting[name]:
			gone = append(gone, w)
		}
	}
	c.mu.Unlock()
	var buf []byte
	for _, cl := range calls {
		buf = append(buf, cl.line...)
	}
	var werr error
	if len(buf) > 0 {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, werr = conn.Write(buf)
	}
	c.wmu.Unlock()

	for _, l := range ended {
		l.end(fmt.Errorf("%w: %s (token %d) was no longer held by the session when the client resumed it at %s",
			ErrLeaseExpired, l.Name, l.Token, final.get("node")))
	}
	for _, g := range grants {
		r := parseReply(fmt.Sprintf("* GRANTED %s %s token=%d ttl=%s waited=0s", g.w.name, g.h.Mode, g.h.Token, g.h.TTL))
		g.w.ch <- lockOutcome{lease: c.granted(g.w, &r, time.Time{}, true)}
	}
	for _, w := range gone {
		c.dropWait(w)
		err := ErrLeaseExpired
		if w.bounded {
			err = ErrTimeout
		}
		w.ch <- lockOutcome{err: fmt.Errorf("%w: the wait for %s had ended (granted and lost, or timed out) when the client resumed its session", err, w.name)}
	}
	c.wg.Add(1)
	go c.read(conn, br)
	if werr != nil {
		c.connLost(conn, fmt.Errorf("%w: %v", ErrConnLost, werr))
	}
	if len(strayHeld) > 0 || len(strayWaits) > 0 {
		// Not from here: a change waits for a slot, which the reader
		// frees.
		c.wg.Add(1)
		go c.releaseStrays(strayHeld, strayWaits, final.get("node"))
	}
}

// releaseStrays releases the grants and withdraws the waits of the
// session that the client did not know of when it resumed it: each grant
// by its token (never a later one), each wait with CANCEL (a grant that
// crosses it is released too).
func (c *Client) releaseStrays(held []Grant, waits []*lockWait, node string) {
	defer c.wg.Done()
	for _, h := range held {
		if _, err := c.sendChange(context.Background(), Request{Verb: VerbUnlock, Name: h.Name, Token: h.Token}, nil); err != nil {
			return // the client has ended, and the session's locks with it
		}
	}
	for _, w := range waits {
		select {
		case <-c.done:
			return
		default:
		}
		c.withdraw(w, fmt.Errorf("%w: %s was granted to a wait the client did not know of when it resumed its session at %s; released",
			ErrLeaseExpired, w.name, node))
	}
}

// takeOver makes the client the holder of an existing cluster session
// (Options.Resume): RESUME at addr, and the session's locks as leases.
func (c *Client) takeOver(ctx context.Context, addr string) error {
	c.session, c.secret = c.opts.Resume.Session, c.opts.Resume.Secret
	conn, br, data, final, sent, err := c.resumeAt(ctx, addr)
	if err != nil {
		return fmt.Errorf("lockd: %s: %w", addr, err)
	}
	c.sessionTTL = final.dur("session-ttl")
	if c.sessionTTL <= 0 {
		conn.Close()
		return fmt.Errorf("%w: RESUME's answer without session-ttl=: %q", ErrProtocol, final.String())
	}
	c.nextReq = final.uint("last-req")
	c.conn, c.pinged = conn, sent
	c.cluster.Store(true)
	c.resumed(conn, br, c.cur, data, final, sent, true)
	// The session's locks become leases of this client, each to be
	// renewed at once (its grant's time is not known here).
	st, _ := parseStatus(data, reply{})
	for _, l := range st.Locks {
		for _, h := range l.Holders {
			w := &lockWait{name: l.Name, ch: make(chan lockOutcome, 1)}
			r := parseReply(fmt.Sprintf("* GRANTED %s %s token=%d ttl=%s waited=0s", l.Name, h.Mode, h.Token, h.TTL))
			c.granted(w, &r, time.Time{}, true)
		}
	}
	return nil
}

// Lease returns the lease this client holds on name, if any: after Dial
// with Options.Resume, the locks of the session taken over.
func (c *Client) Lease(name string) (*Lease, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.leases[name]
	return l, ok
}

// Check asks for the holders of name at a consistency ("" for the
// server's default): the seed's CHECK. The answer is information, never
// proof of ownership: only a fencing token is. Errors: ErrStale (a stale
// read refused), ErrUnavailable (no leader in time), ErrBadName.
func (c *Client) Check(ctx context.Context, name string, consistency Consistency) (CheckResult, error) {
	if err := ValidName(name); err != nil {
		return CheckResult{}, err
	}
	r, data, err := c.roundTrip(ctx, Request{Verb: VerbCheck, Name: name, Consistency: consistency})
	if err != nil {
		return CheckResult{}, err
	}
	st, err := parseStatus(data, reply{})
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{Name: name, Index: r.uint("index"), Consistency: Consistency(r.get("consistency")),
		Node: dashless(r.get("node")), Leader: dashless(r.get("leader")), Contact: -1}
	if r.get("contact") != "" {
		res.Contact = r.dur("contact")
	}
	for _, l := range st.Locks {
		res.Holders = append(res.Holders, l.Holders...)
	}
	return res, nil
}

// Members asks a cluster member for every member's state (MEMBERS).
func (c *Client) Members(ctx context.Context) (Members, error) {
	r, data, err := c.roundTrip(ctx, Request{Verb: VerbMembers})
	if err != nil {
		return Members{}, err
	}
	m := Members{Leader: dashless(r.get("leader")), Term: r.uint("term")}
	for _, line := range data {
		d := parseReply(line)
		if d.word != "MEMBER" {
			return Members{}, fmt.Errorf("%w: MEMBERS line %q", ErrProtocol, strings.TrimSpace(line))
		}
		s := MemberStatus{ID: d.arg(0), RaftAddr: dashless(d.get("raft")), ClientAddr: dashless(d.get("client")), Role: d.get("role"),
			Voter: d.get("voter") == "true", Term: d.uint("term"), Commit: d.uint("commit"), Applied: d.uint("applied"),
			Lag: d.uint("lag"), Contact: -1}
		if v := d.get("contact"); v != "-" && v != "" {
			s.Contact = d.dur("contact")
		}
		m.Members = append(m.Members, s)
	}
	return m, nil
}

// AddMember asks the cluster to add node id, reachable at raftAddr, as a
// voter (MEMBER ADD; the server's --token-file secret guards it).
func (c *Client) AddMember(ctx context.Context, id, raftAddr string) error {
	_, _, err := c.roundTrip(ctx, Request{Verb: VerbMemberAdd, Name: id, Addr: raftAddr})
	return err
}

// RemoveMember asks the cluster to remove node id (MEMBER REMOVE).
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	_, _, err := c.roundTrip(ctx, Request{Verb: VerbMemberRemove, Name: id})
	return err
}
