package replica

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Node is one member of a replicated lock table: a raft node whose FSM is
// the table, the leader's lessor, and the RPC that followers forward
// through. Its methods are safe for concurrent use.
type Node struct {
	cfg       Config
	id        raft.ServerID
	advertise raft.ServerAddress
	raft      *raft.Raft
	fsm       *FSM
	lessor    *lessor
	nudge     *nudger
	trans     raft.Transport
	peers     peerNet
	stores    *stores
	// cut closes the node's links (transport, mux, RPC connections): the
	// first step of both Shutdown and a test's kill.
	cut func()

	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc
	notify chan bool // raft's leadership notifications (Config.NotifyCh)
	obs    *raft.Observer
	obsCh  chan raft.Observation

	// started is closed once raft runs (n.raft is set): a peer's RPC can
	// arrive while the node is still starting.
	started chan struct{}

	mu            sync.Mutex
	leaderChanged chan struct{} // closed and replaced when the leader changes

	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// deps are what differ between a real node and an in-memory test node.
type deps struct {
	trans     raft.Transport
	peers     peerNet
	stores    *stores
	advertise raft.ServerAddress
	cut       func()
}

// NewNode starts a node: it opens the stores in cfg.DataDir, listens on
// cfg.RaftListen, bootstraps a new cluster (cfg.InitialCluster, or a
// one-node cluster of itself) when its stores are empty, or asks the
// members in cfg.Join to admit it, or (cfg.AwaitAdmission) waits to be
// added, and starts raft. It returns at once;
// Status says when there is a leader. Shutdown stops it.
func NewNode(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		return nil, ErrNoSecret
	}
	var st *stores
	if cfg.DataDir != "" {
		if st, err = openDiskStores(cfg.DataDir, newHCLog(cfg.Logger, "raft-snapshots")); err != nil {
			return nil, err
		}
	} else {
		st = memStores()
	}
	ln, err := listenRaft(cfg.RaftListen)
	if err != nil {
		st.close()
		return nil, err
	}
	advertise := cfg.RaftAdvertise
	if advertise == "" {
		advertise = ln.Addr().String()
	}
	m := newMux(ln, cfg.Secret, cfg.Logger)
	stream := &streamLayer{m: m, secret: cfg.Secret, addr: advertisedAddr(advertise), closed: make(chan struct{})}
	// Without overrides, no provider: raft would log a warning at every
	// dial for each peer the provider has no address of.
	var provider raft.ServerAddressProvider
	if cfg.PeerAddr != nil {
		provider = addrProvider{cfg.PeerAddr}
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		ServerAddressProvider: provider,
		Logger:                newHCLog(cfg.Logger, "raft-net"),
		Stream:                stream,
		MaxPool:               8,
		Timeout:               10 * time.Second,
		// No pipelining: every AppendEntries is synchronous under the
		// transport's deadlines. With raft's default (2 in flight) the
		// pipeline's decoder and the replication goroutine can each wait
		// for the other when a follower goes silent, and Raft.Shutdown
		// then never returns (a member hung 9 minutes in a test; the same
		// deadlock as grafana/pyroscope#5518). hashicorp/raft#541 measured
		// pipelining as of little benefit to latency or throughput.
		MaxRPCsInFlight: 1,
	})
	peers := newTCPPeers(cfg.Secret, cfg.PeerAddr)
	n, err := newNode(cfg, deps{trans: trans, peers: peers, stores: st, advertise: raft.ServerAddress(advertise),
		cut: func() {
			trans.CloseStreams()
			trans.Close()
			m.close()
			peers.close()
		}})
	if err != nil {
		trans.Close()
		m.close()
		peers.close()
		st.close()
		return nil, err
	}
	// The port serves raft and the RPC from here on (raft's own start
	// needs its connections); an RPC that comes before raft runs waits
	// for it (handleRPC).
	m.serve(func(c net.Conn) { serveRPC(n.ctx, c, n.handleRPC) })
	if err := n.start(); err != nil {
		n.cancel()
		n.cut()
		st.close()
		return nil, err
	}
	return n, nil
}

// newNode builds a node on its dependencies; start starts it.
func newNode(cfg Config, d deps) (*Node, error) {
	n := &Node{cfg: cfg, id: raft.ServerID(cfg.NodeID), advertise: d.advertise, trans: d.trans, peers: d.peers,
		stores: d.stores, cut: d.cut, notify: make(chan bool, 16), obsCh: make(chan raft.Observation, 64),
		leaderChanged: make(chan struct{}), started: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.fsm = NewFSM(cfg.Limits, cfg.Observer)
	n.lessor = newLessor(n)
	n.nudge = &nudger{n: n}
	n.fsm.watcher = n.lessor
	return n, nil
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = n.id
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.NotifyCh = n.notify
	rc.Logger = newHCLog(n.cfg.Logger, "raft")
	rc.NoLegacyTelemetry = true
	return rc
}

// start bootstraps if the stores are empty, then starts raft and the
// node's goroutines.
func (n *Node) start() error {
	rc := n.raftConfig()
	has, err := raft.HasExistingState(n.stores.logs, n.stores.stable, n.stores.snaps)
	if err != nil {
		return fmt.Errorf("replica: read stores: %w", err)
	}
	if !has {
		var servers []raft.Server
		switch {
		case len(n.cfg.InitialCluster) > 0:
			for _, p := range n.cfg.InitialCluster {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
			}
		case len(n.cfg.Join) == 0 && !n.cfg.AwaitAdmission:
			servers = []raft.Server{{Suffrage: raft.Voter, ID: n.id, Address: n.advertise}}
		}
		if servers != nil {
			if err := raft.BootstrapCluster(rc, n.stores.logs, n.stores.stable, n.stores.snaps, n.trans,
				raft.Configuration{Servers: servers}); err != nil {
				return fmt.Errorf("replica: bootstrap: %w", err)
			}
			n.cfg.Logger.Info("replica: bootstrapped a new cluster", "node", n.cfg.NodeID, "members", len(servers))
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, n.stores.logs, n.stores.stable, n.stores.snaps, n.trans)
	if err != nil {
		return fmt.Errorf("replica: start raft: %w", err)
	}
	n.raft = r
	close(n.started)
	n.obs = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.PeerObservation, raft.RaftState:
			return true
		}
		return false
	})
	r.RegisterObserver(n.obs)
	n.wg.Add(2)
	go n.monitorLeadership()
	go n.watchState()
	if !has && len(n.cfg.InitialCluster) == 0 && len(n.cfg.Join) > 0 {
		n.wg.Add(1)
		go n.joinLoop()
	}
	return nil
}

// monitorLeadership starts the lessor's leader duties when raft makes this
// node leader and stops them when it loses leadership (Consul's
// monitorLeadership).
func (n *Node) monitorLeadership() {
	defer n.wg.Done()
	var stop chan struct{}
	var done chan struct{}
	end := func() {
		if stop != nil {
			close(stop)
			<-done
			stop, done = nil, nil
		}
	}
	defer end()
	for {
		select {
		case isLeader := <-n.notify:
			if isLeader && stop == nil {
				stop, done = make(chan struct{}), make(chan struct{})
				go func(stop, done chan struct{}) {
					defer close(done)
					n.lessor.lead(stop)
				}(stop, done)
				n.cfg.Logger.Info("replica: this node is the leader", "node", n.cfg.NodeID, "term", n.raft.CurrentTerm())
			} else if !isLeader && stop != nil {
				end()
				n.cfg.Logger.Info("replica: this node lost leadership", "node", n.cfg.NodeID)
			}
		case <-n.ctx.Done():
			return
		}
	}
}

// watchState logs leader and membership changes, wakes the callers that
// wait for a leader, publishes this node's addresses once a leader is
// known, and calls Config.OnState.
func (n *Node) watchState() {
	defer n.wg.Done()
	defer n.raft.DeregisterObserver(n.obs)
	var lastLeader raft.ServerID
	published := false
	var publishing chan struct{}
	for {
		select {
		case o := <-n.obsCh:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				if d.LeaderID != lastLeader {
					lastLeader = d.LeaderID
					n.mu.Lock()
					close(n.leaderChanged)
					n.leaderChanged = make(chan struct{})
					n.mu.Unlock()
					if d.LeaderID == "" {
						n.cfg.Logger.Info("replica: no leader", "node", n.cfg.NodeID, "term", n.raft.CurrentTerm())
					} else {
						n.cfg.Logger.Info("replica: leader elected", "node", n.cfg.NodeID, "leader", string(d.LeaderID),
							"leader_addr", string(d.LeaderAddr), "term", n.raft.CurrentTerm())
					}
				}
			case raft.PeerObservation:
				if d.Removed {
					n.cfg.Logger.Info("replica: member removed", "node", n.cfg.NodeID, "member", string(d.Peer.ID))
				} else {
					n.cfg.Logger.Info("replica: member added", "node", n.cfg.NodeID, "member", string(d.Peer.ID), "addr", string(d.Peer.Address))
				}
			}
			if lastLeader != "" && !published && publishing == nil {
				publishing = make(chan struct{})
				go func(done chan struct{}) {
					defer close(done)
					n.publishNodeInfo()
				}(publishing)
			}
			if n.cfg.OnState != nil {
				n.cfg.OnState(n.Status())
			}
		case <-publishing:
			publishing = nil
			published = n.nodeInfoCurrent()
		case <-n.ctx.Done():
			if publishing != nil {
				<-publishing
			}
			return
		}
	}
}

// nodeInfoCurrent reports whether the replicated state holds this node's
// current addresses.
func (n *Node) nodeInfoCurrent() bool {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	ni, ok := n.fsm.nodes[n.cfg.NodeID]
	return ok && ni.ClientAddr == n.cfg.ClientAddr && ni.RaftAddr == string(n.advertise)
}

// publishNodeInfo records this node's addresses in the replicated state if
// they are not there yet.
func (n *Node) publishNodeInfo() {
	if n.nodeInfoCurrent() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	if _, err := n.Apply(ctx, NodeInfoCommand(n.cfg.NodeID, n.cfg.ClientAddr, string(n.advertise))); err != nil && n.ctx.Err() == nil {
		n.cfg.Logger.Warn("replica: could not record this node's addresses; will retry at the next leader change", "node", n.cfg.NodeID, "err", err)
	}
}

// leaderWait returns a channel closed at the next leader change.
func (n *Node) leaderWait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leaderChanged
}

// Shutdown stops the node: if it leads a cluster of more than one voter it
// first hands leadership to another (raft's LeadershipTransfer, bounded by
// ctx), so that the cluster does not wait an election timeout; then it
// stops raft, closes its port and connections, and closes the stores. Calls
// after the first return the first's result.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		if n.raft.State() == raft.Leader && n.voters() > 1 {
			f := n.raft.LeadershipTransfer()
			done := make(chan error, 1)
			go func() { done <- f.Error() }()
			select {
			case err := <-done:
				if err != nil {
					n.cfg.Logger.Warn("replica: leadership transfer before shutdown failed", "node", n.cfg.NodeID, "err", err)
				}
			case <-ctx.Done():
			}
		}
		n.stopErr = n.stop(false)
	})
	return n.stopErr
}

// stop ends everything. With cutFirst (a test's kill), the links are cut
// before raft stops, so that the node says nothing more to its peers.
func (n *Node) stop(cutFirst bool) error {
	// Cancel first: RPC handlers and the lessor work under n.ctx, and
	// closing the port waits for the handlers.
	n.cancel()
	if cutFirst {
		n.cut()
	}
	err := n.raft.Shutdown().Error()
	if !cutFirst {
		n.cut()
	}
	n.wg.Wait()
	if cerr := n.stores.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("replica: shutdown %s: %w", n.cfg.NodeID, err)
	}
	n.cfg.Logger.Info("replica: node stopped", "node", n.cfg.NodeID)
	return nil
}

// closed reports whether Shutdown has begun.
func (n *Node) closed() bool { return n.ctx.Err() != nil }

// voters counts the voters in the latest configuration.
func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// joinLoop asks the members in Config.Join, in turn, to admit this node,
// until one does or the node stops.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		for _, addr := range n.cfg.Join {
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			resp, err := n.peers.call(ctx, "", raft.ServerAddress(addr), &rpcRequest{Kind: rpcJoin, ID: n.cfg.NodeID, Addr: string(n.advertise)})
			cancel()
			if err == nil {
				err = resp.err()
			}
			if err == nil {
				n.cfg.Logger.Info("replica: joined the cluster", "node", n.cfg.NodeID, "via", addr)
				return
			}
			if n.closed() {
				return
			}
			n.cfg.Logger.Warn("replica: join failed; will retry", "node", n.cfg.NodeID, "via", addr, "err", err)
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, 2*time.Second)
		case <-n.ctx.Done():
			return
		}
	}
}

// errorsIsAny reports whether err matches any of targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
