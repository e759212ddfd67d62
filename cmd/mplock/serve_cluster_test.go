package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mplock/internal/freeport"
	"mplock/internal/proctest"
	"mplock/lockd"
	"mplock/lockd/lockdtest"
)

// These tests run real clusters of `mplock serve` processes: free loopback
// ports, private data dirs, every process killed and reaped at the end
// (startServe). They are about processes dying and stopping, so they kill
// and stop them for real.

// testClusterSecret is the --token-file secret of these tests' clusters
// (a cluster member needs one); testSecretFile writes it.
const testClusterSecret = "mplock-test-cluster-secret-0123456789"

// testSecretFile writes testClusterSecret to a private file and returns
// its path.
func testSecretFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(testClusterSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// authLines dials addr and presents testClusterSecret.
func authLines(t *testing.T, addr string) *lineConn {
	t.Helper()
	l := dialLines(t, addr)
	l.send("AUTH " + testClusterSecret + "\n")
	l.expect("OK AUTH")
	return l
}

// serveCluster is n `mplock serve` members on fixed loopback ports (so
// that a restarted member comes back where its peers and clients look),
// all with testClusterSecret in their --token-file (secret).
type serveCluster struct {
	t      *testing.T
	dir    string
	secret string
	ids    []string
	client []string
	raft   []string
	args   []string
	procs  []*serveProc
}

// freePorts returns n loopback addresses that were free a moment ago,
// below the ephemeral range (internal/freeport).
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := freeport.Loopback(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

func startServeCluster(t *testing.T, n int, args ...string) *serveCluster {
	t.Helper()
	c := &serveCluster{t: t, dir: t.TempDir(), client: freePorts(t, n), raft: freePorts(t, n), args: args, procs: make([]*serveProc, n)}
	var initial []string
	for i := range n {
		c.ids = append(c.ids, fmt.Sprintf("n%d", i+1))
		initial = append(initial, c.ids[i]+"="+c.raft[i])
	}
	c.secret = testSecretFile(t)
	c.args = append([]string{"--initial-cluster", strings.Join(initial, ","), "--token-file", c.secret}, args...)
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

// leaderSays asks member i whom it knows as leader (MEMBERS, on a
// connection without a session: rawMembers).
func (c *serveCluster) leaderSays(i int) (string, bool) {
	l, _, err := rawMembers(c.client[i], testClusterSecret)
	return l, err == nil && l != ""
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
	cl, err := lockd.Dial(ctx, servers, lockd.Options{Client: name, Secret: testClusterSecret})
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

// TestClusterKilledLeaderRestarts: a killed leader started again with its
// data dir while its peers are busy (MEMBERS asked of every member all the
// time, as mplock cluster's probes and mplock status do, so that every
// member asks every other for its status over the cluster port) comes
// back as a follower, three times over; the client's lock keeps its
// token throughout. The peers' requests reach a restarted member the
// moment its cluster port listens, before its raft runs: they must wait
// for it, not crash it.
func TestClusterKilledLeaderRestarts(t *testing.T) {
	c := startServeCluster(t, 3, fast...)
	c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	a := dialCluster(t, c.servers(), "a")
	x, err := a.Lock(ctx, "x", lockd.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for _, addr := range c.client {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rawMembers(addr, testClusterSecret) // a member restarting may refuse or fail it
			}
		}()
	}
	for round := range 3 {
		l := c.leader()
		c.signal(l, syscall.SIGKILL)
		nl := c.leader(l)
		c.start(l) // fails the test if the member dies before it serves
		proctest.Eventually(t, c.ids[l]+" back as a follower", func() bool {
			s, ok := c.leaderSays(l)
			return ok && s == c.ids[nl]
		})
		t.Logf("round %d: %s killed, %s leads, %s back as a follower", round+1, c.ids[l], c.ids[nl], c.ids[l])
	}
	held(t, x)
	if r, err := a.Check(ctx, "x", lockd.ConsistencyConsistent); err != nil || len(r.Holders) != 1 || r.Holders[0].Token != x.Token {
		t.Fatalf("after three restarts x is %+v, %v; want token %d", r, err, x.Token)
	}
}

// fast are raft timeouts for the tests that are not about them.
var fast = []string{"--heartbeat-timeout", "100ms", "--election-timeout", "100ms", "--session-ttl", "5s"}

// TestClusterFollowerKillAndStoppedLeader: a follower killed with SIGKILL
// costs nothing (locks go on at the leader; MEMBERS shows it down); the
// leader stopped with SIGSTOP past the election timeout is replaced, and
// when it runs again (SIGCONT) it has stepped down and grants nothing of
// its own: a try-lock of a name taken meanwhile, which waited in its
// socket, is refused, and its answer names the new holder.
func TestClusterFollowerKillAndStoppedLeader(t *testing.T) {
	c := startServeCluster(t, 3, fast...)
	l := c.leader()
	f := (l + 1) % 3

	c.signal(f, syscall.SIGKILL)
	x := authLines(t, c.client[l])
	x.send("LOCK a\n")
	x.expect("OK LOCKED a WRITE")
	x.send("MEMBERS\n")
	for range 3 {
		if m := x.expect("MEMBER "); strings.Contains(m, "MEMBER "+c.ids[f]+" ") != strings.Contains(m, "role=down") {
			t.Fatalf("with %s killed, MEMBERS says %q", c.ids[f], m)
		}
	}
	x.expect("OK MEMBERS leader=" + c.ids[l])
	c.start(f) // back from its data dir

	stale := authLines(t, c.client[l])
	stale.send("HELLO stale\n")
	stale.expect("OK HELLO")
	c.signal(l, syscall.SIGSTOP)
	nl := c.leader(l)
	y := authLines(t, c.client[nl])
	y.send("PREEMPT b\n")
	tok := tokenIn(t, y.expect("OK LOCKED b WRITE"))
	// Sent to the stopped leader: it reads it only after SIGCONT.
	stale.send("PREEMPT b\n")
	c.signal(l, syscall.SIGCONT)
	if got := stale.expect(""); !strings.HasPrefix(got, "ERR locked b is locked by session") {
		t.Fatalf("the old leader, resumed, answered a try-lock of b (held by token %d) with %q", tok, got)
	}
	proctest.Eventually(t, "the old leader to know the new one", func() bool {
		s, ok := c.leaderSays(l)
		return ok && s == c.ids[nl]
	})
	z := authLines(t, c.client[l])
	z.send("CHECK b consistency=default\n")
	if h := z.expect("HOLDER b WRITE"); tokenIn(t, h) != tok {
		t.Fatalf("the old leader says b is held by %q; want token %d", h, tok)
	}
	z.expect("OK CHECK b held=true")
}

// TestClusterFullRestartAndJoin: the whole cluster killed and started again
// from its data dirs keeps the locks of a session still within its TTL (its
// client resumes it) and hands out higher tokens; a fourth node joins
// through a member's client port (--join) and is removed with mplock
// member remove.
func TestClusterFullRestartAndJoin(t *testing.T) {
	c := startServeCluster(t, 3, fast...)
	c.leader()
	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	a := dialCluster(t, c.servers(), "a")
	x, err := a.Lock(ctx, "x", lockd.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.procs {
		c.signal(i, syscall.SIGKILL)
	}
	for i := range c.procs {
		c.start(i)
	}
	c.leader()
	y, err := a.Lock(ctx, "y", lockd.Exclusive)
	if err != nil {
		t.Fatalf("after a full restart: %v", err)
	}
	held(t, x)
	if y.Token <= x.Token {
		t.Fatalf("token %d after the restart, not above %d", y.Token, x.Token)
	}
	if r, err := a.Check(ctx, "x", lockd.ConsistencyConsistent); err != nil || len(r.Holders) != 1 || r.Holders[0].Token != x.Token {
		t.Fatalf("after a full restart x is %+v, %v; want token %d", r, err, x.Token)
	}

	// A fourth member joins through n1's client port.
	raft4 := freePorts(t, 1)[0]
	startServe(t, append([]string{"--node", "n4", "--raft-listen", raft4, "--data-dir", filepath.Join(c.dir, "n4"),
		"--join", c.client[0], "--token-file", c.secret}, fast...)...)
	proctest.Eventually(t, "n4 to be a voting member", func() bool {
		m, err := a.Members(ctx)
		if err != nil || len(m.Members) != 4 {
			return false
		}
		return m.Members[3].ID == "n4" && m.Members[3].Voter && m.Members[3].Role == "follower"
	})
	out, err := mplockCommand(t, "member", "remove", "n4", "--server", c.servers(), "--token-file", c.secret).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "removed n4") {
		t.Fatalf("mplock member remove n4: %v\n%s", err, out)
	}
	if m, err := a.Members(ctx); err != nil || len(m.Members) != 3 {
		t.Fatalf("after member remove: %+v, %v", m, err)
	}
}

// TestServeDataDirKeepsLocks: `mplock serve --data-dir` alone is a
// one-node cluster: killed and started again, it still has a session's
// lock (RESUME with the session's secret finds it, with its token), and
// its tokens rise.
func TestServeDataDirKeepsLocks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, "--data-dir", dir, "--session-ttl", "1m")
	c := dialLines(t, srv.addr)
	c.send("HELLO keeper\nLOCK x\n")
	hello := c.expect("OK HELLO ")
	tok := tokenIn(t, c.expect("OK LOCKED x"))
	session, secret := helloField(t, hello, "session"), helloField(t, hello, "secret")
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.cmd.Wait()

	again := startServe(t, "--data-dir", dir, "--session-ttl", "1m")
	r := dialLines(t, again.addr)
	r.send("RESUME " + session + " " + secret + "\n")
	if h := r.expect("HOLDER x WRITE"); tokenIn(t, h) != tok {
		t.Fatalf("after the restart x is %q; want token %d", h, tok)
	}
	r.expect("OK RESUMED session=" + session + " held=1")
	r.send("LOCK z\n")
	if z := tokenIn(t, r.expect("OK LOCKED z")); z <= tok {
		t.Fatalf("token %d after the restart, not above %d", z, tok)
	}
	r.send("QUIT\n")
	r.expect("OK BYE")
}

func helloField(t *testing.T, line, key string) string {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in %q", key, line)
	return ""
}

// TestServeClusterNeedsASecret: --initial-cluster and --join without
// --token-file are usage errors that say how to make one; --data-dir
// alone makes a secret of its own for the raft port (0600, in the data
// dir, the same after a restart), so that the public proof of no secret
// opens nothing, and refuses MEMBER ADD and REMOVE from clients that need
// no AUTH.
func TestServeClusterNeedsASecret(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--data-dir", filepath.Join(dir, "a"), "--initial-cluster", "n1=127.0.0.1:7555", "--node", "n1"},
		{"--data-dir", filepath.Join(dir, "b"), "--join", "127.0.0.1:5555", "--node", "n4"},
	} {
		cmd := mplockCommand(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop := time.AfterFunc(hangBound, func() { cmd.Process.Kill() }) // a server that started: fail, not hang
		err := cmd.Wait()
		stop.Stop()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out.String(), "needs --token-file") ||
			!strings.Contains(out.String(), "head -c 32 /dev/urandom | base64 > secret") {
			t.Errorf("serve %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}

	data := filepath.Join(dir, "one")
	srv := startServe(t, "--data-dir", data)
	fi, err := os.Lstat(filepath.Join(data, raftSecretFile))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the raft port's secret: %v, %v", fi, err)
	}
	first, err := os.ReadFile(filepath.Join(data, raftSecretFile))
	if err != nil || len(strings.TrimSpace(string(first))) < 32 {
		t.Fatalf("the raft port's secret %q: %v", first, err)
	}
	c := dialLines(t, srv.addr)
	c.send("MEMBER ADD evil4 127.0.0.1:1\nMEMBER REMOVE evil4\nLOCK x\n")
	c.expect("ERR auth MEMBER ADD needs AUTH")
	c.expect("ERR auth MEMBER REMOVE needs AUTH")
	c.expect("OK LOCKED x") // locking needs no secret here, as on one server
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()
	startServe(t, "--data-dir", data)
	if again, err := os.ReadFile(filepath.Join(data, raftSecretFile)); err != nil || string(again) != string(first) {
		t.Fatalf("the secret changed across a restart: %q, %v", again, err)
	}
}

// TestClusterClientAgreesAfterLostReplies: one Client, many goroutines
// each locking and unlocking a name of its own (far more changes in
// flight than the cluster keeps results of), and the member it is
// connected to SIGKILLed mid-run. Afterwards the client and the cluster
// agree (consistent CHECKs): the session holds nothing no goroutine
// knows of, every Lease still live is the session's grant with its
// token (none is live on a lock released or held by someone else), and
// every name can be locked again. Before the client bounded its changes
// in flight, retries beyond the cluster's window were refused: locks
// leaked, Leases stayed live on released locks, names stuck.
func TestClusterClientAgreesAfterLostReplies(t *testing.T) {
	c := startServeCluster(t, 3, fast...)
	f := (c.leader() + 1) % 3
	// At a follower: a change waits for the leader's commit and the
	// follower's own apply, so more are applied and unanswered at once.
	a := dialCluster(t, c.client[f]+","+c.servers(), "many")
	churn := lockdtest.StartChurn(a, 30, "leak", 5*time.Second)
	proctest.Eventually(t, "rounds before the kill", func() bool { return churn.Rounds() >= 300 })
	victim := indexOf(c.client, a.Server())
	if victim < 0 {
		t.Fatalf("the client is at %s, not a member", a.Server())
	}
	c.signal(victim, syscall.SIGKILL)
	after := churn.Rounds()
	proctest.Eventually(t, "rounds after the kill", func() bool { return churn.Rounds() >= after+300 || a.Err() != nil })
	live, errs := churn.Stop()
	for e, n := range errs {
		t.Logf("%d × %s", n, e)
	}
	if err := a.Err(); err != nil {
		t.Fatalf("the client ended: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), hangBound)
	defer cancel()
	checker := dialCluster(t, c.servers(), "checker")
	lockdtest.CheckAgreement(ctx, t, a, checker, churn.Names(), live, hangBound/2)
}

// TestServeClusterPeerSecret is a review's N1: with one secret for clients
// and members, any client that had it could act as a member on the raft
// port (release others' locks, wedge the log) and change the membership.
// With --peer-token-file the members have their own: here every member has
// a different clients' secret and the same members' secret, and the
// cluster elects a leader and serves (so raft and forwarding use the
// members' secret, not the clients'); a client's secret locks but cannot
// change the membership; the members' secret can; the two may not be one.
func TestServeClusterPeerSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, secret string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	peer := write("peer", "the-members-own-secret-0123456789")
	tokens := []string{write("c1", testClusterSecret), write("c2", testClusterSecret+"-2"), write("c3", testClusterSecret+"-3")}
	client, raft := freePorts(t, 3), freePorts(t, 3)
	var initial []string
	for i := range 3 {
		initial = append(initial, fmt.Sprintf("n%d=%s", i+1, raft[i]))
	}
	c := &serveCluster{t: t, dir: dir, client: client, raft: raft, ids: []string{"n1", "n2", "n3"}, procs: make([]*serveProc, 3)}
	for i := range 3 {
		c.procs[i] = startServe(t, "--node", c.ids[i], "--listen", client[i], "--raft-listen", raft[i],
			"--data-dir", filepath.Join(dir, c.ids[i]), "--initial-cluster", strings.Join(initial, ","),
			"--token-file", tokens[i], "--peer-token-file", peer)
	}
	// n1's clients' secret is testClusterSecret, which leaderSays presents.
	proctest.Eventually(t, "n1 to know a leader (raft on the members' secret)", func() bool {
		_, ok := c.leaderSays(0)
		return ok
	})
	stdout, stderr, code := runMplock(t, "client", "file_A", "PREEMPT", "--server", client[0], "--token-file", tokens[0])
	if code != 0 {
		t.Fatalf("PREEMPT with the clients' secret: exit %d\n%s%s", code, stdout, stderr)
	}
	_, stderr, code = runMplock(t, "member", "remove", "n9", "--server", client[0], "--token-file", tokens[0])
	if code == 0 || !strings.Contains(stderr, "members' secret") {
		t.Fatalf("member remove with a clients' secret: exit %d, %q; want it refused for want of the members' secret", code, stderr)
	}
	_, stderr, _ = runMplock(t, "member", "remove", "n9", "--server", client[0], "--token-file", peer)
	if strings.Contains(stderr, "secret") {
		t.Fatalf("member remove with the members' secret: %q; want no complaint about the secret", stderr)
	}
	// A session that authenticated with the clients' secret becomes a
	// member's when it presents the members' secret too.
	l := dialLines(t, client[0])
	l.send("AUTH " + testClusterSecret + "\nAUTH the-members-own-secret-0123456789\nMEMBER REMOVE n9\n")
	l.expect("OK AUTH")
	l.expect("OK AUTH")
	if line := l.expect(""); strings.Contains(line, "secret") {
		t.Fatalf("MEMBER REMOVE after AUTH with the members' secret: %q", line)
	}
	_, stderr, code = runMplock(t, "serve", "--node", "n4", "--listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "n4"), "--join", client[0], "--token-file", tokens[0], "--peer-token-file", tokens[0])
	if code != 2 || !strings.Contains(stderr, "same secret") {
		t.Fatalf("serve with one secret for both: exit %d, %q; want 2 and why", code, stderr)
	}
	// The raft port answers a peer's guess at once: a short secret may
	// not guard it, whichever file it comes from.
	short := write("short", "s3cret")
	for _, args := range [][]string{
		{"--token-file", tokens[0], "--peer-token-file", short},
		{"--token-file", short},
	} {
		_, stderr, code = runMplock(t, append([]string{"serve", "--node", "n5", "--listen", "127.0.0.1:0", "--raft-listen", "127.0.0.1:0",
			"--data-dir", filepath.Join(dir, "n5"), "--join", client[0]}, args...)...)
		if code != 2 || !strings.Contains(stderr, "guards this member's raft port, and it is 6 bytes") {
			t.Fatalf("serve %v: exit %d, %q; want 2 and why", args, code, stderr)
		}
	}
}
