package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
)

func (c *testCluster) addrs() string {
	var a []string
	for _, m := range c.members {
		a = append(a, m.addr)
	}
	return strings.Join(a, ",")
}

// TestClientResumesAcrossLeaderChange: a Go client connected to the leader
// holds a lock with a lease and one without, and a second client waits in
// line; the leader stops. The first client resumes at another member:
// both locks stay held with the same tokens (their Done does not close),
// and the waiter, resumed too, is granted in its turn.
func TestClientResumesAcrossLeaderChange(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	l := c.leader()
	c.settled()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	// Connected to the leader first, then the others.
	list := l.addr + "," + c.addrs()
	a, err := lockd.Dial(ctx, list, lockd.Options{Client: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if info, ok := a.Cluster(); !ok || info.Node != l.id || len(info.Servers) != 3 {
		t.Fatalf("cluster info: %+v %v", info, ok)
	}
	x, err := a.Lock(ctx, "x", lockd.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.Lock(ctx, "y", lockd.Exclusive, lockd.WithTTL(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b, err := lockd.Dial(ctx, list, lockd.Options{Client: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	queued := make(chan int, 1)
	got := make(chan *lockd.Lease, 1)
	go func() {
		l, err := b.Lock(ctx, "x", lockd.Exclusive, lockd.OnQueued(func(p int) { queued <- p }))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	if p := <-queued; p != 1 {
		t.Fatalf("b queued at %d", p)
	}

	c.stopMember(l)
	deadline := time.Now().Add(safety)
	for a.Server() == l.addr || b.Server() == l.addr {
		if time.Now().After(deadline) {
			t.Fatal("the clients did not move off the stopped leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := a.Status(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, lk := range []*lockd.Lease{x, y} {
		select {
		case <-lk.Done():
			t.Fatalf("lease %s ended across the failover: %v", lk.Name, lk.Err())
		default:
		}
		found := false
		for _, s := range st.Locks {
			if s.Name == lk.Name && len(s.Holders) == 1 && s.Holders[0].Token == lk.Token && s.Holders[0].Session == a.Session() {
				found = true
			}
		}
		if !found {
			t.Fatalf("after the failover the cluster says %+v; want %s held by %d with token %d", st.Locks, lk.Name, a.Session(), lk.Token)
		}
	}
	// y's lease is renewed at the new leader.
	if err := a.Unlock(ctx, x); err != nil {
		t.Fatal(err)
	}
	select {
	case gx := <-got:
		if gx == nil || gx.Token <= x.Token {
			t.Fatalf("b's grant %+v", gx)
		}
	case <-ctx.Done():
		t.Fatal("b was never granted x")
	}
	time.Sleep(4 * time.Second) // past y's TTL: it must have been renewed through the new leader
	select {
	case <-y.Done():
		t.Fatalf("y lost after the failover: %v", y.Err())
	default:
	}
	if err := y.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestClientSessionLost: a client whose session is gone (closed from
// elsewhere) learns it: its leases end with ErrSessionLost.
func TestClientSessionLostWhenResumedElsewhere(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	a, err := lockd.Dial(ctx, l.addr, lockd.Options{Client: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	x, err := a.Lock(ctx, "x", lockd.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else takes the session over (RESUME with its secret).
	other := dialLine(t, c.follower().addr)
	info, _ := a.Cluster()
	other.send("RESUME " + strconv.FormatUint(uint64(a.Session()), 10) + " " + info.Secret)
	other.expect("HOLDER x ")
	select {
	case <-x.Done():
	case <-ctx.Done():
		t.Fatal("the lease did not end")
	}
	if !errors.Is(x.Err(), lockd.ErrSessionLost) {
		t.Fatalf("lease ended with %v", x.Err())
	}
}
