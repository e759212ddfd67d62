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
// by its own clock first: its Done closes before the waiter's Lock returns.
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
	if got := la.Length(); got != ttl {
		t.Fatalf("Length %v, want the TTL %v", got, ttl)
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
	granted := make(chan time.Time, 1)
	go func() {
		if _, err := b.Lock(testCtx(t), "job", Exclusive); err != nil {
			t.Errorf("B: %v", err)
		}
		granted <- time.Now()
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
	grantedAt := <-granted
	if !ended.Before(grantedAt) {
		t.Fatalf("A's lease ended %v after B was granted the lock", ended.Sub(grantedAt))
	}
	t.Logf("link cut at 0; A's lease ended at +%v; B granted at +%v (%v later)",
		ended.Sub(cut).Round(time.Millisecond), grantedAt.Sub(cut).Round(time.Millisecond), grantedAt.Sub(ended).Round(time.Millisecond))
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
	if got, want := la.Length(), idle-idle/8; got != want {
		t.Fatalf("Length %v, want 7/8 of the idle timeout, %v", got, want)
	}
	proxy.Blackhole()
	b := dial(t, addr, "B")
	granted := make(chan time.Time, 1)
	go func() {
		if _, err := b.Lock(testCtx(t), "job", Exclusive); err != nil {
			t.Errorf("B: %v", err)
		}
		granted <- time.Now()
	}()
	var ended time.Time
	select {
	case <-la.Done():
		ended = time.Now()
	case <-testCtx(t).Done():
		t.Fatal("A's lock never ended on the black-holed link")
	}
	if !errors.Is(la.Err(), ErrConnLost) {
		t.Fatalf("A's lock ended with %v, want ErrConnLost", la.Err())
	}
	if grantedAt := <-granted; !ended.Before(grantedAt) {
		t.Fatalf("A's lock ended %v after B was granted it", ended.Sub(grantedAt))
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
	// sent, no later than the server read the RENEW.
	if d := l.Deadline(); d.Before(grantSent.Add(ttl)) || d.After(renewAt.Add(ttl)) {
		t.Fatalf("deadline at grant+%v, want between grant+%v and renewal+%v (renewal at grant+%v)",
			d.Sub(grantSent), ttl, ttl, renewAt.Sub(grantSent))
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
