package replica

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"mplock/lockd"
)

// TestFSMRefusalTextBounded is the attack report's H2 in the replicated
// table: with a READ lock held by 2,000 sessions, a refused try-lock's
// text names three holders and counts the rest (the full list cost 25 ms
// per refusal at 1,000 holders, in every member's apply goroutine), and
// what the FSM keeps of it, in the session's recent replies and in the
// results ring, stays small (22 KB per refusal were kept, 45 MB in all).
func TestFSMRefusalTextBounded(t *testing.T) {
	f := NewFSM(lockd.TableLimits{}, nil)
	index := uint64(0)
	next := func(c Command) *Result {
		index++
		return apply(t, f, index, stamp0, c)
	}
	var holders []lockd.SessionID
	for i := range 2000 {
		id := next(OpenSession(fmt.Sprintf("h%d", i), 0, fmt.Sprintf("holder-%d", i), i, "", "n1")).Session
		if r := next(Lock(id, 1, lockd.LockRequest{Name: "x", Mode: lockd.Shared, Wait: -1})); !r.Lock.Granted {
			t.Fatalf("holder %d: %+v", i, r)
		}
		holders = append(holders, id)
	}
	w := next(OpenSession("w", 0, "writer", 1, "", "n1")).Session
	want := fmt.Sprintf("x is locked by session %d (holder-0) READ, session %d (holder-1) READ, session %d (holder-2) READ and 1,997 more",
		holders[0], holders[1], holders[2])
	for req := uint64(1); req <= recentReplies; req++ {
		r := next(Lock(w, req, lockd.LockRequest{Name: "x", Wait: 0}))
		te := tableError(r.Err)
		if te == nil || te.Code != lockd.CodeLocked || te.Text != want {
			t.Fatalf("refused try-lock %d: %v\n want %q", req, r.Err, want)
		}
	}
	for _, rep := range f.sessions[w].recent {
		if len(rep.Text) > len(want) {
			t.Fatalf("a recorded reply keeps %d bytes of text, want at most %d", len(rep.Text), len(want))
		}
	}
	if te := tableError(f.results[index].Err); te == nil || len(te.Text) > len(want) {
		t.Fatalf("the results ring keeps %v", f.results[index].Err)
	}
	// A retry gets the recorded text back.
	if r := next(Lock(w, recentReplies, lockd.LockRequest{Name: "x", Wait: 0})); !r.Duplicate || tableError(r.Err).Text != want {
		t.Fatalf("retried try-lock: %+v", r)
	}
}

// TestRecordedTextClipped: whatever text a refusal carries, a recorded
// reply keeps at most maxRecordedText bytes of it, cut at a character.
func TestRecordedTextClipped(t *testing.T) {
	long := strings.Repeat("é", 3000)
	rep := recordReply(&Result{Op: OpLock, Request: 1, Err: &TableError{Code: lockd.CodeLocked, Text: long}})
	if len(rep.Text) > maxRecordedText || !strings.HasSuffix(rep.Text, " [...]") || !strings.HasPrefix(long, strings.TrimSuffix(rep.Text, " [...]")) {
		t.Fatalf("recorded %d bytes: %q...", len(rep.Text), rep.Text[:40])
	}
	if rep := recordReply(&Result{Op: OpLock, Request: 1, Err: &TableError{Code: lockd.CodeLocked, Text: "short"}}); rep.Text != "short" {
		t.Fatalf("a short text recorded as %q", rep.Text)
	}
}

// TestFSMResumeStateCostsOwnLocks: the state a RESUME returns lists the
// session's own holds and waits, and building it costs memory in
// proportion to them, not to the other holders of the same names (1,000
// sessions sharing 256 names made one RESUME cost 95 ms).
func TestFSMResumeStateCostsOwnLocks(t *testing.T) {
	const sessions, names = 1000, 16
	f := NewFSM(lockd.TableLimits{}, nil)
	index := uint64(0)
	next := func(c Command) *Result {
		index++
		return apply(t, f, index, stamp0, c)
	}
	var ids []lockd.SessionID
	for i := range sessions {
		id := next(OpenSession(fmt.Sprintf("s%d", i), 0, fmt.Sprintf("c%d", i), i, "", "n1")).Session
		for j := range names {
			next(Lock(id, uint64(j+1), lockd.LockRequest{Name: fmt.Sprintf("name-%02d", j), Mode: lockd.Shared, Wait: -1}))
		}
		ids = append(ids, id)
	}
	w := next(OpenSession("w", 0, "writer", 1, "", "n1")).Session
	next(Lock(w, 1, lockd.LockRequest{Name: "name-00", Wait: -1}))
	// The writer waits for name-00; resume it and the first reader.
	st := next(ResumeSession(w, "w", "n2")).State
	if len(st.Locks) != 1 || st.Locks[0].Name != "name-00" || len(st.Locks[0].Holders) != 0 ||
		len(st.Locks[0].Waiters) != 1 || st.Locks[0].Waiters[0].Session != w || st.Locks[0].Waiters[0].Position != 1 {
		t.Fatalf("the waiting writer's state: %+v", st.Locks)
	}
	st = next(ResumeSession(ids[0], "s0", "n2")).State
	if len(st.Locks) != names || len(st.Held) != names {
		t.Fatalf("the first reader's state lists %d names (%d held), want %d", len(st.Locks), len(st.Held), names)
	}
	for _, l := range st.Locks {
		if len(l.Holders) != 1 || l.Holders[0].Session != ids[0] || l.Holders[0].Client != "c0" || len(l.Waiters) != 0 {
			t.Fatalf("the first reader's state of %s: %+v", l.Name, l)
		}
	}
	// Listing every holder of its 16 names would allocate about
	// 16 x 1,000 holder records (some 2 MB); its own 16 take a few KB.
	const bound = 64 << 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const reps = 10
	for range reps {
		f.sessionState(ids[0])
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / reps; per > bound {
		t.Fatalf("one session state of a reader of %d names shared by %d sessions allocates %d bytes, want under %d", names, sessions, per, bound)
	}
}
