package lockd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// lockWait is one Lock in progress: its reply, then its grant or failure,
// arrive on ch.
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

// LockOption adjusts one Lock or TryLock.
type LockOption func(*lockOptions)

type lockOptions struct {
	ttl     time.Duration
	hasTTL  bool
	wait    time.Duration
	hasWait bool
	onQueue func(position int)
}

// WithTTL asks for a lease: the server takes the lock back if it is not
// renewed within ttl. The client renews it every ttl/3 while it holds it;
// the lease is lost (Done closes, Err is ErrLeaseExpired) only if renewals
// do not get through, for example when this process is stopped or the
// network is cut. Zero asks for no lease even if the server has a default.
// The server refuses a ttl that fails ValidTTL (ErrSyntax).
func WithTTL(ttl time.Duration) LockOption {
	return func(o *lockOptions) { o.ttl, o.hasTTL = ttl, true }
}

// WithWait bounds the wait in the server's queue: if the lock is not granted
// within d, the server withdraws the request and Lock returns ErrTimeout.
// Unlike a ctx deadline, the server knows the bound: its STATUS shows the
// wait's deadline, so a deadlock detector can tell a wait that will end by
// itself from one that never will. d = 0 is TryLock.
func WithWait(d time.Duration) LockOption {
	return func(o *lockOptions) { o.wait, o.hasWait = d, true }
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

	req := Request{Verb: VerbLock, Name: name, Mode: mode, TTL: o.ttl, HasTTL: o.hasTTL, Wait: o.wait, HasWait: o.hasWait}
	if try {
		req.Wait, req.HasWait = 0, true
	}
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

// minTick is the shortest interval between two renewals of a lease, or two
// keepalive pings. Both intervals follow from what the server announced
// (ttl=, idle=), which may be anything: a third of ttl=2ns is zero, which
// time.NewTicker refuses with a panic, and a nanosecond would have the
// client send requests as fast as it can.
const minTick = time.Millisecond

func (c *Client) renew(l *Lease) {
	defer c.wg.Done()
	t := time.NewTicker(max(l.TTL/3, minTick))
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
