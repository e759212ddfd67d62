package replica

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// Member is one server of the cluster's configuration.
type Member struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	ClientAddr string `json:"client_addr,omitempty"` // as recorded by the node (OpNodeInfo); "" until then
	Voter      bool   `json:"voter"`
	Leader     bool   `json:"leader"`
}

// Status is a node's view of itself and the cluster: what `mplock status`
// shows per member, and what /readyz decides on.
type Status struct {
	Node  string `json:"node"`
	State string `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term  uint64 `json:"term"`
	// Leader is the leader's id, "" when none is known.
	Leader           string `json:"leader"`
	LeaderRaftAddr   string `json:"leader_raft_addr,omitempty"`
	LeaderClientAddr string `json:"leader_client_addr,omitempty"`
	LastLogIndex     uint64 `json:"last_log_index"`
	CommitIndex      uint64 `json:"commit_index"`
	// AppliedIndex is the last entry this node's table reflects: the last
	// command it applied, or the commit index when only entries the table
	// never sees (barriers, no-ops, configuration changes) follow that.
	AppliedIndex uint64 `json:"applied_index"`
	// LastContact: how long since this node heard from the leader (0 as
	// leader, -1 never), in ns.
	LastContact time.Duration `json:"last_contact_ns"`
	// Ready: this node leads, or follows a leader it heard from within two
	// heartbeat timeouts, and has applied every entry it knows to be
	// committed (/readyz).
	Ready   bool     `json:"ready"`
	Members []Member `json:"members"`
}

// RaftAddr is the address the other members dial to reach this node (its
// advertised raft address).
func (n *Node) RaftAddr() string { return string(n.advertise) }

// Status returns this node's status.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	st := Status{Node: n.cfg.NodeID, State: n.raft.State().String(), Term: n.raft.CurrentTerm(),
		Leader: string(id), LeaderRaftAddr: string(addr), LastLogIndex: n.raft.LastIndex(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.Applied(), LastContact: n.lastContact()}
	st.Members, _ = n.Members()
	for _, m := range st.Members {
		if m.ID == st.Leader {
			st.LeaderClientAddr = m.ClientAddr
		}
	}
	if st.AppliedIndex < st.CommitIndex && !n.commandsBetween(st.AppliedIndex+1, st.CommitIndex) {
		// Only entries the table never sees (barriers, no-ops,
		// configuration changes) are left: it reflects every entry up to
		// the commit index.
		st.AppliedIndex = st.CommitIndex
	}
	// raft can go on naming the last leader for a while after this node
	// stopped hearing from it (a candidate that has not yet cleared it):
	// only a leader, or a follower that heard from its leader within two
	// heartbeat timeouts, is ready.
	heard := st.State == raft.Leader.String() ||
		st.State == raft.Follower.String() && st.LastContact >= 0 && st.LastContact <= 2*n.cfg.HeartbeatTimeout
	st.Ready = heard && st.Leader != "" && st.AppliedIndex >= st.CommitIndex
	return st
}

// PeerStatus asks node id (a member) for its status over the cluster RPC.
func (n *Node) PeerStatus(ctx context.Context, id string) (Status, error) {
	if id == n.cfg.NodeID {
		return n.Status(), nil
	}
	members, err := n.Members()
	if err != nil {
		return Status{}, err
	}
	for _, m := range members {
		if m.ID == id {
			resp, err := n.call(ctx, raft.ServerID(id), raft.ServerAddress(m.RaftAddr), &rpcRequest{Kind: rpcStatus})
			if err != nil {
				return Status{}, err
			}
			return *resp.Status, nil
		}
	}
	return Status{}, fmt.Errorf("replica: no member %q", id)
}

// Members lists the servers of the latest configuration (which may not be
// committed yet), by id, with the addresses the nodes recorded.
func (n *Node) Members() ([]Member, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("replica: configuration: %w", err)
	}
	_, leader := n.raft.LeaderWithID()
	n.fsm.mu.RLock()
	var out []Member
	for _, s := range f.Configuration().Servers {
		out = append(out, Member{ID: string(s.ID), RaftAddr: string(s.Address), ClientAddr: n.fsm.nodes[string(s.ID)].ClientAddr,
			Voter: s.Suffrage == raft.Voter, Leader: s.ID == leader})
	}
	n.fsm.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Join adds node id, reachable at raftAddr, as a voter: at the leader
// (raft's AddVoter), or forwarded to it. Adding a member that is already
// there with the same address does nothing. Errors as for Apply.
func (n *Node) Join(ctx context.Context, id, raftAddr string) error {
	if err := lockd.ValidName(id); err != nil {
		return fmt.Errorf("%w: join: node id: %w", ErrBadCommand, err)
	}
	if raftAddr == "" {
		return fmt.Errorf("%w: join %s: no address", ErrBadCommand, id)
	}
	return n.toLeader(ctx, func(ctx context.Context, lid raft.ServerID, addr raft.ServerAddress) error {
		if lid != n.id {
			_, err := n.call(ctx, lid, addr, &rpcRequest{Kind: rpcJoin, ID: id, Addr: raftAddr})
			return err
		}
		err := n.waitFuture(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx)))
		if err == nil {
			n.cfg.Logger.Info("replica: admitted a member", "node", n.cfg.NodeID, "member", id, "addr", raftAddr)
		}
		return err
	})
}

// RemoveMember removes node id from the cluster (at the leader, or
// forwarded to it). A leader may remove itself: it steps down once the
// change commits. Errors as for Apply.
func (n *Node) RemoveMember(ctx context.Context, id string) error {
	return n.toLeader(ctx, func(ctx context.Context, lid raft.ServerID, addr raft.ServerAddress) error {
		if lid != n.id {
			_, err := n.call(ctx, lid, addr, &rpcRequest{Kind: rpcRemove, ID: id})
			return err
		}
		err := n.waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)))
		if err == nil {
			n.cfg.Logger.Info("replica: removed a member", "node", n.cfg.NodeID, "member", id)
		}
		return err
	})
}

// waitFuture waits for a raft future within ctx.
func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return classifyRaftError(err)
		}
		return nil
	case <-ctx.Done():
		return ambiguous(ctx.Err())
	}
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}
