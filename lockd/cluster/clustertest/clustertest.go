// Package clustertest starts a replicated lock service in a test's own
// process, as net/http/httptest starts an HTTP server: lockd servers over
// lockd/cluster backends, raft over TCP on loopback, logs in bolt.
//
// It is a package of its own, not part of lockd/lockdtest, because it
// imports lockd/cluster, whose own tests import lockd/lockdtest.
package clustertest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"mplock/lockd"
	"mplock/lockd/cluster"
	"mplock/lockd/lockdtest"
	"mplock/lockd/replica"
)

// Start starts members n1..nN of a cluster, with raft timeouts short for
// a test (heartbeat and election 100 ms, leader lease 50 ms) and session
// TTL 5 s, which tune may change before each member starts. It returns
// the members' client addresses and backends, in that order, once a
// member leads (and is ready) and every member knows every member's
// client address (a session moves between them); it fails t if that
// takes over 20 s. Everything stops when the test ends.
func Start(t testing.TB, n int, tune func(*replica.Config)) ([]string, []*cluster.Backend) {
	t.Helper()
	dir := t.TempDir()
	lns, peers := lockdtest.Peers(t, n)
	var addrs []string
	var bes []*cluster.Backend
	for i, ln := range lns {
		rc := replica.Config{NodeID: peers[i].ID, RaftListen: peers[i].Addr, DataDir: filepath.Join(dir, peers[i].ID),
			ClientAddr: ln.Addr().String(), InitialCluster: peers, Secret: "clustertest-secret",
			HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond,
			SessionTTL: 5 * time.Second}
		if tune != nil {
			tune(&rc)
		}
		be, err := cluster.New(cluster.Config{Replica: rc})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := lockd.NewServer(lockd.Config{Replicated: be})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			be.Close(ctx)
		})
		addrs, bes = append(addrs, ln.Addr().String()), append(bes, be)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		leader, known := false, true
		for _, be := range bes {
			st := be.Node().Status()
			leader = leader || st.State == "Leader" && st.Ready
			for _, m := range st.Members {
				known = known && m.ClientAddr != ""
			}
		}
		if leader && known {
			return addrs, bes
		}
		if time.Now().After(deadline) {
			t.Fatal("clustertest: no ready leader, or a member without a client address, within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
