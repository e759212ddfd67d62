package lockd

import (
	"testing"
	"time"
)

// The table keeps a deadline only for a live lease or a bounded wait: locks
// that come and go, renewals and withdrawn waits leave nothing behind.
func TestTableDeadlinesFollowLiveLocks(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	for i := 0; i < 1000; i++ {
		now := at(time.Duration(i) * time.Millisecond)
		mustLock(t, tb, now, 1, LockRequest{Name: "x", TTL: time.Hour})
		if _, err := tb.Unlock(now, 1, "x", 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tb.deadlines); n != 0 {
		t.Fatalf("after 1000 lock/unlock pairs with a lease: %d deadlines kept, want 0", n)
	}
	mustLock(t, tb, t0, 1, LockRequest{Name: "hold", TTL: 24 * time.Hour})
	for i := 0; i < 1000; i++ {
		if _, _, err := tb.Renew(at(time.Duration(i)*time.Second), 1, "hold", 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(tb.deadlines); n != 1 {
		t.Fatalf("after 1000 renewals of one lease: %d deadlines, want 1 (moved in place)", n)
	}
	if next, _ := tb.NextDeadline(); !next.Equal(at(999*time.Second + 24*time.Hour)) {
		t.Fatalf("renewed lease's deadline: %v, want the last renewal + 24h", next)
	}
	// Waits withdrawn by CANCEL, granted, or ended with their session.
	mustLock(t, tb, t0, 2, LockRequest{Name: "hold", Wait: time.Hour})
	if _, err := tb.Cancel(t0, 2, "hold"); err != nil {
		t.Fatal(err)
	}
	mustLock(t, tb, t0, 2, LockRequest{Name: "hold", Wait: time.Hour})
	tb.Close(t0, 2)
	if n := len(tb.deadlines); n != 1 {
		t.Fatalf("after withdrawn waits: %d deadlines, want 1 (the lease)", n)
	}
	tb.Close(t0, 1)
	if n := len(tb.deadlines); n != 0 {
		t.Fatalf("after the last session closed: %d deadlines, want 0", n)
	}
}

// Simultaneous deadlines fall due in an order fixed by the table's state
// (name, then session), not by the order in which they were scheduled.
func TestTableSimultaneousDeadlinesInStateOrder(t *testing.T) {
	for _, order := range [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b", "c", "a"}} {
		tb := newTestTable(t, 1)
		for _, n := range order {
			mustLock(t, tb, t0, 1, LockRequest{Name: n, TTL: time.Second})
		}
		var got []string
		for _, ev := range tb.Advance(at(time.Second)) {
			got = append(got, ev.Name)
		}
		if len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "c" {
			t.Fatalf("locked in order %v: expiries in order %v, want [a b c]", order, got)
		}
	}
}

// ExtendLeases gives every lease a full TTL from now (a server that stood
// still), and a holder that then does not renew loses the lock as usual.
func TestTableExtendLeases(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	mustLock(t, tb, t0, 1, LockRequest{Name: "short", TTL: time.Second})
	mustLock(t, tb, t0, 1, LockRequest{Name: "long", TTL: time.Hour})
	mustLock(t, tb, t0, 1, LockRequest{Name: "none"}) // no lease: nothing to extend
	mustLock(t, tb, t0, 2, LockRequest{Name: "short", Wait: -1})
	stall := at(10 * time.Second) // past "short"'s expiry, not "long"'s
	if n := tb.ExtendLeases(stall); n != 2 {
		t.Fatalf("ExtendLeases moved %d leases, want 2", n)
	}
	if evs := tb.Advance(stall); len(evs) != 0 {
		t.Fatalf("right after ExtendLeases, Advance applied %v; want nothing", evs)
	}
	if g, _ := tb.Holding(1, "short"); !g.Expires.Equal(stall.Add(time.Second)) {
		t.Fatalf("extended lease expires %v, want %v", g.Expires, stall.Add(time.Second))
	}
	if g, _ := tb.Holding(1, "long"); !g.Expires.Equal(stall.Add(time.Hour)) {
		t.Fatalf("extended lease expires %v, want %v", g.Expires, stall.Add(time.Hour))
	}
	evs := tb.Advance(stall.Add(time.Second))
	if len(evs) != 2 || evs[0].Kind != EventLost || evs[0].Session != 1 || evs[1].Kind != EventGranted || evs[1].Session != 2 {
		t.Fatalf("a full TTL after the extension: %v; want session 1 LOST short, then session 2 GRANTED", evs)
	}
}
