package lockd

import "time"

// deadline is a lease expiry (lease) or a wait timeout. Entries are not
// removed when a lock is released or renewed; Advance skips those that no
// longer match.
type deadline struct {
	at      time.Time
	name    string
	session SessionID
	token   Token  // lease
	seq     uint64 // wait
	lease   bool
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
