package replica

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// TestForwardedWriteNeedsNoCommitTimeout: a write entered at a follower is
// answered once the follower has applied it, and the follower learns that
// it committed without waiting for raft's idle CommitTimeout (here an
// hour, so that without the leader's barrier the follower would not learn
// of it before the test's safety net). Afterwards every member's status
// says it reflects everything committed (the barrier is no command).
func TestForwardedWriteNeedsNoCommitTimeout(t *testing.T) {
	c := NewCluster(t, 3, Config{CommitTimeout: time.Hour})
	l := c.WaitLeader(testTimeout)
	f := c.Node((l + 1) % 3)
	a := openSession(t, f, "a", time.Minute)
	for range 3 {
		res := mustApply(t, f, Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
		if !res.Lock.Granted {
			t.Fatalf("lock at the follower: %+v", res)
		}
		mustApply(t, f, Unlock(a.id, a.next(), "x", 0))
	}
	deadline := time.Now().Add(testTimeout)
	for {
		st := f.Status()
		if st.AppliedIndex == st.CommitIndex && st.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the follower's status: applied %d, commit %d, ready %v", st.AppliedIndex, st.CommitIndex, st.Ready)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoBarrierForLeaderWrites: writes entered at the leader append no
// barrier (no follower waits for them); writes at a follower, one after
// another on an idle cluster, append at most one each.
func TestNoBarrierForLeaderWrites(t *testing.T) {
	c := NewCluster(t, 3, Config{})
	const n = 20
	var ln *Node
	var a *client
	// A new leader appends a barrier of its own (the lessor's), so a
	// change of term in the middle (a loaded machine can miss a
	// heartbeat) spoils the count: measure again, in a new term.
	for attempt := 0; ; attempt++ {
		ln = c.Node(c.WaitLeader(testTimeout))
		// Each follower records its addresses with a forwarded write once
		// it knows the leader, and the leader's barrier for that one must
		// not be counted as the test's.
		waitSettled(t, c, ln)
		a = openSession(t, ln, "a", time.Minute)
		term, before := ln.raft.CurrentTerm(), ln.raft.LastIndex()
		for range n {
			mustApply(t, ln, Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
			mustApply(t, ln, Unlock(a.id, a.next(), "x", 0))
		}
		if ln.raft.CurrentTerm() != term || ln.raft.State() != raft.Leader {
			if attempt == 3 {
				t.Fatalf("the leader changed in each of %d attempts", attempt+1)
			}
			continue
		}
		if b := barriers(t, ln, before+1, ln.raft.LastIndex()); b != 0 {
			t.Errorf("%d writes at the leader appended %d barriers", 2*n, b)
		}
		break
	}

	// At a follower, at most one barrier a write (one when idle).
	f := c.Node((c.Index(ln.cfg.NodeID) + 1) % 3)
	before := ln.raft.LastIndex()
	for range n {
		mustApply(t, f, Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
		mustApply(t, f, Unlock(a.id, a.next(), "x", 0))
	}
	if b := barriers(t, ln, before+1, ln.raft.LastIndex()); b == 0 || b > 2*n {
		t.Errorf("%d writes at a follower appended %d barriers; want 1 to %d", 2*n, b, 2*n)
	}
}

// waitSettled waits until every member has recorded its addresses and the
// leader ln has no proposal or barrier in flight.
func waitSettled(t *testing.T, c *Cluster, ln *Node) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(5 * time.Millisecond) {
		settled := true
		for i := range c.Len() {
			if !c.Node(i).nodeInfoCurrent() {
				settled = false
			}
		}
		ln.nudge.mu.Lock()
		idle := ln.nudge.inflight == 0 && ln.nudge.waiting <= ln.nudge.covered
		ln.nudge.mu.Unlock()
		if settled && idle {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not settle: members recorded %v, leader's proposals idle %v", settled, idle)
		}
	}
}

// barriers counts the barrier entries in n's log between from and to.
func barriers(t *testing.T, n *Node, from, to uint64) int {
	t.Helper()
	count := 0
	for i := from; i <= to; i++ {
		var l raft.Log
		if err := n.stores.logs.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if l.Type == raft.LogBarrier {
			count++
		}
	}
	return count
}
