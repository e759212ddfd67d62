package replica

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// Consistency is what a read promises about how current its answer is.
type Consistency uint8

const (
	// Default reads at the leader's commit index without confirming that
	// the leader still leads (Consul's default mode): the node learns the
	// index from the node it believes leads (itself, or over the RPC) and
	// answers once it has applied up to it. Linearizable except in the
	// short window in which a leader cut off from the majority has not yet
	// stepped down (at most Config.LeaderLeaseTimeout after its last
	// contact with a quorum): then it may miss the newest writes.
	Default Consistency = iota
	// Stale answers from this node's table as it is, without asking
	// anyone (the seed's CHECK at a follower). It is refused with ErrStale
	// when the node has not heard from a leader for longer than
	// Config.MaxStale; ReadInfo says how far behind it may be.
	Stale
	// Consistent is linearizable (raft's ReadIndex, section 6.4 of Ongaro's
	// thesis): the leader takes its commit index, confirms with a quorum
	// that it still leads (VerifyLeader), and the reading node answers
	// once it has applied up to that index.
	Consistent
)

func (c Consistency) String() string {
	switch c {
	case Default:
		return "default"
	case Stale:
		return "stale"
	case Consistent:
		return "consistent"
	}
	return fmt.Sprintf("Consistency(%d)", uint8(c))
}

// ParseConsistency reads "stale", "default" or "consistent" (any case).
func ParseConsistency(s string) (Consistency, error) {
	switch strings.ToLower(s) {
	case "default", "":
		return Default, nil
	case "stale":
		return Stale, nil
	case "consistent":
		return Consistent, nil
	}
	return 0, fmt.Errorf("replica: consistency %q: want stale, default or consistent", s)
}

// ReadInfo says what a read saw.
type ReadInfo struct {
	Consistency Consistency
	Node        string // the node that answered
	Index       uint64 // the FSM's applied index the view showed
	Leader      string // the leader as this node knew it ("" for none)
	// LastContact is how long ago this node last heard from the leader
	// (0 when it is the leader; -1 when it never has).
	LastContact time.Duration
}

// Read runs fn with a view of the table at the stated consistency, under
// the FSM's read lock (applies wait while fn runs, so fn must be quick and
// must not call the node). Errors: ErrStale (stale read refused), or the
// errors of reaching the leader for a read index (ErrNotApplied with
// ErrNoLeader, ErrAmbiguous); fn's own error is returned as is.
func (n *Node) Read(ctx context.Context, c Consistency, fn func(View) error) (ReadInfo, error) {
	info := ReadInfo{Consistency: c, Node: n.cfg.NodeID}
	_, leader := n.raft.LeaderWithID()
	info.Leader = string(leader)
	info.LastContact = n.lastContact()
	switch c {
	case Stale:
		if info.LastContact < 0 {
			return info, fmt.Errorf("%w: %s has not heard from a leader yet", ErrStale, n.cfg.NodeID)
		}
		if info.LastContact > n.cfg.MaxStale {
			return info, fmt.Errorf("%w: %s last heard from a leader %v ago, more than the %v allowed", ErrStale,
				n.cfg.NodeID, info.LastContact.Round(time.Millisecond), n.cfg.MaxStale)
		}
	case Default, Consistent:
		index, err := n.readIndex(ctx, c == Consistent)
		if err != nil {
			return info, err
		}
		if err := n.waitApplied(ctx, index); err != nil {
			return info, err
		}
	default:
		return info, fmt.Errorf("replica: read: %v", c)
	}
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	info.Index = n.fsm.applied
	return info, fn(View{f: n.fsm})
}

// ReadLocal runs fn with a view of this node's replica as it is, with no
// promise of how current it is and no refusal (for metrics and a
// server's own bookkeeping; clients' reads go through Read).
func (n *Node) ReadLocal(fn func(View) error) error {
	n.fsm.mu.RLock()
	defer n.fsm.mu.RUnlock()
	return fn(View{f: n.fsm})
}

// lastContact is how long ago this node heard from its leader: 0 as the
// leader, -1 if never.
func (n *Node) lastContact() time.Duration {
	if n.raft.State() == raft.Leader {
		return 0
	}
	last := n.raft.LastContact()
	if last.IsZero() {
		return -1
	}
	return time.Since(last)
}

// readIndex gets the index a read must wait for: from itself if it leads,
// else from the leader over the RPC.
func (n *Node) readIndex(ctx context.Context, verify bool) (uint64, error) {
	var index uint64
	err := n.toLeader(ctx, func(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) error {
		if id == n.id {
			i, err := n.leaderReadIndex(ctx, verify)
			index = i
			return err
		}
		resp, err := n.call(ctx, id, addr, &rpcRequest{Kind: rpcReadIndex, Verify: verify})
		if err != nil {
			return err
		}
		index = resp.Index
		return nil
	})
	return index, err
}

// leaderReadIndex is the leader's half of a read: once the lessor is ready
// (an entry of this term is committed, so the commit index covers every
// earlier term), take the commit index and, when verify is set, confirm
// leadership with a quorum.
func (n *Node) leaderReadIndex(ctx context.Context, verify bool) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, notApplied(ErrNotLeader)
	}
	if err := n.lessor.waitReady(ctx); err != nil {
		return 0, err
	}
	index := n.raft.CommitIndex()
	if verify {
		f := n.raft.VerifyLeader()
		done := make(chan error, 1)
		go func() { done <- f.Error() }()
		select {
		case err := <-done:
			if err != nil {
				return 0, notApplied(fmt.Errorf("%w: %w", ErrNotLeader, err))
			}
		case <-ctx.Done():
			return 0, notApplied(ctx.Err())
		}
	}
	return index, nil
}

// waitApplied waits until this node's FSM reflects every entry up to
// index. The FSM sees only commands (raft keeps no-ops, barriers and
// configuration changes from it), so once this node knows index is
// committed, entries between its last applied command and index that are
// not commands are skipped by reading their types from the log store.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		applied, changed := n.fsm.appliedState()
		if applied >= index || n.raft.CommitIndex() >= index && !n.commandsBetween(applied+1, index) {
			return nil
		}
		if t == nil {
			t = time.NewTimer(2 * time.Millisecond)
		} else {
			t.Reset(2 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			return ambiguous(fmt.Errorf("waiting to apply up to index %d (applied %d): %w", index, applied, ctx.Err()))
		}
	}
}

// commandsBetween reports whether the log holds a command in [from, to]
// (or cannot tell: then it says yes, and the caller waits for the FSM).
func (n *Node) commandsBetween(from, to uint64) bool {
	if to-from > 1024 {
		return true
	}
	var l raft.Log
	for i := to; i >= from && i > 0; i-- {
		if err := n.stores.logs.GetLog(i, &l); err != nil || l.Type == raft.LogCommand {
			return true
		}
	}
	return false
}

// View is a read-only view of the replicated table, valid only inside the
// function given to Node.Read.
type View struct{ f *FSM }

// Index is the index of the last entry applied to the view.
func (v View) Index() uint64 { return v.f.applied }

// Now is the table's time: the stamp of the last entry applied.
func (v View) Now() time.Time { return fromUnixNano(v.f.lastStamp) }

// Owners returns the holders of name (nil when it is free): the seed's
// CHECK. A check is information, never proof of ownership: only the
// fencing token is.
func (v View) Owners(name string) []lockd.HolderStatus { return v.f.table.Owners(name) }

// Status is the table's STATUS (see lockd.Table.Status), at the table's time.
func (v View) Status(name string) lockd.Status { return v.f.table.Status(v.Now(), name) }

// StatusPage is one page of the table's STATUS (see
// lockd.Table.StatusPage), at the table's time.
func (v View) StatusPage(q lockd.StatusQuery) lockd.Status { return v.f.table.StatusPage(v.Now(), q) }

// LastToken is the last fencing token the table handed out: every later
// grant's token is above it.
func (v View) LastToken() lockd.Token { return v.f.table.LastToken() }

// Stats are the table's running totals.
func (v View) Stats() lockd.TableStats { return v.f.table.Stats() }

// SessionInfo is what the replicated state knows of a session.
type SessionInfo struct {
	ID          lockd.SessionID
	TTL         time.Duration
	Node        string // attached at
	Opened      time.Time
	LastRequest uint64
}

// Session returns a session's metadata, if it exists.
func (v View) Session(id lockd.SessionID) (SessionInfo, bool) {
	m, ok := v.f.sessions[id]
	if !ok {
		return SessionInfo{}, false
	}
	return SessionInfo{ID: id, TTL: m.ttl, Node: m.node, Opened: fromUnixNano(m.opened), LastRequest: m.lastRequest}, true
}

// SessionState returns a session's held locks and waits, if it exists.
func (v View) SessionState(id lockd.SessionID) (*SessionState, bool) {
	if _, ok := v.f.sessions[id]; !ok {
		return nil, false
	}
	return v.f.sessionState(id), true
}

// CheckSecret reports whether secret is session id's secret, so that a
// server can refuse a wrong RESUME without writing to the log.
func (v View) CheckSecret(id lockd.SessionID, secret string) bool {
	m, ok := v.f.sessions[id]
	return ok && m.secretHash == HashSecret(secret)
}

// Nodes lists the nodes' recorded addresses, by id.
func (v View) Nodes() []NodeInfo {
	out := make([]NodeInfo, 0, len(v.f.nodes))
	for _, ni := range v.f.nodes {
		out = append(out, ni)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
