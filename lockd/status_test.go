package lockd

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTableStatusPages pages through a table: every name once, in order;
// pages end at the name limit, or at the end of a name once the lines
// reach it; sessions come with the first page only.
func TestTableStatusPages(t *testing.T) {
	tb := NewTable(TableLimits{MaxLocksPerSession: 100})
	now := time.Unix(1000, 0)
	for s := SessionID(1); s <= 5; s++ {
		tb.Open(s, SessionInfo{})
	}
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("n%02d", i)
		want = append(want, name)
		if _, err := tb.Lock(now, 1, LockRequest{Name: name, Mode: Shared}); err != nil {
			t.Fatal(err)
		}
	}
	// n03 has 5 holders: a page that reaches it must list them all.
	for s := SessionID(2); s <= 5; s++ {
		if _, err := tb.Lock(now, s, LockRequest{Name: "n03", Mode: Shared}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	q := StatusQuery{Limit: 4}
	for pages := 0; ; pages++ {
		if pages > 25 {
			t.Fatal("paging does not end")
		}
		st := tb.StatusPage(now, q)
		if (q.After == "") != (len(st.Sessions) == 5) {
			t.Fatalf("page after %q lists %d sessions", q.After, len(st.Sessions))
		}
		lines := 0
		for _, l := range st.Locks {
			got = append(got, l.Name)
			lines += len(l.Holders) + len(l.Waiters)
		}
		last := st.Locks[len(st.Locks)-1]
		if len(st.Locks) > 4 || lines-len(last.Holders)-len(last.Waiters) >= 4 {
			t.Fatalf("page after %q: %d names, %d lines: over the limit of 4 before its last name", q.After, len(st.Locks), lines)
		}
		if st.Next == "" {
			break
		}
		if st.Next != last.Name {
			t.Fatalf("next=%q, want the page's last name %q", st.Next, last.Name)
		}
		q.After = st.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages listed %v, want every name once in order: %v", got, want)
	}
	// The page with n03 stops after it: n00..n02 are 3 lines, n03 adds 5.
	if st := tb.StatusPage(now, StatusQuery{Limit: 4}); len(st.Locks) != 4 || st.Next != "n03" {
		t.Fatalf("first page: %d names, next %q; want n00..n03, next n03", len(st.Locks), st.Next)
	}
	// A page that holds every remaining name has no next.
	if st := tb.StatusPage(now, StatusQuery{After: "n20", Limit: 4}); len(st.Locks) != 4 || st.Next != "" {
		t.Fatalf("last page: %d names, next %q", len(st.Locks), st.Next)
	}
}

// TestStatusPagingOverTheWire: STATUS limit= and after= on the wire, and
// Client.Status paging through more names than a default page holds.
func TestStatusPagingOverTheWire(t *testing.T) {
	_, addr := startServer(t, Config{MaxLocksPerSession: 3000})
	c := dialRaw(t, addr)
	n := DefaultStatusLimit + 500
	fillLocks(t, c, "p", n)
	c.send("STATUS limit=2 after=p-10")
	c.expect("HOLDER p-100 WRITE")
	c.expect("HOLDER p-1000 WRITE")
	c.expect("OK STATUS now=")
	c.send("STATUS p-1 limit=2")
	c.expect("ERR syntax STATUS of one name takes no limit= or after=")
	c.send("STATUS limit=0")
	c.expect("ERR syntax limit=")
	c.send("STATUS")
	for range DefaultStatusLimit {
		c.expect("HOLDER ")
	}
	c.expect("SESSION 1 ")
	final := c.expect("OK STATUS ")
	if !strings.Contains(final, fmt.Sprintf(" locks=%d ", DefaultStatusLimit)) || !strings.Contains(final, " next=") {
		t.Fatalf("a STATUS of %d names ended with %q, want a page of %d and a next=", n, final, DefaultStatusLimit)
	}
	st, err := dial(t, addr, "pager").Status(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Locks) != n || len(st.Sessions) != 2 || st.Next != "" {
		t.Fatalf("Client.Status listed %d names and %d sessions (next %q), want %d and 2", len(st.Locks), len(st.Sessions), st.Next, n)
	}
	seen := map[string]bool{}
	for _, l := range st.Locks {
		if seen[l.Name] {
			t.Fatalf("%s listed twice", l.Name)
		}
		seen[l.Name] = true
	}
}
