package lockd

import (
	"context"
	"fmt"
	"time"
)

// The client's lease clock: when a lock it holds is surely over, whatever
// the server says or fails to say. The reasoning is in Lease's doc comment.

// minTick is the shortest interval between two keepalive pings. It follows
// from what the server announced (idle=), which may be anything: a third of
// idle=2ns is zero, which time.NewTicker refuses with a panic, and a
// nanosecond would have the client send requests as fast as it can.
const minTick = time.Millisecond

// allowance shortens every span the client counts on its own clock (a TTL,
// 7/8 of the idle timeout) by 1%: for a server clock that runs faster than
// the client's (NTP keeps rates within 0.05%), and for the lateness of the
// client's own timers, which fire a little after their time on a busy
// machine, while the server expires a lease only the link's one-way delay
// after the client's deadline, microseconds on loopback. Chubby's clients
// keep their local lease timeout conservative in the same way.
func allowance(span time.Duration) time.Duration { return span - span/100 }

// minRenew is the shortest interval between two renewals. A server refuses
// ttl= below MinTTL (1ms), whose sixth is 166µs; only a hostile or broken
// server announces less, and its leases run out before they can be renewed.
const minRenew = 100 * time.Microsecond

// Deadline is the moment from which the server may have given the lock to
// someone else, unless a renewal sent before then is confirmed first: the
// send time of the last LOCK or RENEW the server confirmed plus the TTL,
// or, for a lock without a lease (or if it comes earlier), the send time of
// the last request the server answered plus 7/8 of its idle timeout; each
// span less 1% (see allowance). Done closes at the Deadline at the latest. It moves later with every
// confirmed renewal (or, without a lease, every answered request).
//
// The zero Time means the lock has no deadline: no lease, on a server
// without an idle timeout. Such a lock lasts as long as the connection, and
// a server that hears nothing from this client never releases it.
func (l *Lease) Deadline() time.Time {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Time
	if l.ttl > 0 {
		d = l.confirmed.Add(allowance(l.ttl))
	}
	if s := c.sessionDeadline(); !s.IsZero() && (d.IsZero() || s.Before(d)) {
		d = s
	}
	return d
}

// Length is how far a confirmed renewal moves the Deadline: the lease's
// TTL, or 7/8 of the server's idle timeout for a lock without a lease
// (the shorter of the two when both apply), less 1%; zero if there is no
// Deadline.
// Renewals go out every third of the TTL, keepalive pings every third of
// the idle timeout, so on a healthy link the Deadline stays more than half
// a Length ahead. Something that must stop before the Deadline, and needs
// time to stop, should start stopping no earlier than Length/3 before it.
func (l *Lease) Length() time.Duration {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	n := allowance(l.ttl)
	if b := c.sessionBound(); b > 0 && (n <= 0 || b < n) {
		n = b
	}
	return max(n, 0)
}

// granted makes the Lease for a LOCKED reply (queued false, sent the LOCK's
// send time) or a GRANTED event (queued true). It runs in the reader
// goroutine, so that a later LOST finds the lease.
func (c *Client) granted(w *lockWait, r *reply, sent time.Time, queued bool) *Lease {
	l := &Lease{Name: r.arg(0), Mode: r.mode(), Token: Token(r.uint("token")), TTL: r.dur("ttl"),
		c: c, done: make(chan struct{}), ready: make(chan struct{}), kick: make(chan struct{}, 1)}
	if queued {
		l.Waited = r.dur("waited")
	}
	l.ttl = l.TTL
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.waits[w.name] == w {
		delete(c.waits, w.name)
	}
	if c.err != nil {
		l.err = c.err
		close(l.done)
		return l
	}
	c.leases[l.Name] = l
	if l.TTL <= 0 {
		close(l.ready) // bounded by the session alone, if at all
		return l
	}
	if queued {
		l.confirmed = time.Now()
	} else {
		l.confirmed = sent
		close(l.ready)
	}
	// Created under c.mu, which checkLease takes first: it never sees
	// l.timer unset, however soon it fires.
	l.timer = time.AfterFunc(time.Until(l.confirmed.Add(allowance(l.ttl))), func() { c.checkLease(l) })
	c.wg.Add(1)
	go c.renew(l)
	return l
}

// checkLease ends l with ErrLeaseExpired if its TTL deadline has passed,
// and otherwise sets its timer for the deadline. The session deadline is
// watched by the client (watchSession), which ends every lease with it.
func (c *Client) checkLease(l *Lease) {
	c.mu.Lock()
	if l.err != nil || l.ttl <= 0 {
		c.mu.Unlock()
		return
	}
	deadline := l.confirmed.Add(allowance(l.ttl))
	if left := time.Until(deadline); left > 0 {
		l.timer.Reset(left)
		c.mu.Unlock()
		return
	}
	var err error
	select {
	case <-l.ready:
		err = fmt.Errorf("%w: no renewal of %s (token %d) confirmed within its %v TTL; the server may have granted it to another client",
			ErrLeaseExpired, l.Name, l.Token, l.ttl)
	default:
		err = fmt.Errorf("%w: %s (token %d) was granted with a %v TTL, which ran out before a renewal could be confirmed",
			ErrLeaseExpired, l.Name, l.Token, l.ttl)
	}
	l.endLocked(err)
	c.mu.Unlock()
	c.releaseGrant(l)
}

// abandon ends l with err and asks the server to release that grant,
// without waiting for the answer: for a lease given up when no reply may
// ever come.
func (c *Client) abandon(l *Lease, err error) {
	l.end(err)
	c.releaseGrant(l)
}

// releaseGrant sends UNLOCK for l's grant and for no other (token=): the
// server may still hold it (a renewal in flight, a server that was itself
// stalled), and nobody else may have it until it expires. The reply, if
// any, is not awaited.
func (c *Client) releaseGrant(l *Lease) {
	c.sendChange(context.Background(), Request{Verb: VerbUnlock, Name: l.Name, Token: l.Token}, nil)
}

// renew keeps l alive: a RENEW every TTL/3 after the send time of the last
// confirmed one, and while one goes unanswered, another every TTL/6, each
// without waiting for the previous reply, so that a slow reply does not
// delay the next renewal. A grant from the queue is renewed at once (see
// Lease). Sending never ends the lease: its timer does, at the deadline,
// even while a write blocks.
func (c *Client) renew(l *Lease) {
	defer c.wg.Done()
	ctx := context.Background()
	if c.cluster.Load() {
		// A renewal may wait for a slot (sendChange): not past the lease.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-l.done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	every, retry := max(l.TTL/3, minRenew), max(l.TTL/6, minRenew)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var sent time.Time // of the last RENEW sent
	for {
		c.mu.Lock()
		confirmed := l.confirmed
		c.mu.Unlock()
		var next time.Time
		select {
		case <-l.ready:
			next = confirmed.Add(every)
			if sent.After(confirmed) {
				next = sent.Add(retry) // the last one is unanswered
			}
		default:
			if !sent.IsZero() {
				next = sent.Add(retry)
			}
		}
		if wait := time.Until(next); wait > 0 {
			t.Reset(wait)
			select {
			case <-l.done:
				return
			case <-l.kick:
			case <-t.C:
			}
			continue
		}
		select {
		case <-l.done:
			return
		default:
		}
		cl, err := c.sendChange(ctx, Request{Verb: VerbRenew, Name: l.Name, Token: l.Token}, func(cl *call) { c.renewed(l, cl) })
		if err != nil {
			return // the client or the lease has ended
		}
		sent = cl.sent
	}
}

// renewed handles a RENEW's reply, in the reader goroutine.
func (c *Client) renewed(l *Lease, cl *call) {
	r := &cl.reply
	switch {
	case r.kind == replyOK && r.word == "RENEWED":
		c.mu.Lock()
		if l.err == nil && cl.sent.After(l.confirmed) {
			l.confirmed = cl.sent
			if ttl := r.dur("ttl"); ttl > 0 {
				l.ttl = ttl
			}
			select {
			case <-l.ready:
			default:
				close(l.ready)
			}
		}
		c.mu.Unlock()
		select {
		case l.kick <- struct{}{}:
		default:
		}
	case r.kind == replyErr:
		// notheld: the lease ran out at the server (its LOST event, if
		// any, came first and has ended the lease already).
		l.end(fmt.Errorf("%w: RENEW refused: %v", ErrLeaseExpired, r.err()))
	}
}
