package replica

import (
	"context"
	"sync"
	"testing"
	"time"

	"mplock/lockd"
)

// TestClusterNewLeaderExtendsLeases: a cluster without a leader for longer
// than every TTL (two of three nodes down), then a new leader: before it
// expires anything it gives the lock lease and the session a full TTL from
// its takeover, so the holder, who could not renew meanwhile, keeps its
// lock. Left without renewals after that, the lease and the session expire
// as usual, no earlier than a TTL after the takeover.
func TestClusterNewLeaderExtendsLeases(t *testing.T) {
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	c := NewCluster(t, 3, Config{}, func(i int, cfg *Config) { cfg.Observer = recs[i].observe })
	l := c.WaitLeader(testTimeout)
	const lease, sessionTTL = 300 * time.Millisecond, 400 * time.Millisecond
	a := openSession(t, c.Node(l), "a", sessionTTL)
	b := openSession(t, c.Node(l), "b", time.Minute)
	got := mustApply(t, c.Node(l), Lock(a.id, a.next(), lockd.LockRequest{Name: "x", TTL: lease, Wait: -1}))
	if !got.Lock.Granted {
		t.Fatalf("lock: %+v", got)
	}
	mustApply(t, c.Node(l), Lock(b.id, b.next(), lockd.LockRequest{Name: "x", Wait: -1}))
	before := c.Node(l).raft.LastIndex()
	granted := time.Now()

	survivor := follower(c, l)
	other := 3 - l - survivor
	c.Kill(l)
	c.Kill(other)
	// The outage: no leader, so nobody can renew anything, for twice the
	// longest TTL.
	time.Sleep(2*sessionTTL - time.Since(granted))
	c.Restart(other)
	nl := c.WaitLeader(testTimeout)

	ext := recs[nl].waitFor(t, "a new leader extends leases", func(a Applied) bool {
		return a.Index > before && a.Command.Op == OpExtendLeases
	})
	st := lockStatus(t, c.Node(nl), Consistent, "x")
	if len(st.Holders) != 1 || st.Holders[0].Session != a.id || st.Holders[0].Token != got.Lock.Grant.Token {
		t.Fatalf("after the outage the holders are %+v; want session %d with token %d", st.Holders, a.id, got.Lock.Grant.Token)
	}
	if ext.Result.Extended != 1 {
		t.Fatalf("the new leader's ExtendLeases moved %d leases, want 1", ext.Result.Extended)
	}
	if want := ext.Result.Time.Add(lease); st.Holders[0].Expires.Before(want) {
		t.Fatalf("lease expires at %v, before a full TTL after the takeover (%v)", st.Holders[0].Expires, want)
	}
	// Nobody renews: the lease expires (b is granted), then the session.
	lost := recs[nl].waitFor(t, "a loses x", func(ap Applied) bool {
		for _, ev := range eventsOf(ap) {
			if ev.Kind == lockd.EventLost && ev.Session == a.id {
				return true
			}
		}
		return false
	})
	if lost.Result.Time.Before(ext.Result.Time.Add(lease)) {
		t.Fatalf("lease lost at %v, before a full TTL after the takeover at %v", lost.Result.Time, ext.Result.Time)
	}
	if evs := eventsOf(lost); len(evs) != 2 || evs[1].Kind != lockd.EventGranted || evs[1].Session != b.id {
		t.Fatalf("the expiry's events: %+v", evs)
	}
	expired := recs[nl].waitFor(t, "a's session expires", func(ap Applied) bool {
		return ap.Index > before && ap.Command.Op == OpExpireSession && ap.Command.Session == a.id
	})
	if expired.Result.Time.Before(ext.Result.Time.Add(sessionTTL)) {
		t.Fatalf("session expired at %v, before a full TTL after the takeover at %v", expired.Result.Time, ext.Result.Time)
	}
}

func eventsOf(a Applied) []lockd.Event {
	if a.Result == nil {
		return nil
	}
	return a.Result.Events
}

// keepAlive sends keepalives for id through n every period until stop is
// closed, and reports the first time the leader did not know the session.
func keepAlive(t *testing.T, n *Node, id lockd.SessionID, period time.Duration, stop <-chan struct{}) <-chan bool {
	lost := make(chan bool, 1)
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			unknown, err := n.Keepalive(ctx, []lockd.SessionID{id})
			cancel()
			if err == nil && len(unknown) > 0 {
				lost <- true
				return
			}
			select {
			case <-stop:
				lost <- false
				return
			case <-tick.C:
			}
		}
	}()
	return lost
}

// TestClusterSessionExpiry: the leader expires a session that sends no
// keepalives (its lock goes to the next in line), and keeps one that does,
// through a follower, for many TTLs.
func TestClusterSessionExpiry(t *testing.T) {
	rec := newRecorder()
	c := NewCluster(t, 3, Config{}, func(i int, cfg *Config) {
		if i == 0 {
			cfg.Observer = rec.observe
		}
	})
	l := c.WaitLeader(testTimeout)
	f := follower(c, l)
	const ttl = 200 * time.Millisecond
	a := openSession(t, c.Node(l), "a", ttl)
	b := openSession(t, c.Node(f), "b", ttl)
	stop := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(stop) })
	bLost := keepAlive(t, c.Node(f), b.id, ttl/4, stop)
	opened := time.Now()

	mustApply(t, c.Node(l), Lock(a.id, a.next(), lockd.LockRequest{Name: "x", Wait: -1}))
	mustApply(t, c.Node(f), Lock(b.id, b.next(), lockd.LockRequest{Name: "x", Wait: -1}))
	exp := rec.waitFor(t, "a's session expires", func(ap Applied) bool {
		return ap.Command.Op == OpExpireSession && ap.Command.Session == a.id
	})
	if evs := eventsOf(exp); len(evs) != 1 || evs[0].Kind != lockd.EventGranted || evs[0].Session != b.id {
		t.Fatalf("a's expiry events: %+v", evs)
	}
	if unknown, err := c.Node(f).Keepalive(testCtx(t), []lockd.SessionID{a.id, b.id}); err != nil || len(unknown) != 1 || unknown[0] != a.id {
		t.Fatalf("keepalive after a's expiry: unknown %v, err %v", unknown, err)
	}
	// b has kept its session alive for many TTLs and holds x.
	for time.Since(opened) < 5*ttl {
		select {
		case <-bLost:
			t.Fatal("b's session was lost although it sent keepalives")
		case <-time.After(ttl):
		}
	}
	if o := owners(t, c.Node(f), Consistent, "x"); len(o) != 1 || o[0].Session != b.id {
		t.Fatalf("x's owners: %+v", o)
	}
	once.Do(func() { close(stop) })
	<-bLost
	rec.waitFor(t, "b's session expires once its keepalives stop", func(ap Applied) bool {
		return ap.Command.Op == OpExpireSession && ap.Command.Session == b.id
	})
}

// TestClusterStalledLeaderExtends: a leader whose own duties stood still
// for longer than a lease's TTL (as under SIGSTOP or a VM pause) extends the
// leases instead of expiring them when it resumes: its holder, who could
// not renew through it meanwhile, keeps the lock.
func TestClusterStalledLeaderExtends(t *testing.T) {
	rec := newRecorder()
	c := NewCluster(t, 3, Config{}, func(i int, cfg *Config) { cfg.Observer = rec.observe })
	l := c.WaitLeader(testTimeout)
	// Only node l's recorder matters; the others share rec but l applies
	// everything too, so look at entries applied after the stall.
	n := c.Node(l)
	const lease = 300 * time.Millisecond
	a := openSession(t, n, "a", time.Minute)
	got := mustApply(t, n, Lock(a.id, a.next(), lockd.LockRequest{Name: "x", TTL: lease}))
	before := n.raft.LastIndex()

	// The lessor and its clock watcher stop at their next turn (raft goes
	// on, so the node stays leader), as under SIGSTOP, for longer than the
	// lease; no one renews meanwhile.
	release := make(chan struct{})
	paused := make(chan struct{})
	var once sync.Once
	pause := func() {
		select {
		case <-release:
		default:
			once.Do(func() { close(paused) })
			<-release
		}
	}
	n.lessor.pause.Store(&pause)
	<-paused
	time.Sleep(stallAfter + lease)
	close(release)

	// The leader's first duty after the stall must be the extension, not
	// the expiry that its clock now says is overdue.
	first := rec.waitFor(t, "the leader's first duty after the stall", func(ap Applied) bool {
		return ap.Index > before && (ap.Command.Op == OpExtendLeases || ap.Command.Op == OpAdvance)
	})
	if first.Command.Op != OpExtendLeases || first.Result.Extended != 1 {
		t.Fatalf("after the stall the leader applied %s first (%+v); want an extension of 1 lease", first.Command.Op, first.Result)
	}
	if o := owners(t, n, Consistent, "x"); len(o) != 1 || o[0].Token != got.Lock.Grant.Token {
		t.Fatalf("after the stall, x's owners: %+v", o)
	}
}
