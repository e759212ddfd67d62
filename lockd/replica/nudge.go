package replica

import (
	"sync"
	"time"
)

// A follower answers a forwarded write once its own FSM has applied the
// entry, so it must learn that the entry committed. hashicorp/raft tells a
// follower the commit index only in AppendEntries, which the leader sends
// when it has new entries, or, when it has none, after CommitTimeout
// (randomised up to twice it). So when the leader's last proposal in
// flight commits and a forwarded write is among those committed since the
// last proposal, the leader appends a barrier (a log entry the FSM never
// sees) whose AppendEntries carries the commit index to every follower.

type nudger struct {
	n        *Node
	mu       sync.Mutex
	inflight int
	covered  uint64 // commit index when the last entry was appended
	waiting  uint64 // highest forwarded index committed
}

func (g *nudger) appending() {
	c := g.n.raft.CommitIndex()
	g.mu.Lock()
	g.inflight++
	g.covered = max(g.covered, c)
	g.mu.Unlock()
}

// done is called when a proposal ends; forwarded is its index if a
// follower forwarded it and it committed (0 otherwise).
func (g *nudger) done(forwarded uint64) {
	g.mu.Lock()
	g.inflight--
	g.waiting = max(g.waiting, forwarded)
	need := g.inflight == 0 && g.waiting > g.covered
	if need {
		g.inflight++
		g.covered = max(g.covered, g.n.raft.CommitIndex())
	}
	g.mu.Unlock()
	if need {
		go func() {
			g.n.raft.Barrier(time.Second).Error()
			g.done(0)
		}()
	}
}
