package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// retryWait is how long a call waits before it asks again who the leader
// is, when it has no leader or reached a node that no longer leads (it
// wakes earlier when the leader changes).
const retryWait = 20 * time.Millisecond

// Apply puts cmd in the log and returns its result once this node's own
// FSM has applied it: at the leader, the result of its apply; at a
// follower, which forwards cmd to the leader, the result of the follower's
// own apply of that entry (so a client reads its own writes at the node it
// talks to). It retries, within ctx, while there is no leader or the
// leader changes before the command is sent.
//
// Errors: ErrBadCommand or ErrUnknownCommand for a command that fails
// validation (nothing proposed); otherwise exactly one of ErrNotApplied
// (known not applied: safe to retry) and ErrAmbiguous (may be applied:
// retry unchanged, with the same session and request id, and the FSM
// returns the recorded result). A command the FSM applied but refused has
// a nil error and its reason in Result.Err. Do not change the returned
// Result: the FSM shares it with the observer.
//
// OpExpireSession, OpAdvance and OpExtendLeases are the leader's own and
// are refused here. An OpOpenSession without a TTL gets Config.SessionTTL.
func (n *Node) Apply(ctx context.Context, cmd Command) (*Result, error) {
	switch cmd.Op {
	case OpExpireSession, OpAdvance, OpExtendLeases:
		return nil, fmt.Errorf("%w: %s is proposed by the leader's lessor only", ErrBadCommand, cmd.Op)
	case OpOpenSession:
		if cmd.TTL == 0 {
			cmd.TTL = n.cfg.SessionTTL
		}
	}
	if err := cmd.validate(); err != nil {
		return nil, err
	}
	if n.cfg.UnsafeLocalGrants && cmd.Op == OpLock && n.raft.State() != raft.Leader {
		return n.fsm.applyLocal(cmd), nil
	}
	cmd.Stamp = 0
	entry, err := cmd.encode()
	if err != nil {
		return nil, err
	}
	var res *Result
	err = n.toLeader(ctx, func(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) error {
		if id == n.id {
			r, _, err := n.propose(ctx, entry, true, false)
			res = r
			return err
		}
		resp, err := n.call(ctx, id, addr, &rpcRequest{Kind: rpcApply, Entry: entry})
		if err != nil {
			return err
		}
		r, err := n.fsm.waitResult(ctx, resp.Index)
		if err != nil {
			return ambiguous(fmt.Errorf("committed at index %d, not yet applied here: %w", resp.Index, err))
		}
		res = r
		return nil
	})
	return res, err
}

// toLeader runs do against the current leader, again while the outcome is
// known-not-applied for want of a leader (none known, the node reached no
// longer leads, the connection failed before the request left), until ctx
// ends.
func (n *Node) toLeader(ctx context.Context, do func(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) error) error {
	var last error
	for {
		if n.closed() {
			return notApplied(ErrShutdown)
		}
		changed := n.leaderWait()
		addr, id := n.raft.LeaderWithID()
		if id == "" {
			last = notApplied(ErrNoLeader)
		} else {
			err := do(ctx, id, addr)
			if err == nil || !retryable(err) {
				return err
			}
			last = err
		}
		t := time.NewTimer(retryWait)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if errors.Is(last, ErrNoLeader) {
				return notApplied(fmt.Errorf("%w: waited for one until %w", ErrNoLeader, ctx.Err()))
			}
			return last
		}
		t.Stop()
	}
}

// retryable: known not applied, for a reason that a new look at the leader
// may cure.
func retryable(err error) bool {
	return errors.Is(err, ErrNotApplied) && errorsIsAny(err, ErrNotLeader, ErrNoLeader, errNotSent) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// call sends an RPC to a peer and turns every failure into the caller's
// error class.
func (n *Node) call(ctx context.Context, id raft.ServerID, addr raft.ServerAddress, req *rpcRequest) (*rpcResponse, error) {
	resp, err := n.peers.call(ctx, id, addr, req)
	if err != nil {
		if errors.Is(err, errNotSent) {
			return nil, notApplied(err)
		}
		return nil, ambiguous(err)
	}
	if err := resp.err(); err != nil {
		return nil, err
	}
	return resp, nil
}

// proposeCommand stamps and proposes cmd at this node, which must lead
// (the lessor's proposals; gated is false for them).
func (n *Node) proposeCommand(ctx context.Context, cmd Command, gated bool) (*Result, error) {
	entry, err := cmd.encode()
	if err != nil {
		return nil, err
	}
	res, _, err := n.propose(ctx, entry, gated, false)
	return res, err
}

// propose stamps an encoded command with this leader's clock and commits
// it. gated proposals (clients') wait until the lessor is ready: after the
// new leader's Barrier and lease extension, and never while a stall is
// being handled. It returns the leader's own result and the entry's index.
func (n *Node) propose(ctx context.Context, entry []byte, gated, forwarded bool) (*Result, uint64, error) {
	if n.closed() {
		return nil, 0, notApplied(ErrShutdown)
	}
	if n.raft.State() != raft.Leader {
		return nil, 0, notApplied(ErrNotLeader)
	}
	if gated {
		if err := n.lessor.waitReady(ctx); err != nil {
			return nil, 0, err
		}
	}
	e := append([]byte(nil), entry...)
	setStamp(e, time.Now().UnixNano())
	n.nudge.appending()
	var waiting uint64 // the index, once committed, if a follower forwarded it
	defer func() { n.nudge.done(waiting) }()
	timeout := time.Duration(0)
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	f := n.raft.Apply(e, timeout)
	done := make(chan struct{})
	var err error
	go func() {
		err = f.Error()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, 0, ambiguous(fmt.Errorf("waiting for the commit: %w", ctx.Err()))
	}
	if err != nil {
		return nil, 0, classifyRaftError(err)
	}
	if forwarded {
		waiting = f.Index()
	}
	res, _ := f.Response().(*Result)
	if res == nil {
		return nil, f.Index(), ambiguous(fmt.Errorf("entry %d applied without a result", f.Index()))
	}
	return res, f.Index(), nil
}

// classifyRaftError sorts raft's Apply errors into not-applied and
// ambiguous (raft's api.go says which outcome each leaves).
func classifyRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return notApplied(fmt.Errorf("%w: %w", ErrNotLeader, err))
	case errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore):
		return notApplied(err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ambiguous(fmt.Errorf("%w: %w", ErrShutdown, err))
	default: // raft.ErrLeadershipLost and anything unforeseen
		return ambiguous(err)
	}
}

// Keepalive renews the sessions' TTLs at the leader (forwarded there from
// a follower) and returns the ids the leader does not know: closed,
// expired, or being expired. Errors are ErrNotApplied (no leader within
// ctx) or ErrAmbiguous; retrying a keepalive is always safe.
func (n *Node) Keepalive(ctx context.Context, ids []lockd.SessionID) ([]lockd.SessionID, error) {
	var unknown []lockd.SessionID
	err := n.toLeader(ctx, func(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) error {
		if id == n.id {
			if err := n.lessor.waitReady(ctx); err != nil {
				return err
			}
			unknown = n.lessor.keepalive(ids)
			return nil
		}
		resp, err := n.call(ctx, id, addr, &rpcRequest{Kind: rpcKeepalive, Sessions: ids})
		if err != nil {
			return err
		}
		unknown = resp.Unknown
		return nil
	})
	return unknown, err
}

// handleRPC answers a peer's request (over TCP or, in tests, in memory),
// once this node's raft runs: until then (a member starting, whose peers
// already ask it for its status) it waits, within ctx.
func (n *Node) handleRPC(ctx context.Context, req *rpcRequest) *rpcResponse {
	select {
	case <-n.started:
	case <-ctx.Done():
		return responseFor(notApplied(fmt.Errorf("%w: %s is starting", ErrNotLeader, n.cfg.NodeID)))
	}
	if n.closed() {
		return responseFor(notApplied(ErrShutdown))
	}
	switch req.Kind {
	case rpcApply:
		cmd, err := decodeCommand(req.Entry)
		if err == nil {
			err = cmd.validate()
		}
		if err == nil && (cmd.Op == OpExpireSession || cmd.Op == OpAdvance || cmd.Op == OpExtendLeases) {
			err = fmt.Errorf("%w: %s is the leader's own", ErrBadCommand, cmd.Op)
		}
		if err != nil {
			return responseFor(err)
		}
		_, index, err := n.propose(ctx, req.Entry, true, true)
		if err != nil {
			return responseFor(err)
		}
		return &rpcResponse{Index: index}
	case rpcReadIndex:
		index, err := n.leaderReadIndex(ctx, req.Verify)
		if err != nil {
			return responseFor(err)
		}
		return &rpcResponse{Index: index}
	case rpcKeepalive:
		if n.raft.State() != raft.Leader {
			return responseFor(notApplied(ErrNotLeader))
		}
		if err := n.lessor.waitReady(ctx); err != nil {
			return responseFor(err)
		}
		return &rpcResponse{Unknown: n.lessor.keepalive(req.Sessions)}
	case rpcJoin:
		if err := n.Join(ctx, req.ID, req.Addr); err != nil {
			return responseFor(err)
		}
		return &rpcResponse{}
	case rpcRemove:
		if err := n.RemoveMember(ctx, req.ID); err != nil {
			return responseFor(err)
		}
		return &rpcResponse{}
	case rpcStatus:
		st := n.Status()
		return &rpcResponse{Status: &st}
	}
	return responseFor(fmt.Errorf("%w: rpc %q", ErrBadCommand, req.Kind))
}
