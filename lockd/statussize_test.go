package lockd

import (
	"math"
	"strings"
	"testing"
	"time"
)

// statusBytes is what StatusPage counts for st: at least len(appendStatus(nil, st)).
func statusBytes(st Status) int {
	n := statusFinalMax + len(st.Next) + sessionStatusBytes(st.Sessions)
	for _, l := range st.Locks {
		n += lockStatusBytes(l)
	}
	return n
}

// TestStatusBytesCoverTheEncoding: what a page counts as it grows is at
// least what it then takes on the wire, for the longest values every
// field can take as well as for everyday ones; and, for everyday lines,
// not much more (a page that counts its lines far above their size ends
// far short of MaxStatusPageBytes).
func TestStatusBytesCoverTheEncoding(t *testing.T) {
	longest := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	everyday := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	name := strings.Repeat("n", MaxNameLen)
	client := strings.Repeat("c", MaxClientLen)
	for _, tc := range []struct {
		what string
		st   Status
	}{
		{"the longest values", Status{Now: longest, Next: name,
			Locks: []LockStatus{{Name: name,
				Holders: []HolderStatus{{Session: math.MaxUint64, Client: client, PID: -1, Mode: Exclusive,
					Token: math.MaxUint64, Since: longest, TTL: math.MinInt64, Expires: longest}},
				Waiters: []WaiterStatus{{Session: math.MaxUint64, Client: client, PID: -1, Mode: Exclusive,
					Position: math.MaxInt, Since: longest, Deadline: longest}}}},
			Sessions: []SessionStatus{{ID: math.MaxUint64, Client: client, PID: -1,
				Addr: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%eth0]:65535", Since: longest, Held: math.MaxInt, Waiting: math.MaxInt}}}},
		{"the shortest values", Status{Now: time.Unix(0, 0),
			Locks: []LockStatus{{Name: "a",
				Holders: []HolderStatus{{Mode: Shared, Since: time.Unix(0, 0)}},
				Waiters: []WaiterStatus{{Mode: Shared, Since: time.Unix(0, 0)}}}},
			Sessions: []SessionStatus{{Since: time.Unix(0, 0)}}}},
		{"everyday values", Status{Now: everyday, Next: "jobs/42",
			Locks: []LockStatus{{Name: "jobs/42",
				Holders: []HolderStatus{{Session: 12, Client: "worker", PID: 4242, Mode: Exclusive,
					Token: 123456, Since: everyday, TTL: 30 * time.Second, Expires: everyday}},
				Waiters: []WaiterStatus{{Session: 13, Client: "worker", PID: 4243, Mode: Shared,
					Position: 1, Since: everyday}}}},
			Sessions: []SessionStatus{{ID: 12, Client: "worker", PID: 4242, Addr: "127.0.0.1:40000",
				Since: everyday, Held: 1}}}},
	} {
		sent := len(appendStatus(nil, tc.st))
		counted := statusBytes(tc.st)
		t.Logf("%s: %d bytes sent, %d counted", tc.what, sent, counted)
		if counted < sent {
			t.Errorf("%s: a page counted as %d bytes takes %d:\n%s", tc.what, counted, sent, appendStatus(nil, tc.st))
		}
		lines := len(tc.st.Sessions)
		for _, l := range tc.st.Locks {
			lines += len(l.Holders) + len(l.Waiters)
		}
		// Beside the final line (counted at its longest), each line may be
		// counted at most a lease's longest text above its size.
		if tc.what == "everyday values" && counted > sent+statusFinalMax+lines*maxDurationLen {
			t.Errorf("%s: a page of %d bytes is counted as %d", tc.what, sent, counted)
		}
	}
}
