package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"mplock/lockd"
)

// DialCluster is the ClusterDialer of mplock's replicated lock service
// (`mplock serve` in cluster mode), through the Go client (package
// lockd): one cluster session, named client, opened at a random member of
// servers (client addresses), presenting secret (the members'
// --token-file; "" for none) on every connection.
//
// Each operation goes to the member the caller chose, as the seed's
// clients talk to any server:
//
//   - preempt and release move the session there first, unless it is
//     already there: the client at the old member is detached (its
//     session and locks live on) and the session is RESUMEd at the chosen
//     member (a log entry). A follower forwards the LOCK or UNLOCK that
//     follows to the leader and answers once its own table applied it.
//     When the chosen member does not take the session within a couple of
//     seconds (killed, stopped, cut off), the others are tried in turn;
//     the reply says where it was answered. Preempt is a LOCK that does
//     not wait (lockd.Client.TryLock), release an UNLOCK of the lease.
//   - check asks the chosen member through a session of its own there (a
//     reader: it holds nothing), at the consistency asked; a stale check
//     is answered from that member's own table, with the time since it
//     last heard from its leader.
//
// Once an operation's outcome is unknown the session stays where it is:
// a request of it may still be in flight, and requests of one session are
// applied in order only on one connection. The Go client itself resumes
// the session at another member when its member is lost (the note
// callback hears of it, as a ClusterNoteSession), and sends again what had
// no answer, so an outcome stays unknown only when the session is lost
// with a request unanswered.
//
// Errors, as ClusterService says: ErrNotApplied for what surely took no
// effect (nothing sent, a read that failed, no member took the session),
// ErrSessionLost for a session that is gone (with ErrNotApplied when the
// request was not sent), anything else an unknown outcome (ctx ended
// while a change waited for its answer).
func DialCluster(ctx context.Context, servers []string, client, secret string, note func(ClusterNote)) (ClusterService, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("%w: no server", ErrNotApplied)
	}
	s := &clusterService{servers: servers, client: client, secret: secret, note: note, readers: map[string]*lockd.Client{}}
	var errs []error
	for _, addr := range s.order(servers[rand.IntN(len(servers))]) {
		c, err := s.dialTry(ctx, addr, lockd.Options{Client: client})
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		info, ok := c.Cluster()
		if !ok {
			c.Close()
			return nil, fmt.Errorf("worker: %s is a single lock server, not a cluster member (mplock serve --initial-cluster)", addr)
		}
		s.c, s.addr, s.node = c, addr, info.Node
		s.cred = lockd.SessionCredential{Session: c.Session(), Secret: info.Secret}
		return s, nil
	}
	return nil, fmt.Errorf("%w: no member opened a session: %w", ErrNotApplied, errors.Join(errs...))
}

// LockdDialer is DialCluster presenting secret, as a ClusterDialer.
func LockdDialer(secret string) ClusterDialer {
	return func(ctx context.Context, servers []string, client string, note func(ClusterNote)) (ClusterService, error) {
		return DialCluster(ctx, servers, client, secret, note)
	}
}

// resumeTry bounds one attempt to open or move the session at one member:
// a stopped member accepts connections and answers nothing.
const resumeTry = 2 * time.Second

// checkTimeout bounds a check: a read that takes longer is dropped.
const checkTimeout = 3 * time.Second

type clusterService struct {
	servers []string
	client  string
	secret  string // presented with AUTH
	note    func(ClusterNote)

	c    *lockd.Client // the session's client; nil after a move that found no member
	addr string        // the member c was dialled at
	node string        // the member the session was last seen attached to
	cred lockd.SessionCredential
	// pinned: an outcome is unknown, a request may be in flight: the
	// session must not move.
	pinned  bool
	readers map[string]*lockd.Client // checks, by member address
}

var _ ClusterService = (*clusterService)(nil)

// dialTry dials the member at, within resumeTry. The client gets every
// member in its list, at first: where it resumes the session should at
// fail later (HELLO names the members too; RESUME does not).
func (s *clusterService) dialTry(ctx context.Context, at string, opts lockd.Options) (*lockd.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, resumeTry)
	defer cancel()
	opts.Secret = s.secret
	return lockd.Dial(ctx, strings.Join(s.order(at), ","), opts)
}

// order is the members to try for at: at, then the others in turn.
func (s *clusterService) order(at string) []string {
	i := max(slices.Index(s.servers, at), 0)
	return append(slices.Clone(s.servers[i:]), s.servers[:i]...)
}

// lost reports the session's end as the client saw it, if it ended.
func (s *clusterService) lost() error {
	if s.c == nil {
		return nil
	}
	if err := s.c.Err(); err != nil {
		return err
	}
	return nil
}

// moveTo attaches the session at the member at (or, failing that, at
// another), unless it is there or pinned.
func (s *clusterService) moveTo(ctx context.Context, at string) error {
	if err := s.lost(); err != nil {
		return s.sessionLost(ctx, err, true)
	}
	if s.c != nil && (s.addr == at || s.pinned) {
		return nil
	}
	if s.c != nil {
		s.c.Detach()
		s.c = nil
	}
	var errs []error
	for _, addr := range s.order(at) {
		c, err := s.dialTry(ctx, addr, lockd.Options{Client: s.client, Resume: s.cred})
		switch {
		case err == nil:
			s.c, s.addr = c, addr
			if info, ok := c.Cluster(); ok {
				s.node = info.Node
			}
			return nil
		case errors.Is(err, lockd.ErrSessionLost):
			return s.sessionLost(ctx, err, true)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: no member took the session: %w", ErrNotApplied, errors.Join(errs...))
}

// afterOp notes a resume the Go client made on its own during the
// operation (its member was lost), and gives the reply's where: the
// member the session is attached to. A change's reply does not say who
// leads (Reply.Role and Leader stay empty; the coordinator knows better
// than the leader= of the session's last RESUME).
func (s *clusterService) afterOp() Reply {
	info, _ := s.c.Cluster()
	if info.Node != "" && info.Node != s.node && s.note != nil {
		s.note(ClusterNote{Kind: ClusterNoteSession, Client: s.client, Server: info.Node, Text: s.node + " was lost"})
	}
	if info.Node != "" {
		s.node = info.Node
	}
	return Reply{Node: info.Node}
}

func role(node, leader string) string {
	switch {
	case leader == "":
		return ""
	case node == leader:
		return "leader"
	}
	return "follower"
}

// sessionLost ends the session for sure (see endSession) and wraps why
// it was lost; notSent adds ErrNotApplied.
func (s *clusterService) sessionLost(ctx context.Context, err error, notSent bool) error {
	s.endSession(ctx)
	if notSent {
		return fmt.Errorf("%w: %w: %v", ErrSessionLost, ErrNotApplied, err)
	}
	return fmt.Errorf("%w: %v", ErrSessionLost, err)
}

// endSession makes sure the session is over before the client reports it
// lost, so that its locks were surely released by then. The Go client
// gives a session up by its own clock (no PING confirmed within the TTL,
// as after the process was stopped), which may be before the cluster
// expires it. So it RESUMEs the session, at one member after another,
// until the cluster says it is gone (the refusal of an unknown or expired
// session is a log entry's result: every member agrees); a session that
// is still there is taken, and ended with QUIT, and asked about again
// (Close does not say whether QUIT was answered). It gives up when ctx
// ends; the session then ends at the latest a TTL after its last
// connection closed.
func (s *clusterService) endSession(ctx context.Context) {
	if s.c != nil {
		s.c.Detach()
		s.c = nil
	}
	for i := 0; ctx.Err() == nil; i++ {
		at := s.servers[i%len(s.servers)]
		c, err := s.dialTry(ctx, at, lockd.Options{Client: s.client, Resume: s.cred})
		switch {
		case err == nil:
			c.Close()
			continue
		case errors.Is(err, lockd.ErrSessionLost):
			return
		}
		if i%len(s.servers) == len(s.servers)-1 {
			// No member answered either way: a pause before the next round.
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
}

// changeFailed maps the error of a change that was sent: the session's
// end, or an unknown outcome (which pins the session).
func (s *clusterService) changeFailed(ctx context.Context, err error) error {
	if lost := s.lost(); lost != nil || errors.Is(err, lockd.ErrSessionLost) {
		if lost == nil {
			lost = err
		}
		return s.sessionLost(ctx, lost, false)
	}
	s.pinned = true
	return err
}

func (s *clusterService) Preempt(ctx context.Context, name, at string) (Reply, error) {
	if err := s.moveTo(ctx, at); err != nil {
		return Reply{}, err
	}
	l, err := s.c.TryLock(ctx, name, lockd.Exclusive)
	switch {
	case err == nil:
		r := s.afterOp()
		r.OK, r.Token = true, uint64(l.Token)
		return r, nil
	case errors.Is(err, lockd.ErrLocked):
		return s.afterOp(), nil
	case errors.Is(err, lockd.ErrHeld), errors.Is(err, lockd.ErrBadName), errors.Is(err, lockd.ErrLimit):
		// Refused by the client or the server before the log.
		return s.afterOp(), fmt.Errorf("%w: %v", ErrNotApplied, err)
	}
	return Reply{Node: s.node}, s.changeFailed(ctx, err)
}

func (s *clusterService) Release(ctx context.Context, name, at string) (Reply, error) {
	if err := s.moveTo(ctx, at); err != nil {
		return Reply{}, err
	}
	l, ok := s.c.Lease(name)
	if !ok || l.Err() != nil {
		// Nothing is sent: the session holds no lease of name (as it
		// stood when the session was last resumed).
		return s.afterOp(), fmt.Errorf("%w: %w: %s", ErrNotApplied, ErrNoLease, name)
	}
	err := l.Unlock(ctx)
	switch {
	case err == nil:
		r := s.afterOp()
		r.OK = true
		return r, nil
	case errors.Is(err, lockd.ErrNotHolder):
		return s.afterOp(), nil
	}
	return Reply{Node: s.node}, s.changeFailed(ctx, err)
}

// reader is the check session at the member at, dialled on first use and
// again after it ended.
func (s *clusterService) reader(ctx context.Context, at string) (*lockd.Client, error) {
	if c := s.readers[at]; c != nil {
		if c.Err() == nil {
			return c, nil
		}
		c.Close()
		delete(s.readers, at)
	}
	c, err := s.dialTry(ctx, at, lockd.Options{Client: s.client + ".check"})
	if err != nil {
		return nil, err
	}
	s.readers[at] = c
	return c, nil
}

func (s *clusterService) Check(ctx context.Context, name, at string, cons Consistency) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c, err := s.reader(ctx, at)
	if err != nil {
		return Reply{}, fmt.Errorf("%w: %v", ErrNotApplied, err)
	}
	res, err := c.Check(ctx, name, lockd.Consistency(cons))
	if err != nil {
		// A read that failed changed nothing.
		return Reply{}, fmt.Errorf("%w: %v", ErrNotApplied, err)
	}
	r := Reply{Node: res.Node, Leader: res.Leader, Role: role(res.Node, res.Leader), Consistency: Consistency(res.Consistency),
		Index: res.Index}
	if r.Consistency == "" {
		r.Consistency = cons
	}
	if res.Contact > 0 {
		r.Contact = res.Contact
	}
	if len(res.Holders) > 0 {
		r.Owner = res.Holders[0].Client
	}
	return r, nil
}

// Close ends the session (QUIT: its locks are released) and the readers.
func (s *clusterService) Close() error {
	for at, c := range s.readers {
		c.Close()
		delete(s.readers, at)
	}
	if s.c != nil {
		s.c.Close()
	}
	return nil
}
