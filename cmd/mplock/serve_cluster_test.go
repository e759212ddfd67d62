package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/proctest"
	"mplock/lockd"
)

// These tests run real clusters of `mplock serve` processes: free loopback
// ports, private data dirs, every process killed and reaped at the end
// (startServe). They are about processes dying and stopping, so they kill
// and stop them for real.

// serveCluster is n `mplock serve` members on fixed loopback ports (so
// that a restarted member comes back where its peers and clients look).
type serveCluster struct {
	t      *testing.T
	dir    string
	ids    []string
	client []string
	raft   []string
	args   []string
	procs  []*serveProc
}

// freePorts returns n loopback addresses that were free a moment ago.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

func startServeCluster(t *testing.T, n int, args ...string) *serveCluster {
	t.Helper()
	c := &serveCluster{t: t, dir: t.TempDir(), client: freePorts(t, n), raft: freePorts(t, n), args: args, procs: make([]*serveProc, n)}
	var initial []string
	for i := range n {
		c.ids = append(c.ids, fmt.Sprintf("n%d", i+1))
		initial = append(initial, c.ids[i]+"="+c.raft[i])
	}
	c.args = append([]string{"--initial-cluster", strings.Join(initial, ",")}, args...)
	for i := range n {
		c.start(i)
	}
	return c
}

func (c *serveCluster) start(i int) {
	c.t.Helper()
	c.procs[i] = startServe(c.t, append([]string{"--node", c.ids[i], "--listen", c.client[i], "--raft-listen", c.raft[i],
		"--data-dir", filepath.Join(c.dir, c.ids[i])}, c.args...)...)
}

func (c *serveCluster) signal(i int, sig syscall.Signal) {
	c.t.Helper()
	if err := c.procs[i].cmd.Process.Signal(sig); err != nil {
		c.t.Fatal(err)
	}
	if sig == syscall.SIGKILL {
		c.procs[i].cmd.Wait()
		c.procs[i] = nil
	}
}

func (c *serveCluster) servers() string { return strings.Join(c.client, ",") }

// leader asks the live members, not in skip, until one names a leader
// that is live and not in skip, and returns its index.
func (c *serveCluster) leader(skip ...int) int {
	c.t.Helper()
	found := -1
	proctest.Eventually(c.t, "a leader among the live members", func() bool {
		for i, p := range c.procs {
			if p == nil || contains(skip, i) {
				continue
			}
			l, ok := c.leaderSays(i)
			if j := indexOf(c.ids, l); ok && j >= 0 && c.procs[j] != nil && !contains(skip, j) {
				found = j
				return true
			}
		}
		return false
	})
	return found
}

// leaderSays asks member i whom it knows as leader (MEMBERS).
func (c *serveCluster) leaderSays(i int) (string, bool) {
	conn, err := net.DialTimeout("tcp", c.client[i], time.Second)
	if err != nil {
		return "", false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "MEMBERS\n")
	buf := make([]byte, 8192)
	var got string
	for !strings.Contains(got, "OK MEMBERS") {
		n, err := conn.Read(buf)
		got += string(buf[:n])
		if err != nil {
			return "", false
		}
	}
	_, rest, _ := strings.Cut(got, "OK MEMBERS leader=")
	l, _, _ := strings.Cut(rest, " ")
	return l, l != "-"
}

func contains(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}

func dialCluster(t *testing.T, servers, name string) *lockd.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	cl, err := lockd.Dial(ctx, servers, lockd.Options{Client: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func held(t *testing.T, l *lockd.Lease) {
	t.Helper()
	select {
	case <-l.Done():
		t.Fatalf("lease %s (token %d) ended: %v", l.Name, l.Token, l.Err())
	default:
	}
}

// TestClusterLeaderKill: three members; a client at the leader holds two
// locks (one with a lease), two clients at the followers wait for one of
// them in line. The leader is killed with SIGKILL. A new leader is
// elected; the holder resumes at another member and keeps both locks with
// their tokens (their Done never closes); the waiters keep their order;
// every later token is higher. The time from the kill to the holder's
// first successful LOCK is the failover a client sees (default raft
// timeouts).
func TestClusterLeaderKill(t *testing.T) {
	c := startServeCluster(t, 3, "--session-ttl", "5s")
	l := c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	a := dialCluster(t, c.client[l]+","+c.servers(), "a")
	x, err := a.Lock(ctx, "x", lockd.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.Lock(ctx, "y", lockd.Exclusive, lockd.WithTTL(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var waiters []*lockd.Client
	grants := make(chan *lockd.Lease, 2)
	for i, j := range []int{(l + 1) % 3, (l + 2) % 3} {
		w := dialCluster(t, c.client[j], fmt.Sprintf("w%d", i+1))
		waiters = append(waiters, w)
		queued := make(chan int, 1)
		go func() {
			lease, err := w.Lock(ctx, "x", lockd.Exclusive, lockd.OnQueued(func(p int) { queued <- p }))
			if err != nil {
				t.Errorf("waiter %d: %v", i+1, err)
			}
			grants <- lease
		}()
		if p := <-queued; p != i+1 {
			t.Fatalf("waiter %d queued at %d", i+1, p)
		}
	}

	c.signal(l, syscall.SIGKILL)
	killed := time.Now()
	var probe *lockd.Lease
	for probe == nil {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		probe, err = a.TryLock(pctx, "probe", lockd.Exclusive)
		pcancel()
		if err != nil && ctx.Err() != nil {
			t.Fatalf("no LOCK succeeded after the leader's kill: %v", err)
		}
	}
	failover := time.Since(killed)
	nl := c.leader(l)
	t.Logf("leader %s killed; %s leads; the holder's next LOCK succeeded %v after the kill (at %s)",
		c.ids[l], c.ids[nl], failover.Round(time.Millisecond), a.Server())
	if a.Server() == c.client[l] {
		t.Fatalf("the holder still talks to the killed leader")
	}
	held(t, x)
	held(t, y)
	st, err := waiters[0].Status(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Locks) != 1 || len(st.Locks[0].Holders) != 1 || st.Locks[0].Holders[0].Token != x.Token ||
		len(st.Locks[0].Waiters) != 2 || st.Locks[0].Waiters[0].Session != waiters[0].Session() || st.Locks[0].Waiters[1].Session != waiters[1].Session() {
		t.Fatalf("after the failover x is %+v; want held with token %d, waiters %d then %d", st.Locks, x.Token, waiters[0].Session(), waiters[1].Session())
	}
	// y's lease (3s) is renewed through the new leader: it outlives two TTLs.
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		held(t, y)
		time.Sleep(100 * time.Millisecond) // watching, not synchronising: y must not end meanwhile
	}
	if err := a.Unlock(ctx, x); err != nil {
		t.Fatal(err)
	}
	last := probe.Token
	for i := range 2 {
		g := <-grants
		if g == nil || g.Token <= last {
			t.Fatalf("grant %d: %+v, not above token %d", i+1, g, last)
		}
		if got := g.Name; got != "x" {
			t.Fatalf("grant %v", got)
		}
		last = g.Token
		g.Unlock(ctx)
	}
}
