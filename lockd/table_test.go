package lockd

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// t0 is the table tests' clock origin; the table never reads a clock, so
// every time here is exact.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func newTestTable(t *testing.T, sessions ...SessionID) *Table {
	t.Helper()
	tb := NewTable(TableLimits{MaxLocksPerSession: 4})
	for _, s := range sessions {
		tb.Open(s, SessionInfo{Client: "P" + string(rune('0'+s)), PID: 1000 + int(s), Since: t0})
	}
	return tb
}

func mustLock(t *testing.T, tb *Table, now time.Time, s SessionID, r LockRequest) LockResult {
	t.Helper()
	if r.Wait == 0 {
		r.Wait = -1
	}
	res, err := tb.Lock(now, s, r)
	if err != nil {
		t.Fatalf("session %d LOCK %s %v: %v", s, r.Name, r.Mode, err)
	}
	return res
}

// granted returns the sessions the events grant to, in order.
func granted(evs []Event) []SessionID {
	var out []SessionID
	for _, ev := range evs {
		if ev.Kind == EventGranted {
			out = append(out, ev.Session)
		}
	}
	return out
}

func equalIDs(a, b []SessionID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTableTwoReadersHoldWhileWriterWaits(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3, 4)
	if r := mustLock(t, tb, at(0), 1, LockRequest{Name: "file_A", Mode: Shared}); !r.Granted {
		t.Fatal("first reader queued on a free lock")
	}
	if r := mustLock(t, tb, at(1), 2, LockRequest{Name: "file_A", Mode: Shared}); !r.Granted {
		t.Fatal("second reader queued while only a reader holds")
	}
	w := mustLock(t, tb, at(2), 3, LockRequest{Name: "file_A", Mode: Exclusive})
	if w.Granted || w.Position != 1 {
		t.Fatalf("writer: granted=%v position=%d, want queued at 1", w.Granted, w.Position)
	}
	// A reader arriving after the queued writer waits behind it: writers
	// do not starve.
	r3 := mustLock(t, tb, at(3), 4, LockRequest{Name: "file_A", Mode: Shared})
	if r3.Granted || r3.Position != 2 {
		t.Fatalf("late reader: granted=%v position=%d, want queued at 2 behind the writer", r3.Granted, r3.Position)
	}
	evs, err := tb.Unlock(at(4), 1, "file_A", 0)
	if err != nil || len(evs) != 0 {
		t.Fatalf("first reader's release: events %v, err %v; want none while the other reader holds", evs, err)
	}
	evs, _ = tb.Unlock(at(5), 2, "file_A", 0)
	if g := granted(evs); !equalIDs(g, []SessionID{3}) {
		t.Fatalf("after both readers left, granted %v, want the writer [3]", g)
	}
	if evs[0].Waited != 3 {
		t.Errorf("writer waited %v, want 3ns", evs[0].Waited)
	}
	evs, _ = tb.Unlock(at(6), 3, "file_A", 0)
	if g := granted(evs); !equalIDs(g, []SessionID{4}) {
		t.Fatalf("after the writer, granted %v, want [4]", g)
	}
}

func TestTableFIFO(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3, 4, 5)
	mustLock(t, tb, at(0), 1, LockRequest{Name: "db", Mode: Exclusive})
	for s := SessionID(2); s <= 5; s++ {
		mode := Exclusive
		if s == 3 || s == 4 {
			mode = Shared
		}
		if r := mustLock(t, tb, at(time.Duration(s)), s, LockRequest{Name: "db", Mode: mode}); r.Position != int(s)-1 {
			t.Fatalf("session %d queued at %d, want %d", s, r.Position, s-1)
		}
	}
	var order [][]SessionID
	holder := []SessionID{1}
	for len(holder) > 0 {
		var next []SessionID
		for _, h := range holder {
			evs, err := tb.Unlock(at(10), h, "db", 0)
			if err != nil {
				t.Fatal(err)
			}
			next = append(next, granted(evs)...)
		}
		if len(next) > 0 {
			order = append(order, next)
		}
		holder = next
	}
	// Writer 2, then readers 3 and 4 together, then writer 5.
	want := [][]SessionID{{2}, {3, 4}, {5}}
	if len(order) != len(want) {
		t.Fatalf("grant rounds %v, want %v", order, want)
	}
	for i := range want {
		if !equalIDs(order[i], want[i]) {
			t.Fatalf("grant rounds %v, want %v", order, want)
		}
	}
}

func TestTableTokensStrictlyRise(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3)
	var last Token
	check := func(tok Token) {
		t.Helper()
		if tok <= last {
			t.Fatalf("token %d after %d: tokens must strictly rise", tok, last)
		}
		last = tok
	}
	for i := 0; i < 50; i++ {
		s := SessionID(i%3 + 1)
		name := []string{"a", "b"}[i%2]
		r := mustLock(t, tb, at(time.Duration(i)), s, LockRequest{Name: name, Mode: Exclusive})
		if !r.Granted {
			t.Fatalf("round %d: queued on a free lock", i)
		}
		check(r.Grant.Token)
		// A second session queues and is granted on release: that grant
		// too takes a new, larger token.
		o := s%3 + 1
		mustLock(t, tb, at(time.Duration(i)), o, LockRequest{Name: name, Mode: Shared})
		evs, _ := tb.Unlock(at(time.Duration(i)), s, name, r.Grant.Token)
		if len(evs) != 1 {
			t.Fatalf("round %d: %d events on release, want 1 grant", i, len(evs))
		}
		check(evs[0].Token)
		if _, err := tb.Unlock(at(time.Duration(i)), o, name, 0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTableReleaseOnlyByHolder(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	r := mustLock(t, tb, at(0), 1, LockRequest{Name: "file_A", Mode: Exclusive})
	if _, err := tb.Unlock(at(1), 2, "file_A", 0); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release by another session: %v, want ErrNotHolder", err)
	}
	if _, err := tb.Unlock(at(1), 2, "file_A", r.Grant.Token); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release by another session with the holder's token: %v, want ErrNotHolder", err)
	}
	if _, err := tb.Unlock(at(1), 1, "file_A", r.Grant.Token+1); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release with a wrong token: %v, want ErrNotHolder", err)
	}
	if _, err := tb.Unlock(at(1), 1, "never", 0); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release of a name never locked: %v, want ErrNotHolder", err)
	}
	if _, err := tb.Unlock(at(2), 1, "file_A", r.Grant.Token); err != nil {
		t.Fatalf("release by the holder: %v", err)
	}
	if _, err := tb.Unlock(at(3), 1, "file_A", 0); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("second release: %v, want ErrNotHolder", err)
	}
}

func TestTableTryLockAndWaitTimeout(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3)
	mustLock(t, tb, at(0), 1, LockRequest{Name: "x", Mode: Exclusive})
	if _, err := tb.Lock(at(1), 2, LockRequest{Name: "x", Mode: Shared, Wait: 0}); !errors.Is(err, ErrLocked) {
		t.Fatalf("try-lock on a held name: %v, want ErrLocked", err)
	}
	if r, _ := tb.Lock(at(1), 2, LockRequest{Name: "y", Wait: 0}); !r.Granted {
		t.Fatal("try-lock on a free name was not granted")
	}
	r, err := tb.Lock(at(10), 3, LockRequest{Name: "x", Mode: Exclusive, Wait: 5 * time.Second})
	if err != nil || r.Granted {
		t.Fatalf("timed wait: %+v %v, want queued", r, err)
	}
	if d, ok := tb.NextDeadline(); !ok || !d.Equal(at(10+5*time.Second)) {
		t.Fatalf("next deadline %v %v, want %v", d, ok, at(10+5*time.Second))
	}
	if evs := tb.Advance(at(10 + 5*time.Second - 1)); len(evs) != 0 {
		t.Fatalf("events before the deadline: %v", evs)
	}
	evs := tb.Advance(at(10 + 5*time.Second))
	if len(evs) != 1 || evs[0].Kind != EventTimedOut || evs[0].Session != 3 || evs[0].Waited != 5*time.Second {
		t.Fatalf("at the deadline: %+v, want one TIMEOUT for session 3 after 5s", evs)
	}
	if st := tb.Status(at(11), "x"); len(st.Locks[0].Waiters) != 0 {
		t.Fatalf("timed-out waiter still queued: %+v", st.Locks[0].Waiters)
	}
	// A release after the timeout grants nothing to the departed waiter.
	if evs, _ := tb.Unlock(at(12), 1, "x", 0); len(evs) != 0 {
		t.Fatalf("release granted %v to a timed-out waiter", evs)
	}
}

func TestTableLeaseExpiryTellsHolder(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	r := mustLock(t, tb, at(0), 1, LockRequest{Name: "job", Mode: Exclusive, TTL: 10 * time.Second})
	if !r.Grant.Expires.Equal(at(10 * time.Second)) {
		t.Fatalf("expires %v, want %v", r.Grant.Expires, at(10*time.Second))
	}
	mustLock(t, tb, at(1), 2, LockRequest{Name: "job", Mode: Exclusive})
	// Renewed at 8s: the first deadline passes without effect.
	if _, _, err := tb.Renew(at(8*time.Second), 1, "job", r.Grant.Token, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tb.Renew(at(8*time.Second), 2, "job", 0, 0); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("renew by a waiter: %v, want ErrNotHolder", err)
	}
	if evs := tb.Advance(at(10 * time.Second)); len(evs) != 0 {
		t.Fatalf("renewed lease expired at its old deadline: %v", evs)
	}
	evs := tb.Advance(at(18 * time.Second))
	if len(evs) != 2 {
		t.Fatalf("at expiry: %+v, want LOST to 1 then GRANTED to 2", evs)
	}
	if evs[0].Kind != EventLost || evs[0].Session != 1 || evs[0].Token != r.Grant.Token || evs[0].Reason != ReasonExpired {
		t.Fatalf("first event %+v, want LOST of token %d to session 1 (expired)", evs[0], r.Grant.Token)
	}
	if evs[1].Kind != EventGranted || evs[1].Session != 2 || evs[1].Token <= r.Grant.Token {
		t.Fatalf("second event %+v, want GRANTED to session 2 with a larger token", evs[1])
	}
	// The old holder can no longer release or renew.
	if _, err := tb.Unlock(at(19*time.Second), 1, "job", r.Grant.Token); !errors.Is(err, ErrNotHolder) {
		t.Fatalf("release after expiry: %v, want ErrNotHolder", err)
	}
	if st := tb.Stats(); st.Expired != 1 {
		t.Fatalf("expired count %d, want 1", st.Expired)
	}
}

// TestTableRenewAfterExpiry: a RENEW that arrives after the lease ran out,
// before the server's timer applied the expiry, must not revive the lease
// (the next in line may be about to get the lock, and the holder may have
// been paused past its TTL). It fails, and the expiry takes effect then:
// LOST to the holder, the lock to the waiter, once.
func TestTableRenewAfterExpiry(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	r := mustLock(t, tb, at(0), 1, LockRequest{Name: "job", Mode: Exclusive, TTL: 10 * time.Second})
	if w := mustLock(t, tb, at(1), 2, LockRequest{Name: "job", Mode: Exclusive, TTL: 5 * time.Second}); w.Granted {
		t.Fatal("second lock granted while the first is held")
	}
	_, evs, err := tb.Renew(at(10*time.Second), 1, "job", r.Grant.Token, 0)
	if !errors.Is(err, ErrNotHolder) {
		t.Fatalf("renew at the moment the lease ends: %v, want ErrNotHolder", err)
	}
	if len(evs) != 2 {
		t.Fatalf("renew after expiry: events %+v, want LOST to 1 then GRANTED to 2", evs)
	}
	if evs[0].Kind != EventLost || evs[0].Session != 1 || evs[0].Token != r.Grant.Token || evs[0].Reason != ReasonExpired {
		t.Fatalf("first event %+v, want LOST of token %d to session 1 (expired)", evs[0], r.Grant.Token)
	}
	if evs[1].Kind != EventGranted || evs[1].Session != 2 || evs[1].Token <= r.Grant.Token || evs[1].TTL != 5*time.Second {
		t.Fatalf("second event %+v, want GRANTED to session 2 with a larger token and its 5s lease", evs[1])
	}
	if _, ok := tb.Holding(1, "job"); ok {
		t.Fatal("session 1 still holds job")
	}
	g, ok := tb.Holding(2, "job")
	if !ok || !g.Expires.Equal(at(15*time.Second)) {
		t.Fatalf("session 2 holds %+v %v, want job until %v", g, ok, at(15*time.Second))
	}
	if st := tb.Stats(); st.Expired != 1 || st.Holders != 1 || st.Waiters != 0 {
		t.Fatalf("stats %+v, want 1 expired, 1 holder, 0 waiters", st)
	}
	// The timer's Advance at the old deadline finds nothing left to do.
	if evs := tb.Advance(at(10 * time.Second)); len(evs) != 0 {
		t.Fatalf("Advance after the renew applied the expiry: %+v, want nothing", evs)
	}
	// The new holder's lease runs its course.
	if evs := tb.Advance(at(15 * time.Second)); len(evs) != 1 || evs[0].Kind != EventLost || evs[0].Session != 2 {
		t.Fatalf("at the new lease's end: %+v, want LOST to session 2", evs)
	}
}

func TestTableCloseReleasesAndCancels(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3)
	mustLock(t, tb, at(0), 1, LockRequest{Name: "a", Mode: Exclusive})
	mustLock(t, tb, at(0), 2, LockRequest{Name: "b", Mode: Exclusive})
	mustLock(t, tb, at(1), 1, LockRequest{Name: "b", Mode: Exclusive}) // 1 waits for b
	mustLock(t, tb, at(1), 3, LockRequest{Name: "a", Mode: Exclusive}) // 3 waits for a
	evs := tb.Close(at(2), 1)
	if g := granted(evs); !equalIDs(g, []SessionID{3}) {
		t.Fatalf("close of 1 granted %v, want [3] (a)", g)
	}
	st := tb.Status(at(2), "b")
	if len(st.Locks[0].Waiters) != 0 {
		t.Fatalf("closed session still waits for b: %+v", st.Locks[0].Waiters)
	}
	if evs := tb.Close(at(3), 2); len(evs) != 0 {
		t.Fatalf("close of 2: %v, want no grant (1 is gone)", evs)
	}
	if st := tb.Stats(); st.Sessions != 1 || st.Holders != 1 || st.Waiters != 0 {
		t.Fatalf("stats %+v, want 1 session, 1 holder, 0 waiters", st)
	}
}

func TestTableCancelLetsReadersThrough(t *testing.T) {
	tb := newTestTable(t, 1, 2, 3)
	mustLock(t, tb, at(0), 1, LockRequest{Name: "f", Mode: Shared})
	mustLock(t, tb, at(1), 2, LockRequest{Name: "f", Mode: Exclusive})
	mustLock(t, tb, at(2), 3, LockRequest{Name: "f", Mode: Shared})
	evs, err := tb.Cancel(at(3), 2, "f")
	if err != nil {
		t.Fatal(err)
	}
	if g := granted(evs); !equalIDs(g, []SessionID{3}) {
		t.Fatalf("cancelling the queued writer granted %v, want the reader behind it [3]", g)
	}
	if _, err := tb.Cancel(at(4), 2, "f"); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("second cancel: %v, want ErrNotWaiting", err)
	}
}

func TestTableRefusals(t *testing.T) {
	tb := newTestTable(t, 1)
	mustLock(t, tb, at(0), 1, LockRequest{Name: "a"})
	if _, err := tb.Lock(at(0), 1, LockRequest{Name: "a", Wait: -1}); !errors.Is(err, ErrHeld) {
		t.Fatalf("re-lock by the holder: %v, want ErrHeld", err)
	}
	for _, n := range []string{"b", "c", "d"} {
		mustLock(t, tb, at(0), 1, LockRequest{Name: n})
	}
	if _, err := tb.Lock(at(0), 1, LockRequest{Name: "e", Wait: -1}); !errors.Is(err, ErrLimit) {
		t.Fatalf("fifth lock with a limit of 4: %v, want ErrLimit", err)
	}
	if _, err := tb.Lock(at(0), 1, LockRequest{Name: "../etc/passwd", Wait: -1}); !errors.Is(err, ErrBadName) {
		t.Fatalf("bad name: %v, want ErrBadName", err)
	}
}

func TestTableDrain(t *testing.T) {
	tb := newTestTable(t, 1, 2)
	mustLock(t, tb, at(0), 1, LockRequest{Name: "a", TTL: time.Second})
	mustLock(t, tb, at(0), 2, LockRequest{Name: "a"})
	evs := tb.Drain(at(1))
	if len(evs) != 2 || evs[0].Kind != EventLost || evs[0].Reason != ReasonShutdown ||
		evs[1].Kind != EventCancelled || evs[1].Session != 2 {
		t.Fatalf("drain: %+v, want LOST to 1 and CANCELLED to 2 (shutdown)", evs)
	}
	if evs := tb.Advance(at(time.Hour)); len(evs) != 0 {
		t.Fatalf("a drained lease still expired: %v", evs)
	}
	if st := tb.Status(at(2), ""); len(st.Locks) != 0 {
		t.Fatalf("locks after drain: %+v", st.Locks)
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"file_A", true},
		{"db_connection", true},
		{"a.b-c_D9", true},
		{strings.Repeat("x", MaxNameLen), true},
		{strings.Repeat("x", MaxNameLen+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"../etc/passwd", false},
		{"a/b", false},
		{"/abs", false},
		{`a\b`, false},
		{"a b", false},
		{"a\x00b", false},
		{"é", false},
	} {
		err := ValidName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) error %v does not match ErrBadName", tc.name, err)
		}
	}
}
