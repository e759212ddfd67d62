package replica

import (
	"errors"
	"testing"
	"time"

	"mplock/lockd"
)

// TestClusterLeaderChangeKeepsLocks: a lock taken through a follower and
// two waiters queued at other nodes survive the leader's death: same
// holder, same token, same queue order; the next grant's token is higher.
func TestClusterLeaderChangeKeepsLocks(t *testing.T) {
	c := NewCluster(t, 3, Config{})
	l := c.WaitLeader(testTimeout)
	f := follower(c, l)
	a := openSession(t, c.Node(f), "a", time.Minute)
	b := openSession(t, c.Node(l), "b", time.Minute)
	d := openSession(t, c.Node(f), "d", time.Minute)

	got := mustApply(t, c.Node(f), Lock(a.id, a.next(), lockd.LockRequest{Name: "x", Wait: -1}))
	if !got.Lock.Granted || got.Err != nil {
		t.Fatalf("a's lock through follower %d: %+v", f, got)
	}
	// The follower answered from its own FSM: it reads its own write.
	if o := owners(t, c.Node(f), Stale, "x"); len(o) != 1 || o[0].Session != a.id {
		t.Fatalf("follower's own table after its answer: %+v", o)
	}
	if r := mustApply(t, c.Node(l), Lock(b.id, b.next(), lockd.LockRequest{Name: "x", Wait: -1})); r.Lock.Position != 1 {
		t.Fatalf("b: %+v", r)
	}
	if r := mustApply(t, c.Node(f), Lock(d.id, d.next(), lockd.LockRequest{Name: "x", Wait: -1})); r.Lock.Position != 2 {
		t.Fatalf("d: %+v", r)
	}

	c.Kill(l)
	nl := c.WaitLeader(testTimeout)
	if nl == l {
		t.Fatalf("the killed node %d leads", l)
	}
	st := lockStatus(t, c.Node(nl), Consistent, "x")
	if len(st.Holders) != 1 || st.Holders[0].Session != a.id || st.Holders[0].Token != got.Lock.Grant.Token {
		t.Fatalf("after the leader change, holders %+v; want session %d with token %d", st.Holders, a.id, got.Lock.Grant.Token)
	}
	if len(st.Waiters) != 2 || st.Waiters[0].Session != b.id || st.Waiters[1].Session != d.id {
		t.Fatalf("after the leader change, waiters %+v; want %d then %d", st.Waiters, b.id, d.id)
	}
	un := mustApply(t, c.Node(nl), Unlock(a.id, a.next(), "x", 0))
	if un.Err != nil || len(un.Events) != 1 || un.Events[0].Session != b.id || un.Events[0].Token <= got.Lock.Grant.Token {
		t.Fatalf("unlock after the leader change: %+v", un)
	}
	// The killed node comes back and catches up with everything.
	c.Restart(l)
	if o := owners(t, c.Node(l), Consistent, "x"); len(o) != 1 || o[0].Session != b.id {
		t.Fatalf("restarted node's view: %+v", o)
	}
}

// TestClusterRetryIsDeduplicated: the same LOCK (same session and request
// id) sent again, at another node, returns the first grant and grants
// nothing more, even after a leader change.
func TestClusterRetryIsDeduplicated(t *testing.T) {
	c := NewCluster(t, 3, Config{})
	l := c.WaitLeader(testTimeout)
	f := follower(c, l)
	a := openSession(t, c.Node(l), "a", time.Minute)
	cmd := Lock(a.id, a.next(), lockd.LockRequest{Name: "x", Wait: -1})
	first := mustApply(t, c.Node(f), cmd)
	c.Kill(l)
	c.WaitLeader(testTimeout)
	again := mustApply(t, c.Node(f), cmd)
	if !again.Duplicate || again.Lock.Grant.Token != first.Lock.Grant.Token || !again.Lock.Granted {
		t.Fatalf("retried lock: %+v; first %+v", again, first)
	}
	var stats lockd.TableStats
	if _, err := c.Node(f).Read(testCtx(t), Consistent, func(v View) error { stats = v.Stats(); return nil }); err != nil {
		t.Fatal(err)
	}
	if stats.Grants[lockd.Exclusive] != 1 {
		t.Fatalf("%d exclusive grants, want 1", stats.Grants[lockd.Exclusive])
	}
}

// TestClusterIsolatedLeaderGrantsNothing: a leader cut off from the
// majority cannot grant: its client's LOCK does not succeed, the majority
// elects a new leader that grants the lock to another client, and once the
// partition heals the old leader's entry is discarded, never applied.
func TestClusterIsolatedLeaderGrantsNothing(t *testing.T) {
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	c := NewCluster(t, 3, Config{}, func(i int, cfg *Config) { cfg.Observer = recs[i].observe })
	l := c.WaitLeader(testTimeout)
	f := follower(c, l)
	old := openSession(t, c.Node(l), "old", time.Minute)
	maj := openSession(t, c.Node(f), "maj", time.Minute)

	c.Partition(l)
	lockOld := Lock(old.id, old.next(), lockd.LockRequest{Name: "x", Wait: 0})
	ctx, cancel := contextWithTimeout(time.Second)
	res, err := c.Node(l).Apply(ctx, lockOld)
	cancel()
	if err == nil {
		t.Fatalf("the isolated leader answered a LOCK: %+v", res)
	}
	if !errors.Is(err, ErrAmbiguous) && !errors.Is(err, ErrNotApplied) {
		t.Fatalf("the isolated leader's error %v is neither ambiguous nor not-applied", err)
	}
	var nl int
	for {
		nl = c.WaitLeader(testTimeout)
		if nl != l {
			break
		}
	}
	got := mustApply(t, c.Node(f), Lock(maj.id, maj.next(), lockd.LockRequest{Name: "x", Wait: 0}))
	if !got.Lock.Granted {
		t.Fatalf("the majority's lock: %+v", got)
	}
	c.Heal()
	// The old leader catches up and agrees; the old entry was never applied.
	if o := owners(t, c.Node(l), Consistent, "x"); len(o) != 1 || o[0].Session != maj.id {
		t.Fatalf("after healing, the old leader's table: %+v", o)
	}
	for i, r := range recs {
		for _, a := range r.all() {
			if a.Result != nil && a.Result.Session == old.id && a.Command.Op == OpLock {
				t.Fatalf("node %d applied the isolated leader's LOCK: %+v", i, a.Result)
			}
		}
	}
}

// TestApplyReturnsAfterObserver: when Apply returns, at the leader or at a
// follower, that node's observer has already seen the entry, so a server
// that replies from Apply's return has queued the entry's events first.
func TestApplyReturnsAfterObserver(t *testing.T) {
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	c := NewCluster(t, 3, Config{}, func(i int, cfg *Config) { cfg.Observer = recs[i].observe })
	l := c.WaitLeader(testTimeout)
	a := openSession(t, c.Node(l), "a", time.Minute)
	for i := range 30 {
		at := (l + i) % 3
		res := mustApply(t, c.Node(at), Renew(a.id, a.next(), "nothing", 0, 0))
		seen := false
		for _, ap := range recs[at].all() {
			seen = seen || ap.Index == res.Index
		}
		if !seen {
			t.Fatalf("Apply at %s returned entry %d before its observer saw it", c.Node(at).cfg.NodeID, res.Index)
		}
	}
}
