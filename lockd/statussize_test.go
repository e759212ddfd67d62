package lockd

import (
	"math"
	"strings"
	"testing"
	"time"
)

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
		// Each kind of line on its own: the final line's slack (its
		// counts at their longest) must not hide a shortfall elsewhere.
		var locks, sessions, final int
		for _, line := range strings.SplitAfter(string(appendStatus(nil, tc.st)), "\n") {
			switch {
			case strings.HasPrefix(line, "HOLDER "), strings.HasPrefix(line, "WAITER "):
				locks += len(line)
			case strings.HasPrefix(line, "SESSION "):
				sessions += len(line)
			default:
				final += len(line)
			}
		}
		countedLocks := 0
		for _, l := range tc.st.Locks {
			countedLocks += lockStatusBytes(l)
		}
		for _, c := range []struct {
			what          string
			sent, counted int
		}{
			{"HOLDER and WAITER lines", locks, countedLocks},
			{"SESSION lines", sessions, sessionStatusBytes(tc.st.Sessions)},
			{"final line", final, statusFinalMax + len(tc.st.Next)},
		} {
			t.Logf("%s, %s: %d bytes sent, %d counted", tc.what, c.what, c.sent, c.counted)
			if c.counted < c.sent {
				t.Errorf("%s: %s counted as %d bytes take %d:\n%s", tc.what, c.what, c.counted, c.sent, appendStatus(nil, tc.st))
			}
		}
		// For everyday lines, the count is at most a lease's longest text
		// above the size (the final line aside, counted at its longest).
		if tc.what == "everyday values" && countedLocks > locks+maxDurationLen {
			t.Errorf("%s: HOLDER and WAITER lines of %d bytes counted as %d", tc.what, locks, countedLocks)
		}
	}
}
