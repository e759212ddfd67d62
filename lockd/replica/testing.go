package replica

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// Cluster is an in-process cluster of nodes for tests, on raft's
// InmemTransport and in-memory stores (in the spirit of raft's own
// MakeCluster): no sockets and no disk, so leader changes and partitions are
// fast and repeatable. Nodes can be cut off from each other (Partition,
// Heal), killed without a word to their peers and restarted on the stores
// they had (Kill, Restart). Forwarding between nodes goes through the same
// cuts as raft. The real TCP transport and bolt stores are tested apart.
type Cluster struct {
	tb        testing.TB
	cfg       Config
	configure []func(int, *Config)

	mu    sync.Mutex
	nodes []*clusterNode
	cuts  map[[2]raft.ServerAddress]bool // directed links that are cut
}

type clusterNode struct {
	id     string
	addr   raft.ServerAddress
	node   *Node // nil while killed
	stores *stores
	trans  *raft.InmemTransport
}

// TestConfig returns cfg with short raft timeouts for in-process tests
// (raft's own test timeouts: 50 ms heartbeat and election timeouts) where
// cfg leaves them zero.
func TestConfig(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.HeartbeatTimeout, 50*time.Millisecond)
	def(&cfg.ElectionTimeout, 50*time.Millisecond)
	def(&cfg.LeaderLeaseTimeout, 50*time.Millisecond)
	def(&cfg.CommitTimeout, 2*time.Millisecond)
	return cfg
}

// NewCluster starts n nodes, "n1" to "nN", bootstrapped as one cluster,
// with cfg (through TestConfig) as every node's configuration (NodeID and
// the addresses are set here); configure, when given, adjusts node i's
// (for example its Observer) at every start. The cluster is shut down at
// the test's end.
func NewCluster(tb testing.TB, n int, cfg Config, configure ...func(i int, cfg *Config)) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, cfg: TestConfig(cfg), cuts: map[[2]raft.ServerAddress]bool{}, configure: configure}
	var initial []Peer
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, &clusterNode{id: id, addr: raft.ServerAddress(id), stores: memStores()})
		initial = append(initial, Peer{ID: id, Addr: id})
	}
	c.cfg.InitialCluster = initial
	tb.Cleanup(c.Close)
	for i := range c.nodes {
		c.start(i)
	}
	return c
}

// start makes node i's transport, links it with every live node whose link
// is not cut, and starts it on its stores.
func (c *Cluster) start(i int) {
	c.tb.Helper()
	cn := c.nodes[i]
	_, trans := raft.NewInmemTransport(cn.addr)
	cfg := c.cfg
	cfg.NodeID = cn.id
	cfg.ClientAddr = "client-" + cn.id
	for _, f := range c.configure {
		f(i, &cfg)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		c.tb.Fatal(err)
	}
	c.mu.Lock()
	cn.trans = trans
	c.relink()
	c.mu.Unlock()
	n, err := newNode(cfg, deps{trans: trans, peers: &memPeers{c: c, self: cn.addr}, stores: cn.stores, advertise: cn.addr,
		cut: func() { c.isolate(cn) }})
	if err == nil {
		err = n.start()
	}
	if err != nil {
		c.tb.Fatalf("start %s: %v", cn.id, err)
	}
	c.mu.Lock()
	cn.node = n
	c.mu.Unlock()
}

// relink connects every pair of live transports whose link is not cut, and
// disconnects the rest; c.mu is held.
func (c *Cluster) relink() {
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a == b || a.trans == nil {
				continue
			}
			if b.trans == nil || c.cuts[[2]raft.ServerAddress{a.addr, b.addr}] {
				a.trans.Disconnect(b.addr)
			} else {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

// isolate cuts a stopping node off from everyone.
func (c *Cluster) isolate(cn *clusterNode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn.trans == nil {
		return
	}
	cn.trans.DisconnectAll()
	t := cn.trans
	cn.trans = nil
	c.relink()
	t.Close()
}

// Node returns node i (0-based), nil while it is killed.
func (c *Cluster) Node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].node
}

// Len is the number of nodes, live or not.
func (c *Cluster) Len() int { return len(c.nodes) }

// Index returns the index of the node with id.
func (c *Cluster) Index(id string) int {
	for i, cn := range c.nodes {
		if cn.id == id {
			return i
		}
	}
	return -1
}

// WaitLeader waits (up to timeout) until a live node leads with its lessor
// ready, and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for i := range c.nodes {
			n := c.Node(i)
			if n == nil || n.raft.State() != raft.Leader {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := n.lessor.waitReady(ctx)
			cancel()
			if err == nil {
				return i
			}
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("no ready leader within %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Partition cuts every link between the nodes in group and the others,
// both ways, for raft and forwarding alike.
func (c *Cluster) Partition(group ...int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := map[int]bool{}
	for _, i := range group {
		in[i] = true
	}
	for i, a := range c.nodes {
		for j, b := range c.nodes {
			if i != j && in[i] != in[j] {
				c.cuts[[2]raft.ServerAddress{a.addr, b.addr}] = true
			}
		}
	}
	c.relink()
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.cuts)
	c.relink()
}

// Kill stops node i abruptly: its links are cut first, so it says nothing
// more to its peers (no leadership transfer), then raft stops. Its stores
// are kept for Restart.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	n := c.nodes[i].node
	c.nodes[i].node = nil
	c.mu.Unlock()
	if n != nil {
		n.stopOnce.Do(func() { n.stopErr = n.stop(true) })
	}
}

// Restart starts killed node i again on its stores.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	if c.Node(i) != nil {
		c.tb.Fatalf("restart %s: it is running", c.nodes[i].id)
	}
	c.start(i)
}

// Close shuts every node down.
func (c *Cluster) Close() {
	for i := range c.nodes {
		c.Kill(i)
	}
}

// memPeers is the in-memory peerNet: a call goes straight to the target
// node's handler, unless the link is cut either way.
type memPeers struct {
	c    *Cluster
	self raft.ServerAddress
}

func (m *memPeers) target(addr raft.ServerAddress) (*Node, bool) {
	m.c.mu.Lock()
	defer m.c.mu.Unlock()
	for _, cn := range m.c.nodes {
		if cn.addr == addr {
			cut := m.c.cuts[[2]raft.ServerAddress{m.self, addr}] || m.c.cuts[[2]raft.ServerAddress{addr, m.self}]
			return cn.node, cn.node != nil && !cut
		}
	}
	return nil, false
}

func (m *memPeers) call(ctx context.Context, id raft.ServerID, addr raft.ServerAddress, req *rpcRequest) (*rpcResponse, error) {
	n, ok := m.target(addr)
	if !ok {
		return nil, fmt.Errorf("%w: %s unreachable", errNotSent, addr)
	}
	resp := n.handleRPC(ctx, req)
	if _, ok := m.target(addr); !ok {
		return nil, fmt.Errorf("replica: rpc %s to %s: link cut before the reply", req.Kind, addr)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, nil
}

func (m *memPeers) close() {}
