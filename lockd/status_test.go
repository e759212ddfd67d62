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

// TestStatusPageEndsByBytes: with names long enough that a page of
// MaxStatusLimit names would take megabytes, a page ends, at the end of a
// name, before it passes MaxStatusPageBytes (its SESSION lines counted
// on the first page), and says where the next starts; the pages list
// every name once, in order. A name whose lines alone pass the bound is
// still listed, alone on its page.
func TestStatusPageEndsByBytes(t *testing.T) {
	tb := NewTable(TableLimits{MaxLocksPerSession: 10000})
	now := time.Unix(1000, 0)
	client := strings.Repeat("c", MaxClientLen)
	// 500 sessions: about 80 KB of SESSION lines on the first page.
	for s := SessionID(1); s <= 500; s++ {
		tb.Open(s, SessionInfo{Client: client, PID: int(s), Addr: "127.0.0.1:1", Since: now})
	}
	long := strings.Repeat("n", MaxNameLen-5)
	var want []string
	for i := range 4000 {
		name := fmt.Sprintf("%s%05d", long, i)
		want = append(want, name)
		if _, err := tb.Lock(now, 1, LockRequest{Name: name, Mode: Exclusive, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	first := tb.StatusPage(now, StatusQuery{Limit: MaxStatusLimit})
	second := tb.StatusPage(now, StatusQuery{After: first.Next, Limit: MaxStatusLimit})
	t.Logf("first page: %d names, %d sessions, %d bytes; second: %d names, %d bytes", len(first.Locks), len(first.Sessions),
		len(appendStatus(nil, first)), len(second.Locks), len(appendStatus(nil, second)))
	if size := len(appendStatus(nil, first)); len(first.Sessions) != 500 || size > MaxStatusPageBytes ||
		first.Next == "" || len(first.Locks) >= len(second.Locks) {
		t.Fatalf("first page: %d sessions, %d names, %d bytes, next %q; then %d names; want every session, at most %d bytes, fewer names",
			len(first.Sessions), len(first.Locks), size, first.Next, len(second.Locks), MaxStatusPageBytes)
	}

	// "wide": after the long names, held by 2,000 sessions at once (each
	// line over 200 bytes); "x": one more name after it.
	for s := SessionID(1); s <= 2000; s++ {
		tb.Open(s, SessionInfo{Client: client, PID: int(s), Addr: "127.0.0.1:1", Since: now})
		if _, err := tb.Lock(now, s, LockRequest{Name: "wide", Mode: Shared}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.Lock(now, 1, LockRequest{Name: "x", Mode: Shared}); err != nil {
		t.Fatal(err)
	}
	want = append(want, "wide", "x")

	var got []string
	q := StatusQuery{Limit: MaxStatusLimit}
	for pages := 0; ; pages++ {
		if pages > len(want) {
			t.Fatal("paging does not end")
		}
		st := tb.StatusPage(now, q)
		size := len(appendStatus(nil, st))
		for _, l := range st.Locks {
			got = append(got, l.Name)
		}
		switch {
		case q.After == "":
			// 2,000 SESSION lines alone pass the bound: one name, to go on from.
			if len(st.Locks) != 1 || len(st.Sessions) != 2000 || st.Next != want[0] {
				t.Fatalf("first page with 2,000 sessions: %d names, %d sessions, next %q; want one name, every session",
					len(st.Locks), len(st.Sessions), st.Next)
			}
		case st.Locks[0].Name == "wide":
			if len(st.Locks) != 1 || st.Next != "wide" || size <= MaxStatusPageBytes {
				t.Fatalf("the page of a name with %d holders: %d names, %d bytes, next %q; want it alone, over %d bytes, next wide",
					len(st.Locks[0].Holders), len(st.Locks), size, st.Next, MaxStatusPageBytes)
			}
		case size > MaxStatusPageBytes:
			t.Fatalf("page after %q: %d names, %d bytes, over %d", q.After, len(st.Locks), size, MaxStatusPageBytes)
		case st.Next != "" && st.Next != want[3999] && size < MaxStatusPageBytes*3/4:
			// Counting lines well above their size would end pages early.
			t.Errorf("page after %q ended at %d names and %d bytes, far short of %d bytes",
				q.After, len(st.Locks), size, MaxStatusPageBytes)
		}
		if st.Next == "" {
			break
		}
		if st.Next != st.Locks[len(st.Locks)-1].Name {
			t.Fatalf("next=%q, want the page's last name", st.Next)
		}
		q.After = st.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages listed %d names, want the %d names once in order", len(got), len(want))
	}
}

// TestStatusPagesByBytesOverTheWire: a STATUS limit=10000 of names long
// enough that the page ends by its size says so with next=, and
// Client.Status follows next= through every name.
func TestStatusPagesByBytesOverTheWire(t *testing.T) {
	_, addr := startServer(t, Config{MaxLocksPerSession: 5000})
	c := dialRaw(t, addr)
	const n = 3000 // 128-byte names: about 750 KB of HOLDER lines
	fillLocks(t, c, strings.Repeat("w", MaxNameLen-6), n)
	c.send("STATUS limit=10000")
	size, holders := 0, 0
	var final string
	for {
		line := c.expect("")
		size += len(line) + 1
		if strings.HasPrefix(line, "HOLDER ") {
			holders++
		}
		if strings.HasPrefix(line, "OK STATUS ") {
			final = line
			break
		}
	}
	t.Logf("STATUS limit=10000 of %d names: %d names, %d bytes", n, holders, size)
	if holders >= n || size > MaxStatusPageBytes || !strings.Contains(final, " next=") {
		t.Fatalf("STATUS limit=10000 of %d names: %d names in %d bytes, ending %q; want a page of at most %d bytes, with next=",
			n, holders, size, final, MaxStatusPageBytes)
	}
	st, err := dial(t, addr, "pager").Status(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, l := range st.Locks {
		if seen[l.Name] {
			t.Fatalf("%s listed twice", l.Name)
		}
		seen[l.Name] = true
	}
	if len(seen) != n || len(st.Sessions) != 2 || st.Next != "" {
		t.Fatalf("Client.Status listed %d names and %d sessions (next %q), want %d and 2", len(seen), len(st.Sessions), st.Next, n)
	}
}

// BenchmarkStatusFullPage measures what the server does for a STATUS of
// a default page (1,000 names, one holder each, of 10,000 in the table):
// the page, its count of bytes, and its encoding.
func BenchmarkStatusFullPage(b *testing.B) {
	tb := NewTable(TableLimits{MaxLocksPerSession: 10000})
	now := time.Unix(1000, 0)
	tb.Open(1, SessionInfo{Client: "bench", PID: 1, Addr: "127.0.0.1:1", Since: now})
	for i := range 10000 {
		if _, err := tb.Lock(now, 1, LockRequest{Name: fmt.Sprintf("name-%07d", i), TTL: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
	var buf []byte
	for b.Loop() {
		st := tb.StatusPage(now, StatusQuery{After: "name-0005000"})
		if len(st.Locks) != DefaultStatusLimit {
			b.Fatalf("page of %d names", len(st.Locks))
		}
		buf = appendStatus(buf[:0], st)
	}
	b.SetBytes(int64(len(buf)))
}
