package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mplock/internal/freeport"
	"mplock/lockd"
)

// freeAddrs returns n loopback addresses that were free a moment ago,
// below the ephemeral range (internal/freeport): a port from a listen on
// port 0, closed again, is where the kernel may put any outgoing
// connection before the node binds it, or a node's own dial of it.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs, err := freeport.Loopback(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// tcpCluster is a cluster of real nodes in this process: TCP on loopback,
// bolt and snapshots on disk.
type tcpCluster struct {
	t     testing.TB
	cfgs  []Config
	nodes []*Node
}

// testSecret is the cluster secret of these tests' nodes (NewNode
// requires one).
const testSecret = "test-cluster-secret"

// tcpTestConfig shortens raft's timeouts for tests (a fifth of the
// defaults), leaving room for fsync on a busy machine, and gives the
// nodes testSecret unless they have a secret.
func tcpTestConfig(cfg Config) Config {
	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 100 * time.Millisecond
		cfg.ElectionTimeout = 100 * time.Millisecond
		cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	}
	return cfg
}

func newTCPCluster(t testing.TB, n int, base Config) *tcpCluster {
	t.Helper()
	dir := t.TempDir()
	addrs := freeAddrs(t, n)
	c := &tcpCluster{t: t}
	var initial []Peer
	for i := range n {
		initial = append(initial, Peer{ID: fmt.Sprintf("n%d", i+1), Addr: addrs[i]})
	}
	if base.Secret == "" {
		base.Secret = testSecret
	}
	for i := range n {
		cfg := base
		cfg.NodeID = initial[i].ID
		cfg.RaftListen = addrs[i]
		cfg.DataDir = filepath.Join(dir, initial[i].ID)
		cfg.ClientAddr = fmt.Sprintf("127.0.0.1:%d", 5600+i)
		cfg.InitialCluster = initial
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
	}
	t.Cleanup(c.close)
	for i := range n {
		c.start(i)
	}
	return c
}

func (c *tcpCluster) start(i int) {
	c.t.Helper()
	n, err := NewNode(c.cfgs[i])
	if err != nil {
		c.t.Fatalf("start %s: %v", c.cfgs[i].NodeID, err)
	}
	c.nodes[i] = n
}

func (c *tcpCluster) shutdown(i int) {
	c.t.Helper()
	if c.nodes[i] == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.nodes[i].Shutdown(ctx); err != nil {
		c.t.Errorf("shutdown %s: %v", c.cfgs[i].NodeID, err)
	}
	c.nodes[i] = nil
}

// kill stops node i as a crash would look to its peers: its links are cut
// before raft stops.
func (c *tcpCluster) kill(i int) {
	n := c.nodes[i]
	c.nodes[i] = nil
	n.stopOnce.Do(func() { n.stopErr = n.stop(true) })
}

func (c *tcpCluster) close() {
	for i := range c.nodes {
		c.shutdown(i)
	}
}

// leader waits for a ready leader among the live nodes.
func (c *tcpCluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		for i, n := range c.nodes {
			if n == nil || n.raft.State() != raft.Leader {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			err := n.lessor.waitReady(ctx)
			cancel()
			if err == nil {
				return i
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no ready leader")
	return -1
}

func (c *tcpCluster) other(not ...int) int {
	for i, n := range c.nodes {
		skip := n == nil
		for _, x := range not {
			skip = skip || i == x
		}
		if !skip {
			return i
		}
	}
	return -1
}

// TestTCPClusterFailoverAndRestart: three real nodes (TCP, bolt on disk).
// A lock taken through a follower survives the leader's shutdown (another
// node is elected) and a full restart of the cluster from its data dirs,
// with its token; the next token is higher than every earlier one.
func TestTCPClusterFailoverAndRestart(t *testing.T) {
	c := newTCPCluster(t, 3, tcpTestConfig(Config{}))
	l := c.leader()
	f := c.other(l)
	a := openSession(t, c.nodes[f], "a", time.Minute)
	got := mustApply(t, c.nodes[f], Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
	if !got.Lock.Granted {
		t.Fatalf("lock through a follower: %+v", got)
	}
	c.shutdown(l)
	nl := c.leader()
	if nl == l {
		t.Fatal("the stopped node leads")
	}
	if o := owners(t, c.nodes[nl], Consistent, "x"); len(o) != 1 || o[0].Token != got.Lock.Grant.Token {
		t.Fatalf("after the leader's shutdown: %+v", o)
	}
	y := mustApply(t, c.nodes[c.other(l)], Lock(a.id, a.next(), lockd.LockRequest{Name: "y"}))
	c.start(l)
	// Everyone down, everyone up: the log on disk brings it all back.
	for i := range c.nodes {
		c.shutdown(i)
	}
	for i := range c.nodes {
		c.start(i)
	}
	l = c.leader()
	for _, name := range []string{"x", "y"} {
		if o := owners(t, c.nodes[l], Consistent, name); len(o) != 1 || o[0].Session != a.id {
			t.Fatalf("after a full restart, %s's owners: %+v", name, o)
		}
	}
	z := mustApply(t, c.nodes[c.other(l)], Lock(a.id, a.next(), lockd.LockRequest{Name: "z"}))
	if z.Lock.Grant.Token <= y.Lock.Grant.Token || y.Lock.Grant.Token <= got.Lock.Grant.Token {
		t.Fatalf("tokens %d, %d, %d do not rise across the restart", got.Lock.Grant.Token, y.Lock.Grant.Token, z.Lock.Grant.Token)
	}
	st := c.nodes[l].Status()
	if st.State != "Leader" || len(st.Members) != 3 || st.Members[0].ClientAddr == "" || !st.Ready {
		t.Fatalf("status: %+v", st)
	}
}

// TestTCPJoinAndRemove: a fourth node joins a running cluster through a
// member (with the cluster secret), catches up, serves consistent reads,
// and is removed again (through a follower); a node that does not know the
// secret is refused.
func TestTCPJoinAndRemove(t *testing.T) {
	const secret = "s3cret"
	c := newTCPCluster(t, 3, tcpTestConfig(Config{Secret: secret}))
	l := c.leader()
	a := openSession(t, c.nodes[l], "a", time.Minute)
	mustApply(t, c.nodes[l], Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))

	f := c.other(l)
	cfg := c.cfgs[0]
	cfg.NodeID = "n4"
	cfg.RaftListen = freeAddrs(t, 1)[0]
	cfg.DataDir = filepath.Join(t.TempDir(), "n4")
	cfg.InitialCluster = nil
	cfg.Join = []string{c.cfgs[f].RaftListen} // through a follower: it forwards to the leader
	n4, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n4.Shutdown(context.Background())
	if o := owners(t, n4, Consistent, "x"); len(o) != 1 || o[0].Session != a.id {
		t.Fatalf("the new member's view: %+v", o)
	}
	members, _ := c.nodes[l].Members()
	if len(members) != 4 || members[3].ID != "n4" || !members[3].Voter {
		t.Fatalf("members after the join: %+v", members)
	}

	// A stranger without the secret cannot join (nor talk raft).
	stranger := newTCPPeers("wrong", nil)
	defer stranger.close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = stranger.call(ctx, "", raft.ServerAddress(c.cfgs[l].RaftListen), &rpcRequest{Kind: rpcJoin, ID: "n5", Addr: "127.0.0.1:1"})
	cancel()
	if err == nil {
		t.Fatal("a join without the secret was answered")
	}
	if members, _ := c.nodes[l].Members(); len(members) != 4 {
		t.Fatalf("members after the stranger: %+v", members)
	}

	if err := c.nodes[f].RemoveMember(testCtx(t), "n4"); err != nil {
		t.Fatalf("remove n4 through a follower: %v", err)
	}
	members, _ = c.nodes[l].Members()
	if len(members) != 3 {
		t.Fatalf("members after the removal: %+v", members)
	}
	// The others go on without it (the removed node itself may never hear
	// of its removal: the leader stops replicating to it; its operator
	// stops it).
	n4.Shutdown(context.Background())
	if r := mustApply(t, c.nodes[f], Unlock(a.id, a.next(), "x", 0)); r.Err != nil {
		t.Fatalf("unlock after the removal: %+v", r)
	}
}

// TestTCPAwaitAdmission: a node told to wait to be added neither leads a
// cluster of its own nor asks anyone; a member's Join takes it in.
func TestTCPAwaitAdmission(t *testing.T) {
	c := newTCPCluster(t, 3, tcpTestConfig(Config{}))
	l := c.leader()
	cfg := c.cfgs[0]
	cfg.NodeID = "n4"
	cfg.RaftListen = freeAddrs(t, 1)[0]
	cfg.DataDir = filepath.Join(t.TempDir(), "n4")
	cfg.InitialCluster = nil
	cfg.AwaitAdmission = true
	n4, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n4.Shutdown(context.Background())
	// Ten election timeouts: a node that bootstrapped itself would lead.
	deadline := time.Now().Add(10 * cfg.ElectionTimeout)
	for time.Now().Before(deadline) {
		if st := n4.Status(); st.State == "Leader" || len(st.Members) > 0 {
			t.Fatalf("a node awaiting admission: %+v", st)
		}
		time.Sleep(cfg.ElectionTimeout / 4)
	}
	if err := c.nodes[c.other(l)].Join(testCtx(t), "n4", cfg.RaftListen); err != nil {
		t.Fatal(err)
	}
	a := openSession(t, c.nodes[l], "a", time.Minute)
	mustApply(t, c.nodes[l], Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
	if o := owners(t, n4, Consistent, "x"); len(o) != 1 || o[0].Session != a.id {
		t.Fatalf("the admitted node's view: %+v", o)
	}
}

// TestDataDirMustBePrivate: a data dir that others may enter, a symlink, a
// file, or a dir in use by another node is refused, with the reason.
func TestDataDirMustBePrivate(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o755)
	link := filepath.Join(base, "link")
	private := filepath.Join(base, "private")
	os.Symlink(open, link)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	for dir, want := range map[string]string{open: "mode 0755", link: "symlink", file: "not a directory"} {
		err := checkPrivateDir(dir)
		if !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", dir, err, want)
		}
	}
	if err := checkPrivateDir(private); err != nil {
		t.Fatalf("a new dir: %v", err)
	}
	if fi, err := os.Stat(private); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("the new dir's mode: %v %v", fi.Mode(), err)
	}
	cfg := Config{NodeID: "n1", RaftListen: "127.0.0.1:0", DataDir: private, Secret: testSecret}
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	if _, err := NewNode(cfg); !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second node on the same data dir: %v", err)
	}
}

// proxy is a TCP forwarder that can be cut: what a coordinator puts on each
// link between nodes to make partitions without root.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func newProxy(t testing.TB, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[d] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(d, c); d.Close() }()
		go func() { defer p.wg.Done(); io.Copy(c, d); c.Close() }()
	}
}

// setCut cuts the link (every connection through it is closed, new ones
// refused) or restores it.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.setCut(true)
	p.wg.Wait()
}

// TestTCPPartitionThroughProxies: every node dials every peer through a
// proxy of its own (Config.PeerAddr), as `mplock cluster` will. Cutting
// the proxies on the leader's links isolates it for raft and forwarding
// alike: the others elect a new leader and serve writes; a write at the
// isolated node does not succeed.
func TestTCPPartitionThroughProxies(t *testing.T) {
	addrs := freeAddrs(t, 3)
	ids := []string{"n1", "n2", "n3"}
	// proxies[i][j]: node i's link to node j.
	proxies := make([][]*proxy, 3)
	for i := range 3 {
		proxies[i] = make([]*proxy, 3)
		for j := range 3 {
			if i != j {
				proxies[i][j] = newProxy(t, addrs[j])
			}
		}
	}
	dir := t.TempDir()
	c := &tcpCluster{t: t, nodes: make([]*Node, 3)}
	t.Cleanup(c.close)
	for i := range 3 {
		cfg := tcpTestConfig(Config{NodeID: ids[i], RaftListen: addrs[i], DataDir: filepath.Join(dir, ids[i])})
		for j := range 3 {
			cfg.InitialCluster = append(cfg.InitialCluster, Peer{ID: ids[j], Addr: addrs[j]})
		}
		i := i
		cfg.PeerAddr = func(id string) (string, bool) {
			for j := range 3 {
				if ids[j] == id && j != i {
					return proxies[i][j].ln.Addr().String(), true
				}
			}
			return "", false
		}
		c.cfgs = append(c.cfgs, cfg)
		c.start(i)
	}
	l := c.leader()
	a := openSession(t, c.nodes[c.other(l)], "a", time.Minute)
	for j := range 3 {
		if j != l {
			proxies[l][j].setCut(true)
			proxies[j][l].setCut(true)
		}
	}
	var nl int
	for nl = c.leader(); nl == l; nl = c.leader() {
	}
	got := mustApply(t, c.nodes[c.other(l, nl)], Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
	if !got.Lock.Granted {
		t.Fatalf("lock in the majority: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	res, err := c.nodes[l].Apply(ctx, Lock(a.id, a.next(), lockd.LockRequest{Name: "y"}))
	cancel()
	if err == nil {
		t.Fatalf("the isolated node applied a lock: %+v", res)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestTCPShutdownLeavesNothing: a cluster that ran, forwarded, lost its
// leader and shut down leaves no goroutine, no open file and no listening
// port behind.
func TestTCPShutdownLeavesNothing(t *testing.T) {
	// No collection: a connection left open must be found, not closed by
	// its finalizer.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	c := newTCPCluster(t, 3, tcpTestConfig(Config{}))
	l := c.leader()
	f := c.other(l)
	a := openSession(t, c.nodes[f], "a", time.Minute)
	mustApply(t, c.nodes[f], Lock(a.id, a.next(), lockd.LockRequest{Name: "x"}))
	owners(t, c.nodes[f], Consistent, "x")
	c.kill(l)
	c.leader()
	mustApply(t, c.nodes[f], Unlock(a.id, a.next(), "x", 0))
	c.close()
	for _, cfg := range c.cfgs {
		if ln, err := net.Listen("tcp", cfg.RaftListen); err != nil {
			t.Errorf("%s's port %s still taken: %v", cfg.NodeID, cfg.RaftListen, err)
		} else {
			ln.Close()
		}
	}
	deadline := time.Now().Add(testTimeout)
	for {
		g, f := runtime.NumGoroutine(), openFDs(t)
		if g <= goroutines && f <= fds {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after shutdown: %d goroutines (%d before), %d fds (%d before)\n%s", g, goroutines, f, fds, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTCPSilentConnectionsDoNotLockPeersOut: a flood of connections that
// never complete their handshake does not keep the cluster from working,
// and each is closed after the handshake timeout at the latest.
func TestTCPSilentConnectionsDoNotLockPeersOut(t *testing.T) {
	c := newTCPCluster(t, 3, tcpTestConfig(Config{}))
	l := c.leader()
	f := c.other(l)
	var silent []net.Conn
	for range 2 * maxHandshakes {
		conn, err := net.Dial("tcp", c.cfgs[l].RaftListen)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, conn)
	}
	defer func() {
		for _, conn := range silent {
			conn.Close()
		}
	}()
	a := openSession(t, c.nodes[f], "a", time.Minute)
	if r := mustApply(t, c.nodes[f], Lock(a.id, a.next(), lockd.LockRequest{Name: "x"})); !r.Lock.Granted {
		t.Fatalf("lock through a follower during the flood: %+v", r)
	}
	silent[0].SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := silent[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent connection was sent data")
	}
}

// TestTCPRefusesNoSecret: a node needs a cluster secret (the proof of
// none is a public constant: anyone could append entries and write for any
// session), and a peer that presents the proof of no secret is refused.
func TestTCPRefusesNoSecret(t *testing.T) {
	if _, err := NewNode(Config{NodeID: "n1", RaftListen: "127.0.0.1:0"}); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("a node without a secret: %v, want ErrNoSecret", err)
	}
	c := newTCPCluster(t, 1, tcpTestConfig(Config{}))
	c.leader()
	for _, secret := range []string{"", "wrong"} {
		stranger := newTCPPeers(secret, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := stranger.call(ctx, "", raft.ServerAddress(c.cfgs[0].RaftListen), &rpcRequest{Kind: rpcStatus})
		cancel()
		stranger.close()
		if err == nil {
			t.Fatalf("a peer with secret %q was answered", secret)
		}
	}
	friend := newTCPPeers(testSecret, nil)
	defer friend.close()
	if _, err := friend.call(testCtx(t), "", raft.ServerAddress(c.cfgs[0].RaftListen), &rpcRequest{Kind: rpcStatus}); err != nil {
		t.Fatalf("a peer with the secret: %v", err)
	}
}
