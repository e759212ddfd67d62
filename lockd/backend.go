package lockd

// backend is the seam between the server (connections, sessions, the
// protocol) and the lock table that they change. The server has one
// implementation, local: the Table in this process's memory, one mutex
// around it, and the timers of its leases and waits. A replicated
// implementation (issue 11: the same Table in a raft FSM on every node)
// replaces it behind the same calls.
//
// The contract that makes the two interchangeable:
//
//   - Every change to the table (open, hello, apply, close, and the
//     expiries and timeouts the backend applies by itself) is applied in
//     one order, by one goroutine at a time; the replicated backend applies
//     them from its log, in log order.
//   - The code that applies a change formats its reply and the events it
//     causes, and pushes them to the outboxes of the sessions concerned,
//     in apply order, so that a "* GRANTED" always follows the "OK QUEUED"
//     it resolves. Pushes never block: a session that does not read delays
//     no one (the outbox is bounded; past its bound the session is closed).
//   - apply returns once the reply is in the requester's outbox, so the
//     session's reader answers pipelined requests in order by doing them
//     one after the other.
//   - Sessions are named by SessionID, not by connection: the backend
//     delivers to whichever outbox is attached to the id, and drops what is
//     meant for a session with none.
//
// Every method is safe for concurrent use.
type backend interface {
	// open registers session id, whose output goes to out. It fails with
	// ErrShutdown once the backend is draining.
	open(id SessionID, info SessionInfo, out *outbox) error
	// hello records the name and pid a session gave in HELLO.
	hello(id SessionID, client string, pid int)
	// apply runs a request that changes the table (LOCK, UNLOCK, RENEW,
	// CANCEL) for session id; see the contract above.
	apply(id SessionID, req Request)
	// close ends session id: its waits are withdrawn, its locks released,
	// and what that lets through is granted. Its outbox is detached.
	close(id SessionID)
	// status returns a page of the table, as STATUS lists it.
	status(q StatusQuery) Status
	// check returns the holders of name (CHECK).
	check(name string) []HolderStatus
	// drain tells every holder that its lock is lost and every waiter that
	// its wait is cancelled (reason shutdown); from then on the table
	// grants nothing and apply answers ERR shutdown.
	drain()
	// stats returns the table's running totals.
	stats() TableStats
	// tokens says how fencing tokens are numbered: the store's kind
	// ("epoch", or a store's own) and the value every token of this run is above.
	tokens() (kind string, above Token)
	// failed is closed when the backend can no longer apply changes
	// safely (its token store failed); err then says why.
	failed() <-chan struct{}
	err() error
	// stop ends the backend's goroutines.
	stop()
}

var _ backend = (*local)(nil)
