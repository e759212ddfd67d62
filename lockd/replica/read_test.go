package replica

import (
	"errors"
	"testing"
	"time"

	"mplock/lockd"
)

// TestClusterStaleReadRefusedPastMaxStale: a follower cut off from the
// leader answers stale reads from its own table (saying how long since it
// heard from the leader) until MaxStale has passed, then refuses them; a
// consistent read there fails, as it cannot reach a leader.
func TestClusterStaleReadRefusedPastMaxStale(t *testing.T) {
	const maxStale = 300 * time.Millisecond
	c := NewCluster(t, 3, Config{MaxStale: maxStale})
	l := c.WaitLeader(testTimeout)
	f := follower(c, l)
	a := openSession(t, c.Node(l), "a", time.Minute)
	mustApply(t, c.Node(f), Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))

	c.Partition(f)
	cut := time.Now()
	fn := c.Node(f)
	var owner lockd.SessionID
	info, err := fn.Read(testCtx(t), Stale, func(v View) error {
		if o := v.Owners("x"); len(o) == 1 {
			owner = o[0].Session
		}
		return nil
	})
	if err != nil && time.Since(cut) < maxStale {
		t.Fatalf("stale read right after the cut: %v", err)
	}
	if err == nil && (owner != a.id || info.Index == 0 || info.LastContact < 0 || info.Consistency != Stale) {
		t.Fatalf("stale read: owner %d, info %+v", owner, info)
	}
	// Within a deadline the follower starts refusing.
	for {
		_, err := fn.Read(testCtx(t), Stale, func(View) error { return nil })
		if errors.Is(err, ErrStale) {
			if since := time.Since(cut); since < maxStale {
				t.Fatalf("stale read refused %v after the cut, before max-stale %v", since, maxStale)
			}
			break
		}
		if err != nil {
			t.Fatalf("stale read: %v", err)
		}
		if time.Since(cut) > testTimeout {
			t.Fatal("stale reads never refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := contextWithTimeout(200 * time.Millisecond)
	defer cancel()
	if _, err := fn.Read(ctx, Consistent, func(View) error { return nil }); !errors.Is(err, ErrNotApplied) && !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("consistent read at a cut-off follower: %v", err)
	}
	c.Heal()
	if o := owners(t, fn, Consistent, "x"); len(o) != 1 || o[0].Session != a.id {
		t.Fatalf("after healing: %+v", o)
	}
}

// TestClusterReadsSeeCompletedWrites: after a write completes at one node,
// a consistent or default read at any other node sees it (no stale answer
// from a follower that has not applied it yet).
func TestClusterReadsSeeCompletedWrites(t *testing.T) {
	c := NewCluster(t, 3, Config{})
	l := c.WaitLeader(testTimeout)
	a := openSession(t, c.Node(l), "a", time.Minute)
	for i := range 60 {
		w := c.Node(i % 3)
		r := c.Node((i + 1) % 3)
		cons := Consistent
		if i/2%2 == 1 {
			cons = Default
		}
		if i%2 == 0 {
			res := mustApply(t, w, Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
			if !res.Lock.Granted {
				t.Fatalf("write %d: %+v", i, res)
			}
			if o := owners(t, r, cons, "x"); len(o) != 1 || o[0].Token != res.Lock.Grant.Token {
				t.Fatalf("read %d (%s) at %s after a lock at %s: %+v, want token %d", i, cons, r.cfg.NodeID, w.cfg.NodeID, o, res.Lock.Grant.Token)
			}
		} else {
			mustApply(t, w, Unlock(a.id, a.next(), "x", 0))
			if o := owners(t, r, cons, "x"); len(o) != 0 {
				t.Fatalf("read %d (%s) at %s after an unlock at %s: %+v", i, cons, r.cfg.NodeID, w.cfg.NodeID, o)
			}
		}
	}
}
