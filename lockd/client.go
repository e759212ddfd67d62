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
	"sync"
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
	Keepalive time.Duration
}

// Client is one session with a lock server: the locks it takes belong to its
// connection and are released by the server if the connection ends, however
// it ends. Its methods are safe for concurrent use, but one Client holds or
// waits for a given name at most once at a time (ErrHeld otherwise): use
// one Client per independent party.
type Client struct {
	conn    net.Conn
	opts    Options
	session SessionID
	idle    time.Duration

	wmu  sync.Mutex // orders request writes with c.pending
	wbuf []byte     // guarded by wmu

	mu      sync.Mutex
	pending []*call // requests awaiting their in-order reply
	waits   map[string]*lockWait
	leases  map[string]*Lease
	err     error // why the client ended; nil while open
	bye     string

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
	hook  func(*reply)
	done  chan struct{}
}

type lockWait struct {
	name    string
	ch      chan lockOutcome // the reply (LOCKED, QUEUED, ERR), then the event
	onQueue func(int)
}

type lockOutcome struct {
	lease    *Lease
	queued   bool
	position int
	err      error
}

// Dial connects to the lock server at addr (host:port), presents the secret
// if any, and says HELLO. ctx bounds the dial and the handshake.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
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
	c := &Client{conn: conn, opts: opts, waits: map[string]*lockWait{}, leases: map[string]*Lease{}, done: make(chan struct{})}
	c.wg.Add(1)
	go c.read()
	if err := c.handshake(ctx); err != nil {
		c.Close()
		return nil, err
	}
	k := opts.Keepalive
	if k == 0 && c.idle > 0 {
		k = c.idle / 3
	}
	if k > 0 {
		c.wg.Add(1)
		go c.keepalive(k)
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
// client's goroutines to end.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

// LockOption adjusts one Lock or TryLock.
type LockOption func(*lockOptions)

type lockOptions struct {
	ttl     time.Duration
	hasTTL  bool
	onQueue func(position int)
}

// WithTTL asks for a lease: the server takes the lock back if it is not
// renewed within ttl. The client renews it every ttl/3 while it holds it;
// the lease is lost (Done closes, Err is ErrLeaseExpired) only if renewals
// do not get through, for example when this process is stopped or the
// network is cut. Zero asks for no lease even if the server has a default.
func WithTTL(ttl time.Duration) LockOption {
	return func(o *lockOptions) { o.ttl, o.hasTTL = ttl, true }
}

// OnQueued is called, from the client's reader goroutine, when the request
// has to wait, with its position in the queue (1: next). It must not block.
func OnQueued(f func(position int)) LockOption {
	return func(o *lockOptions) { o.onQueue = f }
}

// Lock takes name in mode, waiting in the server's FIFO queue as long as it
// must. When ctx ends first, the wait is withdrawn (a grant that crossed the
// withdrawal is released) and ctx's error returned. Errors: ErrHeld if this
// client already holds or waits for name, ErrBadName, ErrLimit,
// ErrShutdown, ErrConnLost.
func (c *Client) Lock(ctx context.Context, name string, mode Mode, opts ...LockOption) (*Lease, error) {
	return c.lock(ctx, name, mode, false, opts)
}

// TryLock takes name in mode only if it can be had at once, and returns
// ErrLocked otherwise; it never queues.
func (c *Client) TryLock(ctx context.Context, name string, mode Mode, opts ...LockOption) (*Lease, error) {
	return c.lock(ctx, name, mode, true, opts)
}

func (c *Client) lock(ctx context.Context, name string, mode Mode, try bool, opts []LockOption) (*Lease, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	var o lockOptions
	for _, f := range opts {
		f(&o)
	}
	w := &lockWait{name: name, ch: make(chan lockOutcome, 2), onQueue: o.onQueue}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	if c.waits[name] != nil || c.leases[name] != nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrHeld, name)
	}
	c.waits[name] = w
	c.mu.Unlock()

	req := Request{Verb: VerbLock, Name: name, Mode: mode, TTL: o.ttl, HasTTL: o.hasTTL, HasWait: try}
	if _, err := c.send(req, func(r *reply) { c.lockReply(w, r) }); err != nil {
		c.dropWait(w)
		return nil, err
	}
	for {
		select {
		case out := <-w.ch:
			if out.queued {
				continue
			}
			return out.lease, out.err
		case <-ctx.Done():
			return nil, c.withdraw(w, ctx.Err())
		}
	}
}

// withdraw gives up a lock request whose caller's ctx ended. CANCEL is sent
// after the LOCK, so by the time its reply is read, the LOCK's reply and
// any grant have been read too; a lease granted meanwhile is released.
func (c *Client) withdraw(w *lockWait, why error) error {
	if cl, err := c.send(Request{Verb: VerbCancel, Name: w.name}, nil); err == nil {
		select {
		case <-cl.done:
		case <-c.done:
		}
	}
	c.dropWait(w)
	for {
		select {
		case out := <-w.ch:
			if out.lease != nil {
				out.lease.Unlock(context.Background())
			}
		default:
			return why
		}
	}
}

func (c *Client) dropWait(w *lockWait) {
	c.mu.Lock()
	if c.waits[w.name] == w {
		delete(c.waits, w.name)
	}
	c.mu.Unlock()
}

// lockReply handles a LOCK's reply in the reader goroutine.
func (c *Client) lockReply(w *lockWait, r *reply) {
	switch {
	case r.kind == replyOK && r.word == "LOCKED":
		w.ch <- lockOutcome{lease: c.granted(w, r, 0)}
	case r.kind == replyOK && r.word == "QUEUED":
		if w.onQueue != nil {
			w.onQueue(int(r.uint("position")))
		}
		w.ch <- lockOutcome{queued: true, position: int(r.uint("position"))}
	case r.kind == replyErr:
		c.dropWait(w)
		w.ch <- lockOutcome{err: r.err()}
	default:
		c.dropWait(w)
		w.ch <- lockOutcome{err: fmt.Errorf("%w: %v", ErrProtocol, r.String())}
	}
}

// granted makes the Lease for a LOCKED reply or GRANTED event (in the
// reader goroutine, so that a later LOST finds it).
func (c *Client) granted(w *lockWait, r *reply, waited time.Duration) *Lease {
	l := &Lease{Name: r.arg(0), Mode: r.mode(), Token: Token(r.uint("token")), TTL: r.dur("ttl"), Waited: waited,
		c: c, done: make(chan struct{})}
	c.mu.Lock()
	if c.waits[w.name] == w {
		delete(c.waits, w.name)
	}
	if c.err != nil {
		l.err = c.err
		close(l.done)
	} else {
		c.leases[l.Name] = l
		if l.TTL > 0 {
			c.wg.Add(1)
			go c.renew(l)
		}
	}
	c.mu.Unlock()
	return l
}

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
			w.ch <- lockOutcome{lease: c.granted(w, r, r.dur("waited"))}
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

// Unlock releases the lease. Releasing a lease already lost returns why it
// was lost (ErrLeaseExpired, ErrShutdown, ErrConnLost...); releasing one
// twice returns nil.
func (c *Client) Unlock(ctx context.Context, l *Lease) error {
	c.mu.Lock()
	ended := l.err
	c.mu.Unlock()
	if ended != nil {
		if errors.Is(ended, ErrUnlocked) {
			return nil
		}
		return ended
	}
	_, _, err := c.roundTrip(ctx, Request{Verb: VerbUnlock, Name: l.Name, Token: l.Token})
	if err != nil {
		if errors.Is(err, ErrNotHolder) {
			l.end(ErrLeaseExpired)
		}
		return err
	}
	l.end(ErrUnlocked)
	return nil
}

// Status asks for the holders and waiters of name, or of every name when
// name is "" (then with every session too).
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	if name != "" {
		if err := ValidName(name); err != nil {
			return Status{}, err
		}
	}
	r, data, err := c.roundTrip(ctx, Request{Verb: VerbStatus, Name: name})
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

// send writes one request and queues its call, in the same order.
func (c *Client) send(req Request, hook func(*reply)) (*call, error) {
	cl := &call{hook: hook, done: make(chan struct{})}
	c.wmu.Lock()
	buf := append(req.AppendTo(c.wbuf[:0]), '\n')
	c.wbuf = buf
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		return nil, err
	}
	c.pending = append(c.pending, cl)
	c.mu.Unlock()
	_, err := c.conn.Write(buf)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: %v", ErrConnLost, err))
	}
	return cl, nil
}

// read is the reader goroutine: it hands replies to calls in order and
// handles events.
func (c *Client) read() {
	defer c.wg.Done()
	br := bufio.NewReaderSize(c.conn, 16<<10)
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.mu.Lock()
			bye := c.bye
			c.mu.Unlock()
			switch {
			case bye == string(ReasonShutdown):
				c.fail(ErrShutdown)
			case bye != "":
				c.fail(fmt.Errorf("%w: server closed the session (%s)", ErrConnLost, bye))
			case errors.Is(err, io.EOF):
				c.fail(fmt.Errorf("%w: server closed the connection", ErrConnLost))
			default:
				c.fail(fmt.Errorf("%w: %v", ErrConnLost, err))
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
			c.fail(fmt.Errorf("%w: reply %q to no request", ErrProtocol, line))
			return
		}
		cl := c.pending[0]
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.mu.Unlock()
		cl.reply, cl.data, data = r, data, nil
		if cl.hook != nil {
			cl.hook(&cl.reply)
		}
		close(cl.done)
	}
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
	pending := c.pending
	c.pending = nil
	waits := c.waits
	c.waits = map[string]*lockWait{}
	leases := c.leases
	c.leases = map[string]*Lease{}
	close(c.done)
	c.mu.Unlock()
	c.conn.Close()
	for _, cl := range pending {
		cl.err = err
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

func (c *Client) renew(l *Lease) {
	defer c.wg.Done()
	t := time.NewTicker(l.TTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		cl, err := c.send(Request{Verb: VerbRenew, Name: l.Name, Token: l.Token}, nil)
		if err != nil {
			return
		}
		select {
		case <-cl.done:
		case <-l.done:
			return
		}
		if cl.err == nil && cl.reply.kind == replyErr {
			l.end(ErrLeaseExpired)
			return
		}
	}
}

// Lease is a lock held. Its Token is the fencing token of this grant: pass
// it to the resource the lock protects, so that the resource can refuse an
// older holder's late writes.
type Lease struct {
	Name   string
	Mode   Mode
	Token  Token
	TTL    time.Duration // 0: no lease; held while the session lives
	Waited time.Duration // how long the request queued (0 if granted at once)

	c    *Client
	done chan struct{}
	err  error // guarded by c.mu
}

// Done is closed when the lock is no longer held: released by Unlock, or
// lost (lease expired, server shut down, connection lost, client closed).
// Whoever holds a lock for a long task should watch Done and stop the task
// when it closes: the server may have granted the lock to someone else.
func (l *Lease) Done() <-chan struct{} { return l.done }

// Err is nil while the lock is held; then why it ended: ErrUnlocked after
// Unlock, or ErrLeaseExpired, ErrShutdown, ErrConnLost, ErrClosed.
func (l *Lease) Err() error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.err
}

// Unlock releases the lock; see Client.Unlock.
func (l *Lease) Unlock(ctx context.Context) error { return l.c.Unlock(ctx, l) }

func (l *Lease) end(err error) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.err != nil {
		return
	}
	l.err = err
	close(l.done)
	if c.leases[l.Name] == l {
		delete(c.leases, l.Name)
	}
}
