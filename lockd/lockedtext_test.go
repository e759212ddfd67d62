package lockd

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestServerRefusalNamesAFewHolders is the attack report's H2 on one
// server: a refused try-lock of a READ lock with 20 holders names the
// first three (in grant order), counts the others and the waiters, and
// does not list them all (with 2,108 holders the full list took 31 ms
// under the table's mutex, per refusal).
func TestServerRefusalNamesAFewHolders(t *testing.T) {
	_, addr := startServer(t, Config{})
	var ids []string
	for i := range 20 {
		c := dialRaw(t, addr)
		c.send(fmt.Sprintf("HELLO holder-%d", i))
		ids = append(ids, fieldOf(t, c.expect("OK HELLO session="), "session"))
		c.send("LOCK x READ")
		c.expect("OK LOCKED x READ")
	}
	w := dialRaw(t, addr)
	w.send("LOCK x WRITE")
	w.expect("OK QUEUED x WRITE position=1")

	c := dialRaw(t, addr)
	c.send("LOCK x wait=0")
	want := fmt.Sprintf("ERR locked x is locked by session %s (holder-0) READ, session %s (holder-1) READ, session %s (holder-2) READ and 17 more, 1 waiting",
		ids[0], ids[1], ids[2])
	if got := c.expect("ERR locked "); got != want {
		t.Fatalf("refused try-lock:\n got  %q\n want %q", got, want)
	}
}

// TestLockedText: the text's forms, from one holder to thousands, and
// its length does not grow with the holders.
func TestLockedText(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := NewTable(TableLimits{})
	for id := SessionID(1); id <= 2110; id++ {
		tb.Open(id, SessionInfo{})
	}
	tb.Hello(1, "P1", 0)
	lock := func(id SessionID, m Mode) {
		t.Helper()
		if _, err := tb.Lock(now, id, LockRequest{Name: "x", Mode: m, Wait: -1}); err != nil {
			t.Fatal(err)
		}
	}
	lock(1, Shared)
	if got, want := tb.LockedText("x"), "x is locked by session 1 (P1) READ"; got != want {
		t.Fatalf("one holder: %q, want %q", got, want)
	}
	for id := SessionID(2); id <= 3; id++ {
		lock(id, Shared)
	}
	if got, want := tb.LockedText("x"), "x is locked by session 1 (P1) READ, session 2 (-) READ, session 3 (-) READ"; got != want {
		t.Fatalf("three holders: %q, want %q", got, want)
	}
	for id := SessionID(4); id <= 2108; id++ {
		lock(id, Shared)
	}
	lock(2109, Exclusive)
	lock(2110, Shared)
	want := "x is locked by session 1 (P1) READ, session 2 (-) READ, session 3 (-) READ and 2,105 more, 2 waiting"
	if got := tb.LockedText("x"); got != want {
		t.Fatalf("2,108 holders: %q, want %q", got, want)
	}
	if got := tb.LockedText("free"); got != "free is locked" {
		t.Fatalf("a free name: %q", got)
	}
}

// TestSessionLockStatus lists one session's holds and waits, each name
// with that session alone, whatever else holds the same names.
func TestSessionLockStatus(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := NewTable(TableLimits{})
	for id := SessionID(1); id <= 50; id++ {
		tb.Open(id, SessionInfo{Client: fmt.Sprintf("c%d", id), PID: int(id)})
		for _, name := range []string{"b", "a"} {
			if _, err := tb.Lock(now, id, LockRequest{Name: name, Mode: Shared, Wait: -1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tb.Open(51, SessionInfo{})
	if _, err := tb.Lock(now, 51, LockRequest{Name: "w", Wait: -1}); err != nil {
		t.Fatal(err)
	}
	for id := SessionID(50); id >= 49; id-- {
		if _, err := tb.Lock(now, id, LockRequest{Name: "w", Wait: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	got := tb.SessionLockStatus(49)
	var b strings.Builder
	for _, l := range got {
		fmt.Fprintf(&b, "%s:", l.Name)
		for _, h := range l.Holders {
			fmt.Fprintf(&b, " held by %d (%s %d) %s", h.Session, h.Client, h.PID, h.Mode)
		}
		for _, w := range l.Waiters {
			fmt.Fprintf(&b, " waited for by %d at %d until %v", w.Session, w.Position, w.Deadline.Sub(now))
		}
		b.WriteString("; ")
	}
	if want := "a: held by 49 (c49 49) READ; b: held by 49 (c49 49) READ; w: waited for by 49 at 2 until 1h0m0s; "; b.String() != want {
		t.Fatalf("session 49's locks:\n got  %s\n want %s", b.String(), want)
	}
	if got := tb.SessionLockStatus(51); len(got) != 1 || len(got[0].Holders) != 1 || got[0].Waiters != nil {
		t.Fatalf("session 51's locks: %+v", got)
	}
	if got := tb.SessionLockStatus(99); got != nil {
		t.Fatalf("an unknown session's locks: %+v", got)
	}
}
