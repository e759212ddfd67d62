package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"mplock/lockd"
	"mplock/lockd/replica"
)

// Config configures a Backend.
type Config struct {
	// Replica configures the node; its Observer and OnState are this
	// package's (set by New), and its ClientAddr must be the server's
	// listening address.
	Replica replica.Config
	// DefaultTTL is the lease of a LOCK that names no ttl= (mplock serve
	// --ttl); zero: none.
	DefaultTTL time.Duration
	// RequestTimeout bounds how long one request waits for a leader and
	// its commit before it is answered ERR unavailable (and, for a change,
	// the connection is closed). Default: a third of the session TTL, at
	// least a second: a client pings every third of the TTL, so it learns
	// of a stuck member in time to resume elsewhere.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// Backend is the replicated backend of a lockd.Server: see the package
// doc. Create it with New, give it to lockd.Config.Replicated, and Close
// it after the server's Shutdown.
type Backend struct {
	node    *replica.Node
	id      string
	ttl     time.Duration
	lockTTL time.Duration
	timeout time.Duration
	log     *slog.Logger
	ctx     context.Context // ends at Shutdown
	cancel  context.CancelFunc
	metrics *metrics

	mu       sync.Mutex
	conns    map[uint64]*conn
	attached map[lockd.SessionID]*conn // the sessions attached here, to their live connection
	opens    map[string]*pending       // by secret hash
	resumes  map[uint64]*pending       // by attempt id
	reqs     map[reqKey]*pending

	wg sync.WaitGroup
}

var _ lockd.Replicated = (*Backend)(nil)

// conn is one connection's session state. session and lastReq are
// guarded by Backend.mu (the observer attaches); the rest belongs to the
// connection's reader.
type conn struct {
	c       *lockd.Conn
	session lockd.SessionID
	lastReq uint64 // the highest request id of the session seen here
	secret  string
	client  string
	pid     int
}

// pending is a request whose reply the observer pushes when its entry is
// applied here. done is set under Backend.mu once it has.
type pending struct {
	conn *conn
	req  lockd.Request
	done bool
}

type reqKey struct {
	session lockd.SessionID
	req     uint64
}

// New starts the node (replica.NewNode) with this backend as its observer.
func New(cfg Config) (*Backend, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ttl := cfg.Replica.SessionTTL
	if ttl <= 0 {
		ttl = replica.DefaultSessionTTL
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = max(ttl/3, time.Second)
	}
	b := &Backend{id: cfg.Replica.NodeID, ttl: ttl, lockTTL: cfg.DefaultTTL, timeout: timeout, log: log,
		conns: map[uint64]*conn{}, attached: map[lockd.SessionID]*conn{}, opens: map[string]*pending{},
		resumes: map[uint64]*pending{}, reqs: map[reqKey]*pending{}, metrics: newMetrics()}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	rc := cfg.Replica
	rc.SessionTTL = ttl
	rc.Observer = b.observe
	rc.OnState = b.metrics.onState
	if rc.Logger == nil {
		rc.Logger = log
	}
	n, err := replica.NewNode(rc)
	if err != nil {
		b.cancel()
		return nil, err
	}
	b.node = n
	b.metrics.node = n
	b.wg.Add(1)
	go b.keepalives()
	return b, nil
}

// Node is the backend's raft node.
func (b *Backend) Node() *replica.Node { return b.node }

// Shutdown stops the backend's waiting (lockd.Replicated): pending
// requests are answered ERR unavailable at once. The node goes on until
// Close.
func (b *Backend) Shutdown() {
	b.cancel()
	b.wg.Wait()
}

// Close shuts the node down (handing leadership over first, within ctx).
func (b *Backend) Close(ctx context.Context) error {
	b.Shutdown()
	return b.node.Shutdown(ctx)
}

// Handle answers one request of c (lockd.Replicated).
func (b *Backend) Handle(c *lockd.Conn, req lockd.Request) string {
	cn := b.conn(c)
	switch req.Verb {
	case lockd.VerbHello:
		return b.hello(cn, req)
	case lockd.VerbPing:
		return b.ping(cn)
	case lockd.VerbQuit:
		return b.quit(cn)
	case lockd.VerbResume:
		return b.resume(cn, req)
	case lockd.VerbLock, lockd.VerbUnlock, lockd.VerbRenew, lockd.VerbCancel:
		return b.change(cn, req)
	case lockd.VerbStatus:
		b.status(cn, req)
	case lockd.VerbCheck:
		b.check(cn, req)
	case lockd.VerbMembers:
		b.members(cn)
	case lockd.VerbMemberAdd, lockd.VerbMemberRemove:
		b.member(cn, req)
	default:
		c.Push(lockd.AppendError(nil, lockd.CodeUnknown, fmt.Sprintf("%s is not served in cluster mode", req.Verb)))
	}
	return ""
}

func (b *Backend) conn(c *lockd.Conn) *conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	cn := b.conns[c.ID()]
	if cn == nil {
		cn = &conn{c: c}
		b.conns[c.ID()] = cn
	}
	return cn
}

// Closed detaches c from its session, which lives on until its TTL passes
// without keepalives (lockd.Replicated).
func (b *Backend) Closed(c *lockd.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cn := b.conns[c.ID()]
	delete(b.conns, c.ID())
	if cn != nil && cn.session != 0 && b.attached[cn.session] == cn {
		delete(b.attached, cn.session)
	}
}

// sessionOf returns the connection's session (0: none yet).
func (b *Backend) sessionOf(cn *conn) (lockd.SessionID, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return cn.session, cn.lastReq
}

// apply proposes cmd, again while its outcome is ambiguous (unchanged: the
// FSM returns the recorded result of a request id it has applied), until
// the request timeout.
func (b *Backend) apply(cmd replica.Command) (*replica.Result, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	start := time.Now()
	for {
		res, err := b.node.Apply(ctx, cmd)
		if err == nil {
			b.metrics.commit.Observe(time.Since(start).Seconds())
			return res, nil
		}
		if !errors.Is(err, replica.ErrAmbiguous) || ctx.Err() != nil {
			return nil, err
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// unavailable is the text of an ERR unavailable for err.
func unavailable(err error) string {
	switch {
	case errors.Is(err, replica.ErrNoLeader):
		return "no leader: this member knows of none (most members are down or cut off, or it is no longer a member)"
	case errors.Is(err, context.Canceled):
		return "server shutting down"
	}
	return trim(err)
}

func trim(err error) string {
	s := err.Error()
	for _, p := range []string{"replica: ", "lockd: "} {
		if len(s) > len(p) && s[:len(p)] == p {
			s = s[len(p):]
		}
	}
	return s
}

// ensureSession opens a session for a connection that has none (an nc
// user's first change, without HELLO).
func (b *Backend) ensureSession(cn *conn) (lockd.SessionID, error) {
	if s, _ := b.sessionOf(cn); s != 0 {
		return s, nil
	}
	return b.open(cn)
}

// open opens a session for cn through the log, with a fresh secret. The
// observer attaches it here when its entry is applied.
func (b *Backend) open(cn *conn) (lockd.SessionID, error) {
	secret := randomSecret()
	cmd := replica.OpenSession(secret, b.ttl, cn.client, cn.pid, cn.c.RemoteAddr(), b.id)
	p := &pending{conn: cn}
	b.mu.Lock()
	b.opens[cmd.SecretHash] = p
	b.mu.Unlock()
	res, err := b.apply(cmd)
	b.mu.Lock()
	delete(b.opens, cmd.SecretHash)
	if err == nil && !p.done {
		// Applied, but not seen here as ours (the FSM was replaced by a
		// snapshot meanwhile): attach now.
		b.attach(cn, res.Session)
	}
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	cn.secret = secret
	b.log.Debug("session opened", "session", res.Session, "client", cn.client, "addr", cn.c.RemoteAddr())
	return res.Session, nil
}

// attach makes cn the connection of session s here; a connection it had
// here before is dropped. b.mu is held.
func (b *Backend) attach(cn *conn, s lockd.SessionID) {
	if old := b.attached[s]; old != nil && old != cn {
		old.c.Drop("resumed")
		old.session = 0
	}
	b.attached[s] = cn
	cn.session = s
}

// change applies LOCK, UNLOCK, RENEW or CANCEL for cn's session. Its reply
// is pushed by the observer (deliver.go) when the entry is applied here.
// A request that cannot be known applied or not within the request timeout
// is answered ERR unavailable, and the connection ends: the client retries
// it with the same req= (after RESUME, here or elsewhere) before anything
// later, so that no later request of the session is applied before it.
func (b *Backend) change(cn *conn, req lockd.Request) string {
	s, err := b.ensureSession(cn)
	if err != nil {
		cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, "could not open a session: "+unavailable(err)))
		return ""
	}
	id, refusal := b.requestID(cn, req.Req)
	if refusal != "" {
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSyntax, refusal))
		return ""
	}
	var cmd replica.Command
	switch req.Verb {
	case lockd.VerbLock:
		r := lockd.LockRequest{Name: req.Name, Mode: req.Mode, TTL: b.lockTTL, Wait: -1}
		if req.HasTTL {
			r.TTL = req.TTL
		}
		if req.HasWait {
			r.Wait = req.Wait
		}
		cmd = replica.Lock(s, id, r)
	case lockd.VerbUnlock:
		cmd = replica.Unlock(s, id, req.Name, req.Token)
	case lockd.VerbRenew:
		var ttl time.Duration
		if req.HasTTL {
			ttl = req.TTL
		}
		cmd = replica.Renew(s, id, req.Name, req.Token, ttl)
	case lockd.VerbCancel:
		cmd = replica.Cancel(s, id, req.Name)
	}
	key := reqKey{s, id}
	p := &pending{conn: cn, req: req}
	b.mu.Lock()
	b.reqs[key] = p
	b.mu.Unlock()
	res, err := b.apply(cmd)
	b.mu.Lock()
	delete(b.reqs, key)
	done := p.done
	b.mu.Unlock()
	switch {
	case done:
		return ""
	case err == nil:
		// Applied, but this connection no longer has the session here
		// (resumed elsewhere, expired, or the FSM was replaced): say so,
		// or answer from the result.
		if errors.Is(res.Err, replica.ErrNoSession) {
			cn.c.Push(lockd.AppendError(nil, lockd.CodeSession, trim(res.Err)))
			return "session"
		}
		cn.c.Push(replyTo(nil, req, res))
		return ""
	case errors.Is(err, replica.ErrBadCommand):
		cn.c.Push(lockd.AppendError(nil, lockd.CodeSyntax, trim(err)))
		return ""
	}
	cn.c.Push(lockd.AppendError(nil, lockd.CodeUnavailable, fmt.Sprintf("%s (req=%d of session %d: outcome unknown; RESUME and retry it with the same req=)", unavailable(err), id, s)))
	return "unavailable"
}

// requestID is the session's id for a change with req=given (0: none, the
// next id), or why it is refused: an id that is not above the window of
// the session's highest here (its result would no longer be kept to
// answer it), and one at which the counter would wrap.
func (b *Backend) requestID(cn *conn, given uint64) (uint64, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	const last = math.MaxUint64 - 1 // the largest id: one more would wrap the counter
	switch {
	case given == 0 && cn.lastReq >= last:
		return 0, fmt.Sprintf("the session has used every request id up to %d; open a new session", cn.lastReq)
	case given == 0:
		cn.lastReq++
		return cn.lastReq, ""
	case given > last:
		return 0, fmt.Sprintf("req=%d: the largest request id is %d", given, uint64(last))
	case cn.lastReq >= lockd.RequestWindow && given <= cn.lastReq-lockd.RequestWindow:
		return 0, fmt.Sprintf("req=%d: not among the session's last %d request ids (%d is the highest seen), whose results are kept for retries; request ids must rise",
			given, lockd.RequestWindow, cn.lastReq)
	case given > cn.lastReq:
		cn.lastReq = given
	}
	return given, ""
}

func randomSecret() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

func randomID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])>>1 | 1
}

// Stats are the table's totals in this node's replica (lockd.Replicated).
func (b *Backend) Stats() lockd.TableStats {
	var st lockd.TableStats
	b.node.ReadLocal(func(v replica.View) error { st = v.Stats(); return nil })
	return st
}

// Tokens: every token from now on is above the last one this replica has
// seen handed out (lockd.Replicated).
func (b *Backend) Tokens() (string, lockd.Token) {
	var t lockd.Token
	b.node.ReadLocal(func(v replica.View) error { t = v.LastToken(); return nil })
	return "raft", t
}

// Status is a page of this replica's table (lockd.Replicated).
func (b *Backend) Status(q lockd.StatusQuery) lockd.Status {
	var st lockd.Status
	b.node.ReadLocal(func(v replica.View) error { st = v.StatusPage(q); return nil })
	return st
}
