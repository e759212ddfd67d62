package lockd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero fields.
const (
	DefaultIdleTimeout        = 2 * time.Minute
	DefaultWriteTimeout       = 10 * time.Second
	DefaultMaxSessions        = 4096
	DefaultMaxUnauthenticated = 64
	DefaultAuthTimeout        = 5 * time.Second
	// shutdownGrace is how long Shutdown lets clients read their last
	// lines and hang up before it closes their connections itself: a
	// client that does not read (its socket full) or does not hang up
	// holds up a shutdown this long at most.
	shutdownGrace = 2 * time.Second
	// DefaultAuthFailDelay is how long a wrong AUTH waits for its
	// answer: one connection guesses at most one secret a second (and
	// AuthRate bounds them all together).
	DefaultAuthFailDelay = time.Second
)

// Config configures a Server. The zero value serves with the defaults: no
// lease, no secret, tokens numbered from the start time, no metrics, no
// logs.
type Config struct {
	// DefaultTTL is the lease given to a LOCK that names no ttl=; zero
	// means no lease. Like ttl=, it must pass ValidTTL.
	DefaultTTL time.Duration
	// IdleTimeout closes a session that sends nothing for this long (its
	// locks are released), so that a vanished peer does not hold locks for
	// ever. Zero means DefaultIdleTimeout, negative means never. The Go
	// client pings well within it.
	IdleTimeout time.Duration
	// WriteTimeout closes a session whose output waits this long for the
	// client to read it (DefaultWriteTimeout when zero). Only that session
	// waits: no other session's replies, grants or expiries depend on it.
	WriteTimeout time.Duration
	// MaxPendingOutput bounds the output waiting to be written to one
	// session (DefaultMaxPending when zero), the kernel's send buffer
	// included (its socket's SO_SNDBUF is fixed at 128 KiB, which Linux
	// counts as 256 KiB; sendBuffer); a session that reaches it is
	// closed. Past 64 KiB a session's own requests are not read until its
	// output drains.
	MaxPendingOutput int
	// MaxLine is the longest request line (DefaultMaxLine when zero).
	MaxLine int
	// MaxLocksPerSession bounds held plus queued locks of one session.
	MaxLocksPerSession int
	// MaxSessions bounds concurrent sessions; more are refused with ERR
	// busy. With a Secret, a connection becomes a session when it
	// authenticates, and counts against MaxUnauthenticated before.
	MaxSessions int
	// Secret, when set, must be presented with AUTH before any request
	// that reads or changes locks.
	Secret string
	// PeerSecret, when set (a cluster member's --peer-token-file), is
	// accepted by AUTH as well as Secret, and only a connection that
	// presented it may change the membership (Conn.Member): the clients'
	// secret then lets them lock, not act as members. It needs Secret.
	PeerSecret string
	// MaxUnauthenticated bounds the connections that have not yet
	// presented the Secret (DefaultMaxUnauthenticated when zero): when
	// another arrives, one of them is closed to make room (the oldest of
	// those that have sent nothing, then of those whose peer has hung up
	// before their secret was compared, then of those that sent something
	// other than AUTH), never one that is there to hear the answer to its
	// AUTH or to a line not yet answered; when every one is, the newcomer
	// is refused. A wrong secret's connection waits out AuthFailDelay
	// outside this bound, in another (Server.failLocked). So no number of
	// connections that merely exist, or guess and hang up, keeps out a
	// client that knows the secret.
	MaxUnauthenticated int
	// AuthRate bounds the secrets the server compares a second, all
	// connections together, once AuthBurst of them are spent
	// (DefaultAuthRate and DefaultAuthBurst when zero), for a Secret
	// shorter than StrongSecret (a longer one is compared at once); a
	// right secret does not count. An AUTH waits for its turn, or is refused (ERR busy)
	// when its turn would come after its AuthTimeout.
	AuthRate  float64
	AuthBurst int
	// AuthTimeout closes a connection that has not authenticated this
	// long after it was accepted (DefaultAuthTimeout when zero; never
	// longer than IdleTimeout).
	AuthTimeout time.Duration
	// AuthFailDelay is how long a wrong AUTH waits for its answer
	// (DefaultAuthFailDelay when zero): each connection guesses at most
	// one secret in that time.
	AuthFailDelay time.Duration
	// Tokens numbers the fencing tokens across restarts; nil means
	// EpochTokens (from the time NewServer is called).
	Tokens TokenStore
	// Debug enables the DEBUG request (a garbage collection, at most one
	// a second, then the server's heap and table sizes): for tests and
	// measurements.
	Debug bool
	// Version is reported in HELLO replies.
	Version string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the server's Prometheus metrics.
	Registerer prometheus.Registerer
	// Replicated, when set, is the lock table (a cluster's replicated
	// one) in place of this process's own: Tokens, DefaultTTL and
	// MaxLocksPerSession are then the backend's business.
	Replicated Replicated
}

// Server serves the lock table over the line protocol. Its methods are safe
// for concurrent use. Every connection has a reader goroutine (it reads
// and answers requests in order) and a writer goroutine (it writes what
// others cause the session to be sent); the table is behind the backend
// (local.go), whose mutex is held for microseconds per change and never
// across I/O, and whose pushes to a session never wait for the client.
type Server struct {
	cfg Config
	log *slog.Logger
	be  backend    // the local table; nil with a replicated one
	rep Replicated // the replicated table; nil without

	mu         sync.Mutex // guards everything below
	conns      map[SessionID]*session
	open       int                    // sessions registered with the backend
	pending    map[SessionID]*session // not yet authenticated: the places MaxUnauthenticated bounds
	failing    map[SessionID]*session // a wrong secret, waiting out AuthFailDelay (failLocked)
	maxFailing int                    // how many failing holds (maxFailingOf)
	lastID     SessionID
	listeners  map[net.Listener]struct{}
	closing    bool

	evictScratch []*session // for evictLocked; guarded by mu

	authLimit *authLimiter // AUTH attempts, all connections together; nil with strong secrets
	debugGC   debugGC      // DEBUG's garbage collections, at most one a second

	// Rate-limited logs of what a flood of connections causes.
	authLog, busyLog, evictLog sometimes

	refused  atomic.Uint64 // connections refused or evicted
	authFail atomic.Uint64
	overflow atomic.Uint64

	stop chan struct{} // closed by Shutdown
	wg   sync.WaitGroup
}

// NewServer returns a server that is not listening yet; call Serve, and
// Shutdown to stop it (which also ends its timer goroutine).
func NewServer(cfg Config) (*Server, error) {
	if err := ValidTTL(cfg.DefaultTTL); err != nil {
		return nil, fmt.Errorf("lockd: DefaultTTL: %s", clipErr(err))
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	orDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	orDefault(&cfg.MaxPendingOutput, DefaultMaxPending)
	if cfg.MaxLine <= 0 || cfg.MaxLine > DefaultMaxLine {
		cfg.MaxLine = DefaultMaxLine
	}
	orDefault(&cfg.MaxSessions, DefaultMaxSessions)
	orDefault(&cfg.MaxLocksPerSession, DefaultMaxLocksPerSession)
	orDefault(&cfg.MaxUnauthenticated, DefaultMaxUnauthenticated)
	orDefault(&cfg.AuthTimeout, DefaultAuthTimeout)
	if cfg.IdleTimeout > 0 {
		cfg.AuthTimeout = min(cfg.AuthTimeout, cfg.IdleTimeout)
	}
	orDefault(&cfg.AuthFailDelay, DefaultAuthFailDelay)
	orDefault(&cfg.AuthRate, DefaultAuthRate)
	orDefault(&cfg.AuthBurst, DefaultAuthBurst)
	if cfg.Tokens == nil {
		cfg.Tokens = EpochTokens{At: time.Now()}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:        cfg,
		log:        log,
		rep:        cfg.Replicated,
		conns:      make(map[SessionID]*session),
		pending:    make(map[SessionID]*session),
		failing:    make(map[SessionID]*session),
		maxFailing: maxFailingOf(cfg),
		listeners:  make(map[net.Listener]struct{}),
		stop:       make(chan struct{}),
	}
	// A secret shorter than StrongSecret, the clients' or the members',
	// is guessed at the AUTH rate; strong ones are compared at once.
	if len(cfg.Secret) < StrongSecret || cfg.PeerSecret != "" && len(cfg.PeerSecret) < StrongSecret {
		s.authLimit = newAuthLimiter(cfg.AuthRate, cfg.AuthBurst, time.Now())
	}
	var be *local
	if s.rep == nil {
		var err error
		if be, err = newLocal(TableLimits{MaxLocksPerSession: cfg.MaxLocksPerSession}, cfg.DefaultTTL, cfg.Tokens, log); err != nil {
			return nil, err
		}
		s.be = be
	}
	if cfg.Registerer != nil {
		if err := s.registerMetrics(cfg.Registerer, be); err != nil {
			if be != nil {
				be.stop()
			}
			return nil, err
		}
	}
	return s, nil
}

// orDefault sets *v to def when *v is zero or negative: how NewServer
// fills in the Config fields whose zero value means the default.
func orDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Serve accepts connections on ln until Shutdown, and then returns
// ErrServerClosed. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer ln.Close()
	if s.cfg.Secret != "" {
		deferAccept(ln, s.cfg.AuthTimeout)
	}
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.listeners, ln)
			if !closing {
				s.listeners[ln] = struct{}{}
			}
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than give up serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.stop:
			}
			continue
		}
		backoff = 0
		s.accept(c)
	}
}

// accept starts a session's goroutines for c, or refuses c.
func (s *Server) accept(c net.Conn) {
	now := time.Now()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.SetWriteDeadline(now.Add(time.Second))
		c.Write(appendErr(nil, CodeShutdown, "server shutting down"))
		c.Close()
		return
	}
	if s.cfg.Secret == "" && s.open >= s.cfg.MaxSessions {
		s.mu.Unlock()
		s.refuse(c, now)
		return
	}
	if s.cfg.Secret != "" && len(s.pending) >= s.cfg.MaxUnauthenticated && !s.evictLocked(now) {
		s.mu.Unlock()
		s.refuseUnauthenticated(c, now)
		return
	}
	s.lastID++
	ss := newSession(s, s.lastID, c, now)
	s.conns[ss.id] = ss
	if s.cfg.Secret == "" {
		ss.authed, ss.registered = true, true
		s.open++
	} else {
		s.pending[ss.id] = ss
	}
	s.wg.Add(2)
	s.mu.Unlock()
	go ss.writer()
	go ss.serve()
}

// refuse answers a connection over MaxSessions with ERR busy and closes
// it. The write cannot block: the reply fits any socket buffer.
func (s *Server) refuse(c net.Conn, now time.Time) {
	s.refused.Add(1)
	c.SetWriteDeadline(now.Add(time.Second))
	c.Write(appendErr(nil, CodeBusy, fmt.Sprintf("too many sessions (%d)", s.cfg.MaxSessions)))
	c.Close()
	if ok, skipped := s.busyLog.allow(now); ok {
		s.log.Warn("session refused: too many sessions", "addr", c.RemoteAddr().String(), "max", s.cfg.MaxSessions, "also_refused", skipped)
	}
}

// refuseUnauthenticated answers a connection for which no waiting one
// may make room (every one of them is there to hear the answer to its
// AUTH, or to a line not yet answered) with ERR busy, and closes it.
func (s *Server) refuseUnauthenticated(c net.Conn, now time.Time) {
	s.refused.Add(1)
	c.SetWriteDeadline(now.Add(time.Second))
	c.Write(appendErr(nil, CodeBusy, fmt.Sprintf("too many connections authenticating (%d); try again", s.cfg.MaxUnauthenticated)))
	c.Close()
	if ok, skipped := s.evictLog.allow(now); ok {
		s.log.Warn("connection refused: every connection waiting to authenticate is presenting its secret", "addr", c.RemoteAddr().String(),
			"max_unauthenticated", s.cfg.MaxUnauthenticated, "also_refused_or_closed", skipped)
	}
}

// evictClass is a class of unauthenticated connections that
// evictLocked may close to make room for a new one, in the order it
// closes them.
type evictClass uint8

const (
	// evictHungUp: its peer hung up before its secret was compared. No
	// one may be waiting for its answers (a client that only half-closed,
	// as nc -N does, loses its place to a newcomer and is told so), and
	// its secret, if it sent one, has not been compared, so closing it
	// tells nothing about the secret. It goes first: even before a
	// silent one, which may be a client whose first bytes are on their
	// way (the kernel hands over a connection before its data when a
	// flood has it answer SYNs with cookies, past TCP_DEFER_ACCEPT).
	evictHungUp evictClass = iota
	// evictSilent: has sent nothing, as the kernel sees it too.
	evictSilent
	// evictTalking: has sent something other than AUTH, all answered.
	evictTalking
	// evictNever: a whole line or an AUTH not yet answered, from a peer
	// still there; a secret being compared. (A wrong secret's connection
	// holds no place: Server.failLocked.)
	evictNever
)

func (c evictClass) String() string {
	switch c {
	case evictHungUp:
		return "hung-up"
	case evictSilent:
		return "silent"
	case evictTalking:
		return "talking"
	case evictNever:
		return "never"
	}
	return fmt.Sprintf("evictClass(%d)", uint8(c))
}

// evictClassOf says which class p, in state st, is of, or at least that
// it is not below best, the class of an older candidate already found. A
// connection whose reader has seen nothing may still have sent bytes, or
// hung up (its reader has not run yet, or has not yet said what it read:
// a flood keeps the CPUs busy); the kernel knows (peerDid). Whether a
// silent one has spoken is asked only when it could make it the victim
// (best is above evictSilent): in a flood of silent connections, that
// saves a syscall for all but the oldest, under mu, per accept.
func (p *session) evictClassOf(st pendState, best evictClass) evictClass {
	if st > pendAuth {
		return evictNever
	}
	spoke, hungUp := false, false
	if p.raw != nil {
		spoke, hungUp = peerDid(p.raw, st == pendSilent && best > evictSilent)
	}
	switch {
	case hungUp:
		return evictHungUp
	case st == pendSilent && !spoke:
		return evictSilent
	case st == pendTalking:
		return evictTalking
	}
	return evictNever
}

// evictLocked closes one connection that has not authenticated, the
// oldest of the first evictClass that has one, to make room for a new
// one, and reports whether it found one. Called with mu held.
func (s *Server) evictLocked(now time.Time) bool {
	cands := s.evictScratch[:0]
	for _, p := range s.pending {
		cands = append(cands, p)
	}
	slices.SortFunc(cands, func(a, b *session) int { return cmp.Compare(a.id, b.id) })
	defer func() { clear(cands); s.evictScratch = cands[:0] }()
	// A connection may move on while it is looked at (its reader does
	// not take mu to do so): one that did is passed over.
	for range 3 {
		var victim *session
		var st pendState
		class := evictNever
		for _, p := range cands {
			if p == nil {
				continue
			}
			pst := pendState(p.pend.Load())
			if c := p.evictClassOf(pst, class); c < class {
				victim, st, class = p, pst, c
				if c == evictHungUp {
					break
				}
			}
		}
		if victim == nil {
			return false
		}
		if !victim.pend.CompareAndSwap(uint32(st), uint32(pendEvicted)) {
			cands[slices.Index(cands, victim)] = nil
			continue
		}
		delete(s.pending, victim.id)
		victim.evict()
		s.refused.Add(1)
		if ok, skipped := s.evictLog.allow(now); ok {
			s.log.Warn("unauthenticated connection closed to make room for a new one", "addr", victim.conn.RemoteAddr().String(),
				"class", class.String(), "state", st.String(), "max_unauthenticated", s.cfg.MaxUnauthenticated, "also_closed_or_refused", skipped)
		}
		return true
	}
	return false
}

// Shutdown stops the server: listeners close, every holder is told its lock
// is lost and every waiter that its wait is cancelled (reason shutdown),
// every session is sent "* BYE reason=shutdown" and closed. Clients have
// shutdownGrace (2s) to read what they are sent and hang up; the
// connections of those that have not (a client that does not read, or
// keeps its end open) are then closed, and their number logged. Shutdown
// returns nil when every session's goroutines have ended, or ctx's error
// when ctx ends first (the connections are then closed at once and
// Shutdown still waits for their goroutines, which end promptly).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	close(s.stop)
	// From here no session opens (the backend refuses it) and the table
	// grants nothing. A replicated table is the cluster's: it stays as it
	// is, and the clients resume their sessions at other members.
	if s.rep != nil {
		s.rep.Shutdown()
	} else {
		s.be.drain()
	}
	s.mu.Lock()
	all := make([]*session, 0, len(s.conns))
	for _, ss := range s.conns {
		all = append(all, ss)
	}
	s.mu.Unlock()
	s.log.Info("shutting down", "sessions", len(all))
	for _, ss := range all {
		ss.out.send(appendBye(nil, "shutdown"))
		ss.requestHangUp()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	var err error
	select {
	case <-done:
	case <-grace.C:
	case <-ctx.Done():
		err = ctx.Err()
	}
	// Whoever is left has not hung up in time: a blocked write or read
	// returns at once when its connection closes.
	s.mu.Lock()
	left := len(s.conns)
	for _, ss := range s.conns {
		ss.conn.Close()
	}
	s.mu.Unlock()
	<-done
	if left > 0 {
		s.log.Warn("shutdown: closed sessions that had not read their last lines and hung up", "sessions", left, "grace", shutdownGrace)
	}
	if s.be != nil {
		s.be.stop()
	}
	return err
}

// Failed is closed when the server can no longer hand out locks safely:
// its TokenStore could not reserve tokens. Every lock has then been taken
// back (reason shutdown); call Shutdown. Err says why. (Never, with a
// replicated table.)
func (s *Server) Failed() <-chan struct{} {
	if s.be == nil {
		return nil
	}
	return s.be.failed()
}

// Err returns why the server failed (see Failed), nil if it has not.
func (s *Server) Err() error {
	if s.be == nil {
		return nil
	}
	return s.be.err()
}

// Stats returns the table's running totals.
func (s *Server) Stats() TableStats {
	if s.rep != nil {
		return s.rep.Stats()
	}
	return s.be.stats()
}

// status is one page of the table, from whichever backend there is.
func (s *Server) status(q StatusQuery) Status {
	if s.rep != nil {
		return s.rep.Status(q)
	}
	return s.be.status(q)
}

// Status returns a snapshot of the table, as STATUS does: the holders and
// waiters of name, or of every name (and every session) when name is "".
func (s *Server) Status(name string) Status {
	if name != "" {
		return s.status(StatusQuery{Name: name})
	}
	var all Status
	for q := (StatusQuery{Limit: MaxStatusLimit}); ; {
		st := s.status(q)
		if q.After == "" {
			all.Now, all.Sessions = st.Now, st.Sessions
		}
		all.Locks = append(all.Locks, st.Locks...)
		if st.Next == "" {
			return all
		}
		q.After = st.Next
	}
}

// Tokens says how this server numbers its fencing tokens: the store's kind
// ("epoch", "raft" in a cluster) and the value every token it hands out is above.
func (s *Server) Tokens() (kind string, above Token) {
	if s.rep != nil {
		return s.rep.Tokens()
	}
	return s.be.tokens()
}
