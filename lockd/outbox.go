package lockd

import (
	"sync"
	"time"
)

// Output bounds of a session (docs/protocol.md, "Limits and timeouts").
const (
	// outboxSoft is the pending output past which a session's reader stops
	// reading requests and waits for its own output to be written: a
	// client that sends requests and does not read their replies is held
	// back by its own socket, and parses nothing more ahead of them.
	outboxSoft = 64 << 10
	// DefaultMaxPending is the default Config.MaxPendingOutput: the most a
	// session may have waiting to be written. A session's own replies stop
	// at outboxSoft plus one reply (the largest, a STATUS page, is bounded
	// by its limit and MaxStatusPageBytes); what others cause it to be
	// sent (grants, lost leases) is bounded by the locks it holds and
	// waits for. A session that still reaches it is closed.
	DefaultMaxPending = 8 << 20
)

// outbox is one session's pending output. Whoever produces a line for the
// session appends it here, and never waits: the session's own reader (its
// replies), the backend's apply path (events for other sessions; in the
// replicated backend, replies too), the lease timers. The session's writer
// drains it to the socket, alone, so that a client that does not read
// blocks nothing but its own session.
//
// Lines are appended whole and in the order of the calls; the backend
// appends under its own lock, so a session sees table events in the order
// the table produced them.
type outbox struct {
	mu       sync.Mutex
	buf      []byte
	closed   bool // the session ended or overflowed: output is dropped
	overflow bool // closed because a push went past max
	max      int
	abort    func()      // makes the session's blocked reads and writes fail
	try      func() bool // writes what is pending without blocking; true when all of it went
	kicked   bool        // in the backend's list of outboxes to kick; guarded by the backend's lock

	// wake tells the session's writer goroutine that there is output;
	// one token is enough, since the writer takes all there is.
	wake chan struct{}
}

func newOutbox(max int, abort func()) *outbox {
	return &outbox{max: max, abort: abort, wake: make(chan struct{}, 1)}
}

// push appends b (copied) for the session's own reader to write at the end
// of its batch of requests. It reports false when the session is closed.
func (o *outbox) push(b []byte) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if len(o.buf)+len(b) > o.max {
		// Past the hard bound: give the memory back now, and make the
		// session's goroutines fail at once (they log why and clean up).
		o.closed, o.overflow, o.buf = true, true, nil
		o.mu.Unlock()
		o.abort()
		return false
	}
	o.buf = append(o.buf, b...)
	o.mu.Unlock()
	return true
}

// send appends b and wakes the session's writer: for lines that the
// session's reader is not about to write itself (events caused by other
// sessions, timers). It never blocks.
func (o *outbox) send(b []byte) {
	if o.push(b) {
		o.wakeWriter()
	}
}

// wakeWriter tells the session's writer goroutine that output waits.
func (o *outbox) wakeWriter() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// kick gets what was pushed on its way without waiting: written at once if
// the socket takes it all (try, when set, does a non-blocking write),
// otherwise by the session's writer goroutine. Writing at once saves a
// goroutine hand-off on every grant that a release causes.
func (o *outbox) kick() {
	if o.try == nil || !o.try() {
		o.wakeWriter()
	}
}

// unshift puts back, in front of what is pending, output that a write did
// not take.
func (o *outbox) unshift(b []byte) {
	o.mu.Lock()
	if !o.closed {
		o.buf = append(append(make([]byte, 0, len(b)+len(o.buf)), b...), o.buf...)
	}
	o.mu.Unlock()
}

// take returns the pending output and leaves spare (emptied) in its place.
func (o *outbox) take(spare []byte) []byte {
	o.mu.Lock()
	b := o.buf
	o.buf = spare[:0]
	o.mu.Unlock()
	return b
}

// pending returns how many bytes wait to be written.
func (o *outbox) pending() int {
	o.mu.Lock()
	n := len(o.buf)
	o.mu.Unlock()
	return n
}

// close drops what is pending and refuses further output. It reports
// whether the outbox had overflowed.
func (o *outbox) close() (overflowed bool) {
	o.mu.Lock()
	o.closed, o.buf = true, nil
	overflowed = o.overflow
	o.mu.Unlock()
	return overflowed
}

// aLongTimeAgo is a deadline in the past: setting it makes a connection's
// blocked reads and writes return at once (as net/http aborts them).
var aLongTimeAgo = time.Unix(1, 0)
