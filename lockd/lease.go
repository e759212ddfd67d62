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
	bounded bool // asked with a wait= bound (its end is then a timeout)
	// queued: the server answered QUEUED (or, for a wait the client
	// found when it resumed, listed it): the wait is in the server's
	// queue. Until then its LOCK may not even be sent. Guarded by c.mu.
	queued bool
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
// renewed within ttl. The client renews it every ttl/3 while it holds it,
// and again every ttl/6 while a renewal goes unanswered; the lease is lost
// (Done closes, Err is ErrLeaseExpired) only if no renewal is confirmed in
// time, for example when this process is stopped or the network is cut,
// and then by the client's own clock (see Lease). Zero asks for no lease
// even if the server has a default. The server refuses a ttl that fails
// ValidTTL (ErrSyntax).
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
// withdrawal is released) and ctx's error returned. A lease granted from
// the queue is renewed at once, and Lock returns only when that renewal is
// confirmed (see Lease). Errors: ErrHeld if this client already holds or
// waits for name, ErrBadName, ErrLimit, ErrShutdown, ErrConnLost, and
// ErrLeaseExpired for a lease that ran out before it could be handed over
// (a TTL shorter than the round trip).
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
	w := &lockWait{name: name, ch: make(chan lockOutcome, 2), onQueue: o.onQueue, bounded: o.hasWait || try}
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
	if _, err := c.sendChange(ctx, req, func(cl *call) { c.lockReply(w, cl) }); err != nil {
		c.dropWait(w)
		return nil, err
	}
	for {
		select {
		case out := <-w.ch:
			if out.queued {
				continue
			}
			if out.err != nil {
				return nil, out.err
			}
			return c.handOver(ctx, out.lease)
		case <-ctx.Done():
			return nil, c.withdraw(w, ctx.Err())
		}
	}
}

// handOver returns l to Lock's caller once its deadline is known (a grant
// from the queue waits for its first renewal) and still ahead.
func (c *Client) handOver(ctx context.Context, l *Lease) (*Lease, error) {
	select {
	case <-l.ready:
	case <-l.done:
	case <-ctx.Done():
		c.abandon(l, ctx.Err())
		return nil, ctx.Err()
	}
	c.checkLease(l) // a grant whose deadline passed before it arrived ends here
	select {
	case <-l.done:
		return nil, l.Err()
	default:
		return l, nil
	}
}

// withdraw gives up a lock request whose caller's ctx ended. CANCEL is sent
// after the LOCK, so by the time its reply is read, the LOCK's reply and
// any grant have been read too; a lease granted meanwhile is released.
func (c *Client) withdraw(w *lockWait, why error) error {
	if cl, err := c.sendChange(context.Background(), Request{Verb: VerbCancel, Name: w.name}, nil); err == nil {
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
				c.abandon(out.lease, why)
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
func (c *Client) lockReply(w *lockWait, cl *call) {
	r := &cl.reply
	if r.kind == replyOK && c.cluster.Load() {
		c.mu.Lock()
		settled := c.waits[w.name] != w
		c.mu.Unlock()
		if settled {
			// The answer to a LOCK sent again after a resume, whose grant
			// an event of the new connection delivered first.
			return
		}
	}
	switch {
	case r.kind == replyOK && r.word == "LOCKED":
		w.ch <- lockOutcome{lease: c.granted(w, r, cl.sent, false)}
	case r.kind == replyOK && r.word == "QUEUED":
		c.mu.Lock()
		w.queued = true
		c.mu.Unlock()
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

// Unlock releases the lease. Releasing a lease already lost returns why it
// was lost (ErrLeaseExpired, ErrShutdown, ErrConnLost...); releasing one
// twice returns nil. Unlock waits for the server's reply until ctx ends,
// or until the lease's deadline, after which the lock is over anyway.
//
// Once the UNLOCK is sent, the lease ends whatever comes back: with
// ErrUnlocked on OK UNLOCKED, and otherwise (ctx ended first, the client
// ended, any refusal) with ErrLeaseExpired saying why: the lock may or may
// not be released, and the client cannot claim it holds it. A refusal
// other than "not held" (the session may still hold it) is followed by an
// UNLOCK of that grant alone (token=), unanswered. If ctx ends before the
// UNLOCK could be sent (a cluster client waits while RequestWindow
// changes are unanswered), nothing was sent and the lease stays.
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
	cl, err := c.sendChange(ctx, Request{Verb: VerbUnlock, Name: l.Name, Token: l.Token}, nil)
	if err != nil {
		return err
	}
	select {
	case <-cl.done:
	case <-l.done:
		if err := l.Err(); !errors.Is(err, ErrUnlocked) {
			return err
		}
		return nil
	case <-ctx.Done():
		l.end(fmt.Errorf("%w: the UNLOCK of %s (token %d) was sent, but %v before its answer: the lock may or may not be released yet",
			ErrLeaseExpired, l.Name, l.Token, ctx.Err()))
		return ctx.Err()
	}
	if cl.err == nil {
		err = cl.reply.err()
	} else {
		err = cl.err
	}
	switch {
	case err == nil:
		l.end(ErrUnlocked)
	case errors.Is(err, ErrNotHolder):
		l.end(ErrLeaseExpired)
	case cl.err != nil:
		l.end(fmt.Errorf("%w: the UNLOCK of %s (token %d) had no answer: %w", ErrLeaseExpired, l.Name, l.Token, err))
	default:
		l.end(fmt.Errorf("%w: the UNLOCK of %s (token %d) was refused (%w); it is released again by its token", ErrLeaseExpired, l.Name, l.Token, err))
		c.releaseGrant(l)
	}
	return err
}

// Lease is a lock held. Its Token is the fencing token of this grant: pass
// it to the resource the lock protects, so that the resource can refuse an
// older holder's late writes.
//
// # The client's lease clock
//
// The server starts a lease's TTL when it grants the lock and restarts it
// when it applies a RENEW; the client sees neither moment, only lower
// bounds of them: a LOCK granted at once was granted after the LOCK was
// sent, and a RENEW applied after it was sent. So the lock is surely held
// until the send time of the last LOCK or RENEW the server confirmed plus
// the TTL, and from then on the server may have given it to someone else.
// That moment is the lease's Deadline; Done closes then at the latest, with
// ErrLeaseExpired, whether or not anything arrives from the server (a
// black-holed link sends neither replies nor FIN nor RST). The same holds
// for a lock without a lease on a server with an idle timeout: the server
// closes a session silent for 7/8 of its idle timeout at the earliest,
// counted from a request it answered.
//
// A grant from the queue (* GRANTED) happened at some moment after the LOCK
// was sent that the client cannot bound from below without assuming how
// long the request waited by the server's clock. Rather than assume, the
// client renews such a lease at once, and Lock hands it over only when
// that renewal is confirmed, with a deadline counted from the renewal's
// send time. Until then it is not safe to use; if no confirmation comes
// within a TTL of the grant's arrival, it has surely expired and Lock
// fails with ErrLeaseExpired.
//
// The reasoning assumes that the client's and the server's clocks run at
// about the same rate over a TTL, as etcd's leases do; it needs no
// synchronised clocks. The client takes 1% off every span it counts, for
// rates that differ and for its own timers' lateness. A client process that is stopped (SIGSTOP, a VM pause) cannot
// act at its deadline; neither can any program it runs, which is what the
// fencing token is for.
type Lease struct {
	Name   string
	Mode   Mode
	Token  Token
	TTL    time.Duration // 0: no lease; held while the session lives
	Waited time.Duration // how long the request queued (0 if granted at once)

	c    *Client
	done chan struct{}
	err  error // guarded by c.mu

	// The lease clock (leaseclock.go), guarded by c.mu. Once ready is
	// closed, confirmed is the send time of the last LOCK or RENEW the
	// server confirmed. Before (a grant from the queue awaiting its first
	// renewal), it is when the grant arrived, which bounds the server's
	// start of the TTL from above: the lease is surely over at
	// confirmed+ttl.
	confirmed time.Time
	ttl       time.Duration // as the server last announced it
	ready     chan struct{}
	kick      chan struct{} // a renewal was confirmed: the renewer replans
	timer     *time.Timer   // ends the lease at its deadline
}

// Done is closed when the lock is no longer held: released by Unlock, or
// lost (lease expired, server shut down, connection lost, client closed),
// and at the lease's Deadline at the latest. Whoever holds a lock for a
// long task should watch Done and stop the task when it closes, or better,
// before: the server may give the lock to someone else from the Deadline
// on.
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
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.endLocked(err)
}

// endLocked ends the lease with err unless it has ended; c.mu must be held.
func (l *Lease) endLocked(err error) {
	c := l.c
	if l.err != nil {
		return
	}
	l.err = err
	close(l.done)
	if l.timer != nil {
		l.timer.Stop()
	}
	if c.leases[l.Name] == l {
		delete(c.leases, l.Name)
	}
}
