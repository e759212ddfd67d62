package replica

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestRPCBeforeRaftRuns: a member's port serves peers before its raft has
// started (raft needs the port to start); a peer's request in that moment
// (MEMBERS asks every member for its status) waits for raft, within its
// deadline, instead of reaching a raft that is not there yet.
func TestRPCBeforeRaftRuns(t *testing.T) {
	cfg, err := TestConfig(Config{NodeID: "n1"}).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("n1")
	n, err := newNode(cfg, deps{trans: trans, stores: memStores(), advertise: "n1", cut: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(50 * time.Millisecond)
	defer cancel()
	for _, kind := range []rpcKind{rpcStatus, rpcApply, rpcKeepalive, rpcReadIndex} {
		if resp := n.handleRPC(ctx, &rpcRequest{Kind: kind}); resp.err() == nil {
			t.Errorf("%s before raft runs: %+v, want an error", kind, resp)
		}
	}
	n.cancel()
}
