package lockbench

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
	"mplock/lockd/cluster/clustertest"
	"mplock/lockd/replica"
)

// TestRunMplock runs every scenario briefly against a real loopback server
// through both mplock drivers. It checks that pairs are counted and that a
// shared name needs no retries; it asserts nothing about speed.
func TestRunMplock(t *testing.T) {
	srv, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, d := range []struct {
		name string
		dial Dialer
	}{{"mplock", Mplock(addr)}, {"mplock-raw", MplockRaw(addr, "")}} {
		for _, sc := range []Scenario{{Clients: 1}, {Clients: 4}, {Clients: 4, Shared: true}} {
			res, err := Run(ctx, d.name, d.dial, sc, 50*time.Millisecond, "t")
			if err != nil {
				t.Fatalf("%s %s: %v", d.name, sc, err)
			}
			if res.Pairs == 0 || res.PairsPerSec <= 0 || res.Retries != 0 || res.P99 < res.P50 {
				t.Errorf("%s %s: %+v", d.name, sc, res)
			}
		}
	}
	if st := srv.Stats(); st.Holders != 0 || st.Waiters != 0 {
		t.Errorf("after the runs: %+v, want nothing held or queued", st)
	}
}

// startServer serves a single lock server on a free loopback port, until
// the test ends, and returns it and its address.
func startServer(t *testing.T) (*lockd.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := lockd.NewServer(lockd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv, ln.Addr().String()
}

// TestRunRead reads a held name from a real loopback server: every answer
// must show the holder (RunRead checks it), and the figures must be
// counted.
func TestRunRead(t *testing.T) {
	srv, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topo, err := Discover(ctx, addr, "")
	if err != nil || topo.Cluster {
		t.Fatalf("Discover of a single server: %+v %v", topo, err)
	}
	for _, r := range []Read{{Verb: lockd.VerbCheck}, {Verb: lockd.VerbStatus}} {
		res, err := RunRead(ctx, "mplock", addr, "", r, 50*time.Millisecond, "held", "")
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		if res.Reads == 0 || res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.Read != r.String() {
			t.Errorf("%s: %+v", r, res)
		}
	}
	// A window shorter than any read still measures one, at a rate taken
	// over the time measured (a consistent read stalled past a short
	// window under load once gave 0 reads).
	res, err := RunRead(ctx, "mplock", addr, "", Read{Verb: lockd.VerbCheck}, time.Nanosecond, "held", "")
	if err != nil || res.Reads == 0 || res.ReadsPerSec <= 0 || res.ReadsPerSec > 1e9 || res.Max <= 0 {
		t.Errorf("a 1ns window: %+v, %v", res, err)
	}
	if st := srv.Stats(); st.Holders != 0 {
		t.Errorf("after the reads: %+v, want nothing held", st)
	}
}

// TestCluster runs the benchmarks against a real 3-member cluster in this
// process (lockd servers over cluster backends, raft on loopback, logs on
// disk): Discover finds the leader and the followers, a dialer pinned to
// a member refuses another, the scenarios run at the leader and at a
// follower, and reads at every consistency answer at both.
func TestCluster(t *testing.T) {
	addrs, _ := clustertest.Start(t, 3, func(c *replica.Config) {
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var topo Topology
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		topo, err = Discover(ctx, strings.Join(addrs, ","), "")
		if err == nil && len(topo.Followers) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Discover: %+v %v", topo, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !topo.Cluster || topo.Leader.Role != "leader" || len(topo.Addrs) != 3 || topo.Addrs[0] != topo.Leader.Addr {
		t.Fatalf("Discover: %+v", topo)
	}
	f := topo.Followers[0]
	if f.Role != "follower" || f.Node == topo.Leader.Node {
		t.Fatalf("follower %+v, leader %+v", f, topo.Leader)
	}
	if via := topo.Via(f); !strings.HasPrefix(via, f.Addr+",") || strings.Count(via, ",") != 2 {
		t.Errorf("Via(%s) = %q", f.Node, via)
	}
	// A client meant for the follower that reaches the leader is refused.
	if _, err := MplockAt(topo.Via(topo.Leader), f.Node, 0, "")(ctx, 0); !errors.Is(err, ErrWrongMember) {
		t.Errorf("MplockAt the leader for %s: %v, want ErrWrongMember", f.Node, err)
	}
	for _, e := range []Entry{topo.Leader, f} {
		for _, sc := range []Scenario{{Clients: 1}, {Clients: 3, Shared: true}} {
			res, err := Run(ctx, "mplock", MplockAt(topo.Via(e), e.Node, 0, ""), sc, 100*time.Millisecond, "c-"+e.Node)
			if err != nil {
				t.Fatalf("%s at %s: %v", sc, e.Node, err)
			}
			if res.Pairs == 0 {
				t.Errorf("%s at %s: %+v", sc, e.Node, res)
			}
		}
		for _, c := range []lockd.Consistency{lockd.ConsistencyStale, lockd.ConsistencyDefault, lockd.ConsistencyConsistent} {
			r := Read{Verb: lockd.VerbCheck, Consistency: c}
			res, err := RunRead(ctx, "mplock", topo.Via(e), e.Node, r, 50*time.Millisecond, "r-"+e.Node, "")
			if err != nil {
				t.Fatalf("%s at %s: %v", r, e.Node, err)
			}
			if res.Reads == 0 || res.Node != e.Node || res.Read != "CHECK consistency="+string(c) {
				t.Errorf("%s at %s: %+v", r, e.Node, res)
			}
		}
	}
}
