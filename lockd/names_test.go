package lockd

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// checkNameIndex fails unless the table's ordered index of names holds
// exactly the names of its locks, in order.
func checkNameIndex(t *testing.T, tb *Table, when string) {
	t.Helper()
	var got []string
	tb.names.Ascend(func(n string) bool { got = append(got, n); return true })
	if want := sortedKeys(tb.locks); !slices.Equal(got, want) {
		t.Fatalf("%s: the name index holds %d names, the table %d:\n index %v\n table %v", when, len(got), len(want), got, want)
	}
}

// TestNameIndexFollowsTable: through random locks, unlocks, cancels,
// expiries, timeouts and closes, a restore from a snapshot and a drain,
// the ordered index of names that STATUS pages walk holds exactly the
// table's names; and paging through it lists each name once, in order.
func TestNameIndexFollowsTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tb := NewTable(TableLimits{MaxLocksPerSession: 50})
	now := time.Unix(1000, 0)
	for id := SessionID(1); id <= 8; id++ {
		tb.Open(id, SessionInfo{})
	}
	for step := range 20000 {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Millisecond)
		id := SessionID(1 + rng.IntN(8))
		name := fmt.Sprintf("n%03d", rng.IntN(300))
		switch op := rng.IntN(10); {
		case op < 5:
			wait := []time.Duration{-1, 0, 50 * time.Millisecond}[rng.IntN(3)]
			ttl := []time.Duration{0, 100 * time.Millisecond}[rng.IntN(2)]
			tb.Lock(now, id, LockRequest{Name: name, Mode: Mode(1 + rng.IntN(2)), TTL: ttl, Wait: wait})
		case op < 8:
			tb.Unlock(now, id, name, 0)
		case op < 9:
			tb.Cancel(now, id, name)
		default:
			if rng.IntN(20) == 0 {
				tb.Close(now, id)
				tb.Open(id, SessionInfo{})
			}
		}
		tb.Advance(now)
		if step%1000 == 0 {
			checkNameIndex(t, tb, fmt.Sprintf("step %d", step))
		}
	}
	checkNameIndex(t, tb, "after 20,000 steps")
	if len(tb.locks) < 50 {
		t.Fatalf("only %d names in the table: the test proves little", len(tb.locks))
	}
	var paged []string
	for q := (StatusQuery{Limit: 7}); ; {
		st := tb.StatusPage(now, q)
		for _, l := range st.Locks {
			paged = append(paged, l.Name)
		}
		if st.Next == "" {
			break
		}
		q.After = st.Next
	}
	if want := sortedKeys(tb.locks); !slices.Equal(paged, want) {
		t.Fatalf("paging listed %v, want %v", paged, want)
	}
	restored, err := RestoreTable(tb.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	checkNameIndex(t, restored, "restored from a snapshot")
	tb.Drain(now)
	checkNameIndex(t, tb, "drained")
}

// BenchmarkStatusPage measures one STATUS page of 10 names after the
// last-but-one name, in tables of 1,000 and 200,000 names (the attack
// report's M2: with 205k names a page cost ~12 ms, all under the table's
// mutex).
func BenchmarkStatusPage(b *testing.B) {
	for _, n := range []int{1000, 200_000} {
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			tb := NewTable(TableLimits{MaxLocksPerSession: n})
			now := time.Unix(1000, 0)
			tb.Open(1, SessionInfo{})
			for i := range n {
				if _, err := tb.Lock(now, 1, LockRequest{Name: fmt.Sprintf("name-%07d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			q := StatusQuery{After: fmt.Sprintf("name-%07d", n/2), Limit: 10}
			for b.Loop() {
				if st := tb.StatusPage(now, q); len(st.Locks) != 10 {
					b.Fatalf("page of %d names", len(st.Locks))
				}
			}
		})
	}
}

// BenchmarkTableLockUnlockNewName measures a LOCK and UNLOCK of a name no
// one holds (so the name enters and leaves the table, and its index) in
// tables that hold 0 and 200,000 other names: what the ordered index of
// names adds to the request path.
func BenchmarkTableLockUnlockNewName(b *testing.B) {
	for _, n := range []int{0, 200_000} {
		b.Run(fmt.Sprintf("others=%d", n), func(b *testing.B) {
			tb := NewTable(TableLimits{MaxLocksPerSession: n + 1})
			now := time.Unix(1000, 0)
			tb.Open(1, SessionInfo{})
			tb.Open(2, SessionInfo{})
			for i := range n {
				if _, err := tb.Lock(now, 1, LockRequest{Name: fmt.Sprintf("name-%07d", i)}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if _, err := tb.Lock(now, 2, LockRequest{Name: "name-0100000x"}); err != nil {
					b.Fatal(err)
				}
				if _, err := tb.Unlock(now, 2, "name-0100000x", 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
