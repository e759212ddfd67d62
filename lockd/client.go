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
	// Whatever it is, the client also ends itself once nothing it sent
	// has been answered for 7/8 of the server's idle timeout: the server
	// may have closed the session by then (see Lease.Deadline).
	Keepalive time.Duration
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
	if c.sessionBound() > 0 {
		c.mu.Lock()
		c.sessionTimer = time.AfterFunc(c.sessionBound(), c.watchSession)
		c.mu.Unlock()
	}
	k := opts.Keepalive
	if k == 0 && c.idle > 0 {
		k = max(c.idle/3, minTick)
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

// send writes one request and queues its call, in the same order.
func (c *Client) send(req Request, hook func(*call)) (*call, error) {
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
	// Taken before the call is queued, so that the reader goroutine sees
	// it; earlier than the write, it is still a lower bound.
	cl.sent = time.Now()
	c.pending = append(c.pending, cl)
	c.mu.Unlock()
	c.conn.SetWriteDeadline(cl.sent.Add(writeTimeout))
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
		if cl.sent.After(c.confirmed) {
			c.confirmed = cl.sent
		}
		c.mu.Unlock()
		cl.reply, cl.data, data = r, data, nil
		if cl.hook != nil {
			cl.hook(cl)
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
	if c.sessionTimer != nil {
		c.sessionTimer.Stop()
	}
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

// sessionBound is how long after the send time of a request the server
// answered the session surely still exists: the server closes a session
// that sends nothing for its idle timeout, and moves its deadline lazily,
// so it closes one after between 7/8 of it and all of it (session.go); less
// the allowance. Zero when the server has no idle timeout.
func (c *Client) sessionBound() time.Duration {
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
	silent := time.Since(c.confirmed)
	c.mu.Unlock()
	c.fail(fmt.Errorf("%w: nothing sent in the last %v was answered, and the server closes a session silent for its idle timeout (%v)",
		ErrConnLost, silent.Round(time.Millisecond), c.idle))
}
