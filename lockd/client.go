package lockd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure a Client. The zero value works against a server without
// a secret.
type Options struct {
	// Client is the name the session gives itself in HELLO, shown by status
	// and used by the deadlock detector ("P1"). Default: the program's name.
	// Bytes outside letters, digits, '.', '_' and '-' become '_'.
	Client string
	// PID is reported with the name; default: this process's pid.
	PID int
	// Secret is presented with AUTH when set (the server's --token-file).
	Secret string
	// Keepalive is how often the client pings so that the server's idle
	// timeout does not close a session that only holds or waits. Zero: a
	// third of the server's idle timeout; negative: never. A ping not
	// answered within the same interval ends the client (ErrConnLost).
	// Whatever it is, the client also ends itself once nothing it sent
	// has been answered for 7/8 of the server's idle timeout: the server
	// may have closed the session by then (see Lease.Deadline). Against a
	// cluster the client pings every sixth of the session TTL as well (see
	// Client).
	Keepalive time.Duration
	// Resume, when its Session is set, takes over an existing session of
	// a cluster (one another process opened, and left with its locks)
	// instead of opening one: RESUME instead of HELLO. Its secret is the
	// one that process's ClusterInfo gave.
	Resume SessionCredential
}

// SessionCredential names a cluster session and proves the right to it.
type SessionCredential struct {
	Session SessionID
	Secret  string
}

// ParseSessionCredential reads "ID:SECRET" (mplock client --session).
func ParseSessionCredential(s string) (SessionCredential, error) {
	id, secret, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(id, 10, 64)
	if !ok || err != nil || n == 0 || secret == "" || len(secret) > MaxSecretLen || strings.ContainsAny(secret, " \t\n") {
		return SessionCredential{}, fmt.Errorf("lockd: session %q: want ID:SECRET", s)
	}
	return SessionCredential{Session: SessionID(n), Secret: secret}, nil
}

// String is "ID:SECRET".
func (s SessionCredential) String() string {
	return strconv.FormatUint(uint64(s.Session), 10) + ":" + s.Secret
}

// writeTimeout bounds one request's write: a server that reads nothing for
// this long (its host stopped, the link black-holed with the send buffer
// full) has lost the session as far as this client is concerned.
const writeTimeout = 10 * time.Second

// Client is one session with a lock server: the locks it takes belong to its
// connection and are released by the server if the connection ends, however
// it ends. Its methods are safe for concurrent use, but one Client holds or
// waits for a given name at most once at a time (ErrHeld otherwise): use
// one Client per independent party.
//
// # Against a cluster
//
// A cluster member says so in HELLO (node=). The session then belongs to
// the cluster, not to the connection: the client keeps its id and secret,
// numbers its changes (req=), and pings every sixth of the session TTL.
// When its connection is lost (the member died, was stopped, or said
// nothing for a ping interval) it connects to another member of its list
// (Dial's, plus those HELLO named), RESUMEs the session, sends again
// every request that had no reply, with the same req= (the cluster
// applies none twice), and reconciles its leases and waits with the state
// RESUME returns: a lock still held with the same token stays held (its
// Done does not close), one no longer held ends with ErrLeaseExpired, a
// wait granted meanwhile is granted, a wait still queued keeps its place,
// and a hold or wait of the session that no Lease or Lock accounts for is
// released or withdrawn. The cluster keeps the outcomes of a session's
// last RequestWindow changes only, so the client keeps at most that many
// unanswered: a Lock, Unlock or renewal beyond them waits (within its
// ctx) for an answer to an earlier one.
// The session is surely alive until the send time of the last PING (or
// HELLO, or RESUME) the leader confirmed plus the session TTL, less 1%;
// every Lease's Deadline is capped by that too, and past it the client
// ends with ErrSessionLost. Close sends QUIT, which releases the session's
// locks at once; a client that dies without it leaves them to expire
// with the session.
type Client struct {
	conn    net.Conn // the current connection; guarded by wmu and mu
	opts    Options
	session SessionID
	idle    time.Duration

	servers []string // the addresses to try, Dial's then those HELLO named; guarded by mu
	cur     int      // the index in servers of the current connection; guarded by mu

	// Cluster mode (HELLO or RESUME said node=); set before Dial returns.
	cluster    atomic.Bool
	secret     string
	sessionTTL time.Duration

	wmu     sync.Mutex // orders request writes with c.pending
	wbuf    []byte     // guarded by wmu
	nextReq uint64     // the last req= given; guarded by wmu
	// slots holds one token per change (LOCK, UNLOCK, RENEW, CANCEL) sent
	// in cluster mode and not yet answered: at most RequestWindow, so that
	// the cluster still has the result of every one the client may send
	// again after a resume (sendChange).
	slots chan struct{}

	mu      sync.Mutex
	pending []*call // requests awaiting their in-order reply
	waits   map[string]*lockWait
	leases  map[string]*Lease
	err     error // why the client ended; nil while open
	bye     string
	// Cluster mode: resend holds calls to send again on the next
	// connection, ahead of pending (a change answered ERR unavailable);
	// reconnecting is set while the client resumes elsewhere (requests
	// are queued, not written); pinged is the send time of the last PING,
	// HELLO or RESUME the leader confirmed; node and leader are as the
	// current member said.
	resend       []*call
	reconnecting bool
	quitting     bool // Close sent QUIT: the end of the connection is expected
	pinged       time.Time
	node, leader string
	// confirmed is the send time of the latest request the server has
	// answered: it had read that request, so its idle clock restarted at
	// or after then. session ends the client when that clock may have run
	// out (sessionBound after confirmed).
	confirmed    time.Time
	sessionTimer *time.Timer

	done chan struct{}
	wg   sync.WaitGroup
}

// call is one request awaiting its reply. hook, when set, runs in the
// reader goroutine before done is closed, so that state the reply creates
// exists before any later line is read.
type call struct {
	reply reply
	data  []string
	err   error
	hook  func(*call)
	done  chan struct{}
	// sent is when the request was handed to the connection: the server
	// cannot have acted on it earlier, so it is a lower bound of the
	// moment a RENEW restarted a lease, or a request the idle clock.
	sent time.Time
	// line and req, in cluster mode, are the request as sent, to send
	// again unchanged (same req=) on another connection.
	line []byte
	req  Request
	// slot: the call holds one of c.slots until it is answered or fails.
	slot bool
}

// Dial connects to the lock server at addr (host:port), presents the secret
// if any, and says HELLO. addr may list several servers, comma-separated
// (the members of a cluster): they are tried in turn, and the first that
// answers is used; against a cluster, the others (and every member HELLO
// names) are where the client resumes its session should that one fail.
// ctx bounds the dial and the handshake. A server that answers ERR busy
// (ErrBusy: too many sessions, too many AUTH attempts, or too many
// connections authenticating) is tried again after a jittered pause
// (busyBackoff) until ctx ends, or for busyRetryFor when ctx has no
// deadline; the error then says how many tries were answered busy, and
// wraps ErrBusy. ERR auth (ErrAuth: a wrong secret) is never tried again.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	servers := splitServers(addr)
	if len(servers) == 0 {
		return nil, fmt.Errorf("lockd: dial: no server address in %q", addr)
	}
	start := time.Now()
	giveUp, ok := ctx.Deadline()
	if !ok {
		giveUp = start.Add(busyRetryFor)
	}
	var b busyBackoff
	for tries := 1; ; tries++ {
		c, err := dialServers(ctx, servers, opts)
		if err == nil || !errors.Is(err, ErrBusy) || errors.Is(err, ErrAuth) {
			return c, err
		}
		pause := b.next()
		if ctx.Err() == nil && !time.Now().Add(pause).After(giveUp) {
			t := time.NewTimer(pause)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
			}
		}
		why := ""
		if ctx.Err() != nil {
			why = fmt.Sprintf(" (%v)", ctx.Err())
		}
		return nil, fmt.Errorf("lockd: server busy: gave up after %d tries in %v%s: %w", tries,
			time.Since(start).Round(time.Millisecond), why, err)
	}
}

// dialServers tries each of servers in turn, and returns the first that
// answers, or every one's error.
func dialServers(ctx context.Context, servers []string, opts Options) (*Client, error) {
	var errs []error
	for i := range servers {
		c, err := dialOne(ctx, servers, i, opts)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || errors.Is(err, ErrAuth) {
			break
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, errors.Join(errs...)
}

// splitServers splits a comma-separated list of addresses.
func splitServers(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func dialOne(ctx context.Context, servers []string, i int, opts Options) (*Client, error) {
	addr := servers[i]
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lockd: dial %s: %w", addr, err)
	}
	if opts.Client == "" {
		opts.Client = filepath.Base(os.Args[0])
	}
	opts.Client = clientName(opts.Client)
	if opts.PID == 0 {
		opts.PID = os.Getpid()
	}
	c := &Client{conn: conn, opts: opts, waits: map[string]*lockWait{}, leases: map[string]*Lease{}, done: make(chan struct{}),
		servers: slices.Clone(servers), cur: i, slots: make(chan struct{}, RequestWindow)}
	if opts.Resume.Session != 0 {
		conn.Close()
		if err := c.takeOver(ctx, addr); err != nil {
			return nil, err
		}
	} else {
		c.wg.Add(1)
		go c.read(conn, bufio.NewReaderSize(conn, 16<<10))
		if err := c.handshake(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("lockd: %s: %w", addr, err)
		}
	}
	if c.sessionBound() > 0 {
		c.mu.Lock()
		c.sessionTimer = time.AfterFunc(c.sessionBound(), c.watchSession)
		c.mu.Unlock()
	}
	k := opts.Keepalive
	if k == 0 && c.idle > 0 {
		k = max(c.idle/3, minTick)
	}
	if k > 0 && !c.cluster.Load() {
		c.wg.Add(1)
		go c.keepalive(k)
	}
	if c.cluster.Load() {
		c.wg.Add(1)
		go c.clusterKeepalive(k)
	}
	return c, nil
}

func (c *Client) handshake(ctx context.Context) error {
	var auth *call
	if c.opts.Secret != "" {
		var err error
		if auth, err = c.send(Request{Verb: VerbAuth, Secret: c.opts.Secret}, nil); err != nil {
			return err
		}
	}
	hello, err := c.send(Request{Verb: VerbHello, Name: c.opts.Client, PID: c.opts.PID}, nil)
	if err != nil {
		// The AUTH may have been answered (ERR busy, ERR auth) and the
		// connection closed before the HELLO could be sent: that answer
		// says why, not the closed connection.
		if auth != nil {
			if _, _, aerr := c.await(ctx, auth); aerr != nil {
				return aerr
			}
		}
		return err
	}
	if auth != nil {
		if _, _, err := c.await(ctx, auth); err != nil {
			return err
		}
	}
	r, _, err := c.await(ctx, hello)
	if err != nil {
		return err
	}
	if r.get("auth") == "true" && c.opts.Secret == "" {
		return fmt.Errorf("%w: the server has a --token-file; give its secret", ErrAuth)
	}
	c.session = SessionID(r.uint("session"))
	c.idle = r.dur("idle")
	if node := r.get("node"); node != "" {
		c.secret, c.sessionTTL = r.get("secret"), r.dur("session-ttl")
		if c.secret == "" || c.sessionTTL <= 0 {
			return fmt.Errorf("%w: a cluster's HELLO without secret= or session-ttl=: %q", ErrProtocol, r.String())
		}
		c.mu.Lock()
		c.pinged = hello.sent
		c.node, c.leader = node, dashless(r.get("leader"))
		for _, m := range strings.Split(r.get("members"), ",") {
			if _, a, ok := strings.Cut(m, "@"); ok && !slices.Contains(c.servers, a) {
				c.servers = append(c.servers, a)
			}
		}
		c.mu.Unlock()
		c.cluster.Store(true)
	}
	return nil
}

// clientName makes s a valid HELLO name.
func clientName(s string) string {
	b := []byte(s)
	if len(b) > MaxClientLen {
		b = b[:MaxClientLen]
	}
	for i, x := range b {
		if !nameByte(x) || (i == 0 && x == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "client"
	}
	return string(b)
}

// Session is the id the server gave this session (as status shows it).
func (c *Client) Session() SessionID { return c.session }

// Server is the address of the server the client is connected to now.
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[c.cur]
}

// ClusterInfo is what a client knows of the cluster it talks to.
type ClusterInfo struct {
	Node       string        // the member it is connected to
	Leader     string        // the leader as that member last said ("" none)
	Servers    []string      // every address it would resume at
	SessionTTL time.Duration // the session's TTL
	// Secret is the session's bearer credential: whoever has it can
	// RESUME the session, and hold or release its locks.
	Secret string
}

// Cluster reports whether the server is a cluster member, and what the
// client knows of the cluster.
func (c *Client) Cluster() (ClusterInfo, bool) {
	if !c.cluster.Load() {
		return ClusterInfo{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return ClusterInfo{Node: c.node, Leader: c.leader, Servers: slices.Clone(c.servers), SessionTTL: c.sessionTTL, Secret: c.secret}, true
}

// Done is closed when the client ends: Close, or the connection lost.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the client ended (ErrClosed, ErrShutdown, ErrConnLost...),
// nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the session. The server releases its locks and cancels its
// waits; every Lease's Done closes with ErrClosed. Close waits for the
// client's goroutines to end. Against a cluster it first sends QUIT, which
// ends the session in the cluster (waiting at most quitTimeout for the
// answer); without it, the session's locks would outlive the connection
// by the session TTL.
func (c *Client) Close() error {
	if c.cluster.Load() {
		c.mu.Lock()
		ok := c.err == nil && !c.reconnecting
		c.quitting = true
		c.mu.Unlock()
		if ok {
			ctx, cancel := context.WithTimeout(context.Background(), quitTimeout)
			c.roundTrip(ctx, Request{Verb: VerbQuit})
			cancel()
		}
	}
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// Detach ends the client without ending its session: against a cluster,
// the session and its locks stay until its TTL passes without keepalives,
// or another client takes them over (Options.Resume with ClusterInfo's
// secret). Against a single server it is Close.
func (c *Client) Detach() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// quitTimeout bounds Close's wait for a cluster's answer to QUIT.
const quitTimeout = 2 * time.Second

// event handles a "* ..." line.
func (c *Client) event(r *reply) {
	name := r.arg(0)
	switch r.word {
	case "GRANTED", "TIMEOUT", "CANCELLED":
		c.mu.Lock()
		w := c.waits[name]
		c.mu.Unlock()
		if w == nil {
			return // withdrawn; a GRANTED is then released by withdraw
		}
		switch r.word {
		case "GRANTED":
			w.ch <- lockOutcome{lease: c.granted(w, r, time.Time{}, true)}
		case "TIMEOUT":
			c.dropWait(w)
			w.ch <- lockOutcome{err: ErrTimeout}
		default:
			c.dropWait(w)
			w.ch <- lockOutcome{err: ErrShutdown}
		}
	case "LOST":
		c.mu.Lock()
		l := c.leases[name]
		c.mu.Unlock()
		if l != nil && l.Token == Token(r.uint("token")) {
			err := ErrLeaseExpired
			if r.get("reason") == string(ReasonShutdown) {
				err = ErrShutdown
			}
			l.end(err)
		}
	case "BYE":
		c.mu.Lock()
		c.bye = r.get("reason")
		c.mu.Unlock()
	}
}

// Status asks for the holders and waiters of name, or of every name when
// name is "" (then with every session too, page by page: see statusAll).
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	if name == "" {
		return c.statusAll(ctx)
	}
	if err := ValidName(name); err != nil {
		return Status{}, err
	}
	return c.statusPage(ctx, Request{Verb: VerbStatus, Name: name})
}

func (c *Client) statusPage(ctx context.Context, req Request) (Status, error) {
	r, data, err := c.roundTrip(ctx, req)
	if err != nil {
		return Status{}, err
	}
	return parseStatus(data, r)
}

// Ping asks the server for a PONG.
func (c *Client) Ping(ctx context.Context) error {
	_, _, err := c.roundTrip(ctx, Request{Verb: VerbPing})
	return err
}

func (c *Client) roundTrip(ctx context.Context, req Request) (reply, []string, error) {
	cl, err := c.send(req, nil)
	if err != nil {
		return reply{}, nil, err
	}
	return c.await(ctx, cl)
}

func (c *Client) await(ctx context.Context, cl *call) (reply, []string, error) {
	select {
	case <-cl.done:
	case <-ctx.Done():
		return reply{}, nil, ctx.Err()
	}
	if cl.err != nil {
		return reply{}, nil, cl.err
	}
	return cl.reply, cl.data, cl.reply.err()
}

// sendChange sends a change (LOCK, UNLOCK, RENEW, CANCEL) as send does,
// once fewer than RequestWindow changes are unanswered in cluster mode:
// the cluster keeps the results of a session's last RequestWindow changes
// only, and a change sent again after a resume whose result it no longer
// had would leave its outcome unknown. It waits for a slot until ctx or
// the client ends. Against a single server it is send.
func (c *Client) sendChange(ctx context.Context, req Request, hook func(*call)) (*call, error) {
	if !c.cluster.Load() {
		return c.send(req, hook)
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.Err()
	}
	cl, err := c.sendCall(req, hook, true)
	if err != nil {
		<-c.slots
	}
	return cl, err
}

// settled frees cl's slot, if it holds one: it has been answered, or has
// failed.
func (c *Client) settled(cl *call) {
	if cl.slot {
		cl.slot = false
		<-c.slots
	}
}

// send writes one request and queues its call, in the same order. In
// cluster mode a change gets the session's next req=, and the line is
// kept to send again on another connection; while the client is
// reconnecting it is only queued. Changes go through sendChange.
func (c *Client) send(req Request, hook func(*call)) (*call, error) {
	return c.sendCall(req, hook, false)
}

func (c *Client) sendCall(req Request, hook func(*call), slot bool) (*call, error) {
	cl := &call{hook: hook, done: make(chan struct{}), slot: slot}
	c.wmu.Lock()
	cluster := c.cluster.Load()
	if cluster && takesReq(req.Verb) && req.Req == 0 {
		c.nextReq++
		req.Req = c.nextReq
	}
	buf := append(req.AppendTo(c.wbuf[:0]), '\n')
	c.wbuf = buf
	if cluster {
		cl.line, cl.req = slices.Clone(buf), req
	}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, err
	}
	// Taken before the call is queued, so that the reader goroutine sees
	// it; earlier than the write, it is still a lower bound.
	cl.sent = time.Now()
	c.pending = append(c.pending, cl)
	conn, queueOnly := c.conn, c.reconnecting
	c.mu.Unlock()
	if queueOnly {
		c.wmu.Unlock()
		return cl, nil
	}
	conn.SetWriteDeadline(cl.sent.Add(writeTimeout))
	_, err := conn.Write(buf)
	c.wmu.Unlock()
	if err != nil && !peerClosed(err) {
		c.connLost(conn, fmt.Errorf("%w: %v", ErrConnLost, err))
	}
	return cl, nil
}

// peerClosed reports whether a write failed because the server has
// closed or reset the connection (ECONNRESET, EPIPE). What it sent
// before, such as the ERR busy it answered an AUTH with before closing,
// may still be waiting to be read; the reader reads it, then sees the
// end at once and reports the connection lost, so the write leaves that
// to it.
func peerClosed(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// read is the reader goroutine of one connection: it hands replies to
// calls in order and handles events.
func (c *Client) read(conn net.Conn, br *bufio.Reader) {
	defer c.wg.Done()
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			bye := c.bye
			c.bye = ""
			c.mu.Unlock()
			switch {
			case c.cluster.Load() && (bye == "expired" || bye == "resumed"):
				c.fail(fmt.Errorf("%w: the server closed the connection: %s", ErrSessionLost, map[string]string{
					"expired": "the session expired (no keepalive reached the leader within its TTL)",
					"resumed": "the session was resumed on another connection"}[bye]))
			case c.cluster.Load() && bye != "":
				c.connLost(conn, fmt.Errorf("%w: server closed the session's connection (%s)", ErrConnLost, bye))
			case bye == string(ReasonShutdown):
				c.fail(ErrShutdown)
			case bye != "":
				c.fail(fmt.Errorf("%w: server closed the session (%s)", ErrConnLost, bye))
			case errors.Is(err, io.EOF):
				c.connLost(conn, fmt.Errorf("%w: server closed the connection", ErrConnLost))
			default:
				c.connLost(conn, fmt.Errorf("%w: %v", ErrConnLost, err))
			}
			return
		}
		r := parseReply(line)
		switch r.kind {
		case replyEvent:
			c.event(&r)
			continue
		case replyData:
			data = append(data, line)
			continue
		}
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			if r.kind == replyErr && (Code(r.word) == CodeBusy || Code(r.word) == CodeShutdown) {
				// A server refuses a connection it has no room for (or
				// is shutting down) as soon as it accepts it, before the
				// client's first request may have been sent.
				c.fail(r.err())
				return
			}
			c.fail(fmt.Errorf("%w: reply %q to no request", ErrProtocol, line))
			return
		}
		cl := c.pending[0]
		c.pending[0] = nil
		c.pending = c.pending[1:]
		if r.kind == replyErr && cl.line != nil {
			switch Code(r.word) {
			case CodeUnavailable:
				if takesReq(cl.req.Verb) {
					// The outcome is unknown: the same request (same req=)
					// goes again, first, on the next connection; nothing
					// later may be applied before it.
					c.resend = append(c.resend, cl)
					c.mu.Unlock()
					data = nil
					c.connLost(conn, fmt.Errorf("%w: %s", ErrUnavailable, r.text))
					continue
				}
			case CodeSession:
				c.mu.Unlock()
				c.fail(fmt.Errorf("%w: %s", ErrSessionLost, r.text))
				return
			}
		}
		if cl.sent.After(c.confirmed) {
			c.confirmed = cl.sent
		}
		c.mu.Unlock()
		cl.reply, cl.data, data = r, data, nil
		if cl.hook != nil {
			cl.hook(cl)
		}
		c.settled(cl)
		close(cl.done)
	}
}

// connLost handles the end of conn: against a cluster, the client resumes
// its session elsewhere; otherwise it ends. The end of a connection that
// is no longer the client's is ignored.
func (c *Client) connLost(conn net.Conn, err error) {
	c.mu.Lock()
	if c.err != nil || conn != c.conn || c.reconnecting || c.quitting {
		c.mu.Unlock()
		conn.Close()
		return
	}
	if !c.cluster.Load() {
		c.mu.Unlock()
		c.fail(err)
		return
	}
	c.reconnecting = true
	c.mu.Unlock()
	conn.Close()
	c.wg.Add(1)
	go c.reconnect(err)
}

// fail ends the client once: the connection closes, pending calls and
// waits fail with err, leases end with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := append(c.resend, c.pending...)
	c.pending, c.resend = nil, nil
	waits := c.waits
	c.waits = map[string]*lockWait{}
	leases := c.leases
	c.leases = map[string]*Lease{}
	close(c.done)
	if c.sessionTimer != nil {
		c.sessionTimer.Stop()
	}
	c.mu.Unlock()
	c.conn.Close()
	for _, cl := range pending {
		cl.err = err
		c.settled(cl)
		close(cl.done)
	}
	for _, w := range waits {
		select {
		case w.ch <- lockOutcome{err: err}:
		default:
		}
	}
	for _, l := range leases {
		l.end(err)
	}
}

func (c *Client) keepalive(every time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := c.Ping(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			c.fail(fmt.Errorf("%w: no answer to PING within %v", ErrConnLost, every))
			return
		}
	}
}

// sessionBound is how long after the send time of a request the server
// answered the session surely still exists: the server closes a session
// that sends nothing for its idle timeout, and moves its deadline lazily,
// so it closes one after between 7/8 of it and all of it (session.go); less
// the allowance. Zero when the server has no idle timeout. Against a
// cluster, the session TTL (less the allowance), counted from a PING the
// leader confirmed: the session outlives its connections.
func (c *Client) sessionBound() time.Duration {
	if c.cluster.Load() {
		return allowance(c.sessionTTL)
	}
	if c.idle <= 0 {
		return 0
	}
	return allowance(c.idle - c.idle/8)
}

// sessionDeadline is when the server may have closed the session for
// silence, unless something sent before then is answered; zero if never.
// c.mu must be held.
func (c *Client) sessionDeadline() time.Time {
	if b := c.sessionBound(); b > 0 {
		if c.cluster.Load() {
			return c.pinged.Add(b)
		}
		return c.confirmed.Add(b)
	}
	return time.Time{}
}

// watchSession runs when the session deadline may have passed: it ends
// the client if it has, whether or not the connection says anything (a
// black-holed link sends neither FIN nor RST), and otherwise waits again.
func (c *Client) watchSession() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if left := time.Until(c.sessionDeadline()); left > 0 {
		c.sessionTimer.Reset(left)
		c.mu.Unlock()
		return
	}
	if c.cluster.Load() {
		silent := time.Since(c.pinged)
		c.mu.Unlock()
		c.fail(fmt.Errorf("%w: no keepalive sent in the last %v was confirmed by the cluster's leader, and it expires a session silent for its TTL (%v)",
			ErrSessionLost, silent.Round(time.Millisecond), c.sessionTTL))
		return
	}
	silent := time.Since(c.confirmed)
	c.mu.Unlock()
	c.fail(fmt.Errorf("%w: nothing sent in the last %v was answered, and the server closes a session silent for its idle timeout (%v)",
		ErrConnLost, silent.Round(time.Millisecond), c.idle))
}
