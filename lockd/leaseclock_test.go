package lockd

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"mplock/internal/netfault"
)

// TestLeaseEndsByItsOwnClockOnBlackholedLink cuts a holder's link without
// FIN or RST. The server expires the lease after its TTL and grants the
// lock to a waiter; the holder hears nothing, ever, and must end its lease
// by its own clock: its Done closes, with ErrLeaseExpired, and its
// Deadline, at which Done closes, is before the moment the server granted
// the lock to the waiter (STATUS's since=, by the same clock: one process).
// It also keeps its lease while the link works (renewals move the
// deadline).
func TestLeaseEndsByItsOwnClockOnBlackholedLink(t *testing.T) {
	_, addr := startServer(t, Config{})
	proxy := netfault.Start(t, addr)
	const ttl = 400 * time.Millisecond
	a := dial(t, proxy.Addr(), "A")
	la, err := a.Lock(testCtx(t), "job", Exclusive, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := la.Length(), ttl-ttl/100; got != want {
		t.Fatalf("Length %v, want the TTL less 1%%, %v", got, want)
	}
	// Renewals confirmed: the deadline moves on, twice.
	first := la.Deadline()
	for i, d := 0, first; i < 2; i++ {
		for prev := d; !d.After(prev); d = la.Deadline() {
			select {
			case <-la.Done():
				t.Fatalf("lease lost on a healthy link: %v", la.Err())
			case <-time.After(ttl / 20):
			}
		}
	}

	proxy.Blackhole()
	cut := time.Now()
	b := dial(t, addr, "B")
	grantedAt := make(chan time.Time, 1)
	go func() {
		lb, err := b.Lock(testCtx(t), "job", Exclusive)
		if err != nil {
			t.Errorf("B: %v", err)
			grantedAt <- time.Time{}
			return
		}
		grantedAt <- serverGrantTime(t, b, lb)
	}()
	var ended time.Time
	select {
	case <-la.Done():
		ended = time.Now()
	case <-testCtx(t).Done():
		t.Fatal("A's lease never ended on the black-holed link")
	}
	if !errors.Is(la.Err(), ErrLeaseExpired) {
		t.Fatalf("A's lease ended with %v, want ErrLeaseExpired", la.Err())
	}
	granted, deadline := <-grantedAt, la.Deadline().Round(0)
	if !deadline.Before(granted) {
		t.Fatalf("A's deadline %v after the server granted the lock to B", deadline.Sub(granted))
	}
	// Done closes at the deadline; this test's goroutine sees it a little
	// later on a busy machine, never half a TTL later.
	if late := ended.Sub(deadline); late > ttl/2 {
		t.Fatalf("A's Done closed %v after its deadline", late)
	}
	t.Logf("link cut at 0; A's deadline at +%v; B granted by the server at +%v",
		deadline.Sub(cut).Round(time.Millisecond), granted.Sub(cut).Round(time.Millisecond))
}

// serverGrantTime is when the server granted l, by STATUS (since=).
func serverGrantTime(t *testing.T, c *Client, l *Lease) time.Time {
	st, err := c.Status(testCtx(t), l.Name)
	if err != nil {
		t.Error(err)
		return time.Time{}
	}
	for _, ls := range st.Locks {
		for _, h := range ls.Holders {
			if h.Token == l.Token {
				return h.Since
			}
		}
	}
	t.Errorf("%s token %d not in STATUS %+v", l.Name, l.Token, st)
	return time.Time{}
}

// TestLockWithoutLeaseEndsWithSilentSession: a lock without a lease lasts
// as long as the session, and the server closes a session silent for its
// idle timeout. A holder that does not ping (Keepalive < 0), behind a
// black-holed link, must give the lock up by its own clock before the
// server closes the session and grants the lock to a waiter.
func TestLockWithoutLeaseEndsWithSilentSession(t *testing.T) {
	const idle = 600 * time.Millisecond
	_, addr := startServer(t, Config{IdleTimeout: idle})
	proxy := netfault.Start(t, addr)
	a, err := Dial(testCtx(t), proxy.Addr(), Options{Client: "A", Keepalive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	la, err := a.Lock(testCtx(t), "job", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := la.Length(), (idle-idle/8)-(idle-idle/8)/100; got != want {
		t.Fatalf("Length %v, want 7/8 of the idle timeout less 1%%, %v", got, want)
	}
	proxy.Blackhole()
	b := dial(t, addr, "B")
	grantedAt := make(chan time.Time, 1)
	go func() {
		lb, err := b.Lock(testCtx(t), "job", Exclusive)
		if err != nil {
			t.Errorf("B: %v", err)
			grantedAt <- time.Time{}
			return
		}
		grantedAt <- serverGrantTime(t, b, lb)
	}()
	select {
	case <-la.Done():
	case <-testCtx(t).Done():
		t.Fatal("A's lock never ended on the black-holed link")
	}
	if !errors.Is(la.Err(), ErrConnLost) {
		t.Fatalf("A's lock ended with %v, want ErrConnLost", la.Err())
	}
	if granted, deadline := <-grantedAt, la.Deadline().Round(0); !deadline.Before(granted) {
		t.Fatalf("A's deadline %v after the server granted the lock to B", deadline.Sub(granted))
	}
}

// scriptedServer is a one-session fake server: for each request line it
// calls answer, which returns the lines to send back (events included).
func scriptedServer(t *testing.T, answer func(line string) []string) string {
	t.Helper()
	ln, addr := listen(t)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		go func() { <-testCtx(t).Done(); conn.Close() }()
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSpace(line)
			if strings.HasPrefix(line, "HELLO ") {
				fmt.Fprintf(conn, "OK HELLO session=1 idle=0s ttl=0s max-locks=256 max-line=1024 auth=false server=mplock/script\n")
				continue
			}
			for _, out := range answer(line) {
				if _, err := fmt.Fprintf(conn, "%s\n", out); err != nil {
					return
				}
			}
		}
	}()
	return addr
}

// TestLeaseFromQueueIsRenewedBeforeLockReturns: a grant from the queue
// happened at a moment the client cannot bound from below (waited= is by
// the server's clock), so the client renews it at once and Lock returns
// only when that renewal is confirmed, with the deadline counted from the
// renewal's send time.
func TestLeaseFromQueueIsRenewedBeforeLockReturns(t *testing.T) {
	const ttl = time.Second
	renewing := make(chan time.Time, 1) // when the fake server read the RENEW
	reply := make(chan struct{})
	granting := make(chan time.Time, 1) // when the fake server sent the grant
	addr := scriptedServer(t, func(line string) []string {
		switch {
		case strings.HasPrefix(line, "LOCK job"):
			granting <- time.Now()
			return []string{"OK QUEUED job WRITE position=1", "* GRANTED job WRITE token=7 ttl=1s waited=10s"}
		case line == "RENEW job token=7":
			renewing <- time.Now()
			<-reply
			return []string{"OK RENEWED job WRITE token=7 ttl=1s"}
		case strings.HasPrefix(line, "UNLOCK job"):
			return []string{"OK UNLOCKED job token=7"}
		}
		return []string{"ERR unknown " + line}
	})
	c := dial(t, addr, "queued")
	got := make(chan *Lease, 1)
	go func() {
		l, err := c.Lock(testCtx(t), "job", Exclusive, WithTTL(ttl))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	var renewAt time.Time
	select {
	case renewAt = <-renewing:
	case l := <-got:
		t.Fatalf("Lock returned %+v before renewing a grant from the queue", l)
	case <-testCtx(t).Done():
		t.Fatal("no RENEW after a grant from the queue")
	}
	select {
	case l := <-got:
		t.Fatalf("Lock returned %+v before its renewal was confirmed", l)
	default:
	}
	close(reply)
	l := <-got
	if l == nil {
		return
	}
	grantSent := <-granting
	// The deadline counts from the RENEW's send time: after the grant was
	// sent, no later than the server read the RENEW; plus the TTL less 1%.
	span := ttl - ttl/100
	if d := l.Deadline(); d.Before(grantSent.Add(span)) || d.After(renewAt.Add(span)) {
		t.Fatalf("deadline at grant+%v, want between grant+%v and renewal+%v (renewal at grant+%v)",
			d.Sub(grantSent), span, span, renewAt.Sub(grantSent))
	}
	if l.Waited != 10*time.Second || l.Token != 7 {
		t.Fatalf("lease %+v", l)
	}
}

// TestLeaseDeadlineCountsFromSendTime: the reply to a LOCK may come late;
// the server started the TTL when it granted, which was after the LOCK was
// sent but maybe long before the reply arrived. The deadline must count
// from the send time, not the arrival.
func TestLeaseDeadlineCountsFromSendTime(t *testing.T) {
	const ttl, latency = time.Second, 300 * time.Millisecond
	reading := make(chan time.Time, 1) // when the fake server read the LOCK
	addr := scriptedServer(t, func(line string) []string {
		switch {
		case strings.HasPrefix(line, "LOCK job"):
			reading <- time.Now()
			time.Sleep(latency) // the reply's trip, as a slow link would make it
			return []string{"OK LOCKED job WRITE token=1 ttl=1s"}
		case strings.HasPrefix(line, "RENEW job"):
			return []string{"OK RENEWED job WRITE token=1 ttl=1s"}
		}
		return []string{"OK UNLOCKED job token=1"}
	})
	c := dial(t, addr, "slow")
	l, err := c.Lock(testCtx(t), "job", Exclusive, WithTTL(ttl))
	if err != nil {
		t.Fatal(err)
	}
	arrived, read := time.Now(), <-reading
	if d := l.Deadline(); d.After(read.Add(ttl)) {
		t.Fatalf("deadline %v after the LOCK was read + TTL (the reply took %v): counted from the reply's arrival, not the send",
			d.Sub(read.Add(ttl)), arrived.Sub(read).Round(time.Millisecond))
	}
}
