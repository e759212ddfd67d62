package replica

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

const (
	// lessorTick is the longest the leader's lessor sleeps between looks at
	// its deadlines; it wakes earlier for a deadline that falls due.
	lessorTick = 100 * time.Millisecond
	// stallAfter: a tick of the leader's clock watcher, or a wake-up of its
	// lessor, that comes this much later than due means the leader itself
	// stood still (SIGSTOP, a VM pause, a starved process). Nobody could
	// renew through it meanwhile, so it extends every session and lock
	// lease instead of expiring them, and accepts no client command until
	// that extension is committed.
	stallAfter = time.Second
	// barrierTimeout bounds the enqueueing of the new leader's Barrier.
	barrierTimeout = 10 * time.Second
)

// lessor is the leader's duties (Consul's leader.go pattern; deadlines as in
// etcd's lessor.go). While this node leads:
//
//   - Session deadlines live in memory, in a heap updated in place on each
//     keepalive; a session whose deadline passes is ended by an
//     OpExpireSession entry.
//   - On gaining leadership, after a Barrier (every entry of earlier terms
//     is applied here), every session gets a full TTL from now and an
//     OpExtendLeases entry gives every lock lease a full TTL, before any
//     client command is accepted ("ready"): a leader change never costs a
//     healthy client its lock.
//   - When the table's next lease expiry or wait timeout falls due, an
//     OpAdvance entry applies it.
//   - When a look comes more than stallAfter after the previous one, the
//     leader stood still: it gives every session a full TTL again and
//     proposes OpExtendLeases before anything else.
//
// All of this stops when leadership is lost; a follower's lessor only
// ignores the FSM's notifications.
type lessor struct {
	n *Node

	mu       sync.Mutex
	active   bool // leading: the heap is live
	ready    bool // established: client commands may be proposed
	rebuild  bool // the FSM was restored while active
	leases   map[lockd.SessionID]*lease
	heap     leaseHeap
	lastTick time.Time     // the clock watcher's last tick
	stalled  time.Duration // the longest gap the watcher saw since the lessor last looked
	changed  chan struct{} // closed and replaced on every change of state
	wake     chan struct{}

	// pause, when set (tests only), is called by the lessor and its clock
	// watcher at each turn: a test makes the leader's duties stand still,
	// as SIGSTOP would.
	pause atomic.Pointer[func()]
}

type lease struct {
	id       lockd.SessionID
	ttl      time.Duration
	deadline time.Time
	index    int // in the heap; -1 when out of it (expiring)
}

func newLessor(n *Node) *lessor {
	return &lessor{n: n, leases: map[lockd.SessionID]*lease{}, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// broadcast wakes waitReady callers; l.mu is held.
func (l *lessor) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lessor) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// lead runs the leader's duties until stop is closed.
func (l *lessor) lead(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(l.n.ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer l.deactivate()
	log := l.n.cfg.Logger

	start := time.Now()
	for {
		err := l.n.raft.Barrier(barrierTimeout).Error()
		if err == nil {
			break
		}
		if ctx.Err() != nil || l.n.raft.State() != raft.Leader {
			return
		}
		log.Warn("replica: leader barrier failed; retrying", "node", l.n.cfg.NodeID, "err", err)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
	l.activate(time.Now())
	extended, ok := l.extend(ctx)
	if !ok {
		return
	}
	l.setReady(true)
	log.Info("replica: leader ready", "node", l.n.cfg.NodeID, "term", l.n.raft.CurrentTerm(),
		"sessions", l.count(), "leases_extended", extended, "took", time.Since(start).Round(time.Millisecond))

	go l.watchClock(ctx)
	timer := time.NewTimer(0)
	defer timer.Stop()
	planned := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-l.wake:
		}
		if p := l.pause.Load(); p != nil {
			(*p)()
		}
		now := time.Now()
		if gap := l.stallGap(now, planned); gap > stallAfter {
			log.Warn("replica: the leader stood still; extending every session and lease instead of expiring them",
				"node", l.n.cfg.NodeID, "stood_still", gap.Round(time.Millisecond))
			l.setReady(false)
			l.activate(now)
			if _, ok := l.extend(ctx); !ok {
				return
			}
			l.setReady(true)
			planned = time.Now()
			timer.Reset(0)
			continue
		}
		if l.needsRebuild() {
			l.activate(now)
		}
		if due := l.popDue(now); len(due) > 0 {
			if !l.expire(ctx, due) {
				return
			}
		}
		if nd, ok := l.n.fsm.nextDeadline(); ok && !now.Before(nd) {
			if _, err := l.n.proposeCommand(ctx, Command{Op: OpAdvance}, false); err != nil {
				if ctx.Err() != nil || l.n.raft.State() != raft.Leader {
					return
				}
				log.Warn("replica: advance failed; retrying", "node", l.n.cfg.NodeID, "err", err)
			}
		}
		sleep := l.sleep(time.Now())
		planned = time.Now().Add(sleep)
		timer.Reset(sleep)
	}
}

// watchClock ticks every lessorTick while this node leads. A tick that
// comes more than stallAfter late means the process stood still: it stops
// client commands at once (ready false) and wakes the lessor, which
// extends every lease before anything else. It is apart from the lessor's
// loop so that a slow commit there is not taken for a stall, and a stall
// during one is still seen.
func (l *lessor) watchClock(ctx context.Context) {
	t := time.NewTicker(lessorTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p := l.pause.Load(); p != nil {
			(*p)()
		}
		now := time.Now()
		l.mu.Lock()
		gap := now.Sub(l.lastTick)
		l.lastTick = now
		if gap > stallAfter {
			l.stalled = max(l.stalled, gap)
			l.ready = false
			l.broadcast()
		}
		l.mu.Unlock()
		if gap > stallAfter {
			l.poke()
		}
	}
}

// stallGap is the longest the leader stood still, as seen by the clock
// watcher (a late tick, or no tick yet since it stopped) or by the lessor
// itself (woken later than planned); it resets the watcher's record.
func (l *lessor) stallGap(now, planned time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	gap := max(l.stalled, now.Sub(planned), now.Sub(l.lastTick))
	l.stalled = 0
	return gap
}

// extend proposes OpExtendLeases until it commits (or leadership ends).
func (l *lessor) extend(ctx context.Context) (int, bool) {
	for {
		res, err := l.n.proposeCommand(ctx, Command{Op: OpExtendLeases}, false)
		if err == nil {
			return res.Extended, true
		}
		if ctx.Err() != nil || l.n.raft.State() != raft.Leader {
			return 0, false
		}
		l.n.cfg.Logger.Warn("replica: extending leases failed; retrying", "node", l.n.cfg.NodeID, "err", err)
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return 0, false
		}
	}
}

// expire proposes the expiry of each due session, all at once (raft batches
// them), and waits for them.
func (l *lessor) expire(ctx context.Context, due []lockd.SessionID) bool {
	futures := make([]raft.ApplyFuture, 0, len(due))
	for _, id := range due {
		c := Command{Op: OpExpireSession, Session: id, Stamp: time.Now().UnixNano()}
		entry, err := c.encode()
		if err != nil {
			continue
		}
		futures = append(futures, l.n.raft.Apply(entry, barrierTimeout))
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			if ctx.Err() != nil || l.n.raft.State() != raft.Leader {
				return false
			}
			l.n.cfg.Logger.Warn("replica: session expiry failed; will retry", "node", l.n.cfg.NodeID, "session", due[i], "err", err)
			l.mu.Lock()
			if le, ok := l.leases[due[i]]; ok && le.index < 0 {
				le.deadline = time.Now()
				heap.Push(&l.heap, le)
			}
			l.mu.Unlock()
			continue
		}
		l.n.cfg.Logger.Info("replica: session expired", "node", l.n.cfg.NodeID, "session", due[i])
	}
	return true
}

// activate (re)builds the heap from the FSM's sessions, each with a full
// TTL from now.
func (l *lessor) activate(now time.Time) {
	f := l.n.fsm
	f.mu.RLock()
	defer f.mu.RUnlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leases = make(map[lockd.SessionID]*lease, len(f.sessions))
	l.heap = l.heap[:0]
	for id, m := range f.sessions {
		le := &lease{id: id, ttl: m.ttl, deadline: now.Add(m.ttl)}
		l.leases[id] = le
		l.heap = append(l.heap, le)
	}
	for i, le := range l.heap {
		le.index = i
	}
	heap.Init(&l.heap)
	l.active, l.rebuild, l.lastTick, l.stalled = true, false, now, 0
	l.broadcast()
}

func (l *lessor) deactivate() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active, l.ready, l.rebuild = false, false, false
	l.leases = map[lockd.SessionID]*lease{}
	l.heap = nil
	l.broadcast()
}

func (l *lessor) setReady(ready bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ready = ready
	l.broadcast()
}

func (l *lessor) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.leases)
}

func (l *lessor) needsRebuild() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rebuild
}

// popDue takes the sessions whose deadline has passed out of the heap; they
// stay known (keepalives for them fail) until their expiry is applied.
func (l *lessor) popDue(now time.Time) []lockd.SessionID {
	l.mu.Lock()
	defer l.mu.Unlock()
	var due []lockd.SessionID
	for len(l.heap) > 0 && !l.heap[0].deadline.After(now) {
		le := heap.Pop(&l.heap).(*lease)
		due = append(due, le.id)
	}
	return due
}

// sleep is how long the loop may sleep: until the next session deadline or
// table deadline, at most lessorTick.
func (l *lessor) sleep(now time.Time) time.Duration {
	d := lessorTick
	l.mu.Lock()
	if len(l.heap) > 0 {
		d = min(d, l.heap[0].deadline.Sub(now))
	}
	l.mu.Unlock()
	if nd, ok := l.n.fsm.nextDeadline(); ok {
		d = min(d, nd.Sub(now))
	}
	return max(d, 0)
}

// waitReady returns nil once this node leads and its lessor is ready (and
// not stalled); ErrNotApplied with ErrNotLeader as soon as it is not the
// leader; ErrNotApplied with the context's error when ctx ends first.
func (l *lessor) waitReady(ctx context.Context) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		l.mu.Lock()
		ok := l.ready && time.Since(l.lastTick) <= stallAfter
		ch := l.changed
		l.mu.Unlock()
		if ok {
			return nil
		}
		if l.n.raft.State() != raft.Leader {
			return notApplied(ErrNotLeader)
		}
		if t == nil {
			t = time.NewTimer(20 * time.Millisecond)
		} else {
			t.Reset(20 * time.Millisecond)
		}
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			return notApplied(ctx.Err())
		}
	}
}

// keepalive gives each known session a full TTL from now and returns the
// ids it does not know (closed, expired or expiring).
func (l *lessor) keepalive(ids []lockd.SessionID) []lockd.SessionID {
	now := time.Now()
	var unknown []lockd.SessionID
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		le, ok := l.leases[id]
		if !ok || le.index < 0 {
			unknown = append(unknown, id)
			continue
		}
		le.deadline = now.Add(le.ttl)
		heap.Fix(&l.heap, le.index)
	}
	return unknown
}

// The FSM's notifications (sessionWatcher), under the FSM's write lock.

func (l *lessor) sessionOpened(id lockd.SessionID, ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.active {
		return
	}
	le := &lease{id: id, ttl: ttl, deadline: time.Now().Add(ttl)}
	l.leases[id] = le
	heap.Push(&l.heap, le)
	l.poke()
}

func (l *lessor) sessionTouched(id lockd.SessionID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if le, ok := l.leases[id]; ok && l.active && le.index >= 0 {
		le.deadline = time.Now().Add(le.ttl)
		heap.Fix(&l.heap, le.index)
	}
}

func (l *lessor) sessionEnded(id lockd.SessionID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.leases[id]
	if !ok {
		return
	}
	delete(l.leases, id)
	if le.index >= 0 {
		heap.Remove(&l.heap, le.index)
	}
}

func (l *lessor) tableChanged() { l.poke() }

func (l *lessor) restored() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active {
		l.rebuild = true
		l.poke()
	}
}

// leaseHeap orders leases by deadline (container/heap), earliest first.
type leaseHeap []*lease

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h leaseHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *leaseHeap) Push(x any) {
	le := x.(*lease)
	le.index = len(*h)
	*h = append(*h, le)
}
func (h *leaseHeap) Pop() any {
	old := *h
	n := len(old) - 1
	le := old[n]
	old[n] = nil
	le.index = -1
	*h = old[:n]
	return le
}
