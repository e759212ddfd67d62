package lockd

import (
	"container/heap"
	"time"
)

// deadline is a lease expiry (a holder's) or a wait timeout (a waiter's).
// Each live holder with a lease and each waiter with a wait= bound owns
// exactly one deadline, which is moved in place when the lease is renewed
// and removed when the lock is released or the wait ends: the heap holds
// live deadlines only, so the table's memory follows its live locks and
// waits, however many come and go.
type deadline struct {
	at      time.Time
	name    string
	session SessionID
	lease   bool // a holder's lease; otherwise a waiter's wait= bound
	index   int  // in the heap; maintained by deadlineHeap
}

// before orders deadlines by time, then by what they belong to. The tie
// break uses nothing but the table's state (not the order of pushes), so
// two tables in the same state apply simultaneous deadlines in the same
// order, however each was built: a replica restored from a snapshot agrees
// with one that applied the whole log. A session holds or waits for a name
// at most once, so (name, session, lease) tells any two live deadlines apart.
func (d *deadline) before(e *deadline) bool {
	if !d.at.Equal(e.at) {
		return d.at.Before(e.at)
	}
	if d.name != e.name {
		return d.name < e.name
	}
	if d.session != e.session {
		return d.session < e.session
	}
	return d.lease && !e.lease
}

// deadlineHeap is a min-heap of deadlines (container/heap), earliest first.
type deadlineHeap []*deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].before(h[j]) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *deadlineHeap) Push(x any) {
	d := x.(*deadline)
	d.index = len(*h)
	*h = append(*h, d)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	n := len(old) - 1
	d := old[n]
	old[n] = nil
	d.index = -1
	*h = old[:n]
	if cap(old) >= 1024 && n <= cap(old)/4 {
		// Give back the array of a heap that was once much larger.
		*h = append(deadlineHeap(nil), old[:n]...)
	}
	return d
}

// add schedules a new deadline and returns it, for its owner to keep.
func (h *deadlineHeap) add(at time.Time, name string, session SessionID, lease bool) *deadline {
	d := &deadline{at: at, name: name, session: session, lease: lease}
	heap.Push(h, d)
	return d
}

// move reschedules d (a renewed lease).
func (h *deadlineHeap) move(d *deadline, at time.Time) {
	d.at = at
	heap.Fix(h, d.index)
}

// remove unschedules d; a nil d (no deadline) is fine.
func (h *deadlineHeap) remove(d *deadline) {
	if d != nil && d.index >= 0 {
		heap.Remove(h, d.index)
	}
}
