// Package cluster is `mplock serve`'s cluster mode: the replicated backend
// of lockd.Server (lockd.Replicated) over a lockd/replica Node. The server
// keeps the connections; this package keeps the sessions, which live in
// the replicated table and outlive their connections.
//
//   - backend.go: the Backend, its connections and the requests that
//     change the table (each a log command with the session's request id,
//     retried unchanged after an ambiguous failure).
//   - deliver.go: the Node's Observer. Every reply to a change, and every
//     event, is pushed from the apply of its log entry, in log order, to
//     the connection attached to its session at this node: so a
//     "* GRANTED" never overtakes the "OK QUEUED" it resolves, and the
//     replay of the log after a restart (before any connection attaches)
//     delivers nothing again. A connection attaches to its session at the
//     apply of its OpenSession or ResumeSession entry; a resume at another
//     node drops it.
//   - session.go: HELLO, RESUME, PING (a keepalive confirmed by the
//     leader), QUIT, and the keepalives the server sends every TTL/3 for
//     the sessions of its live connections.
//   - read.go: CHECK, STATUS and MEMBERS at a stated consistency; MEMBER
//     ADD and REMOVE.
//   - metrics.go: raft's metrics beside lockd's, and /healthz, /readyz.
//
// The guarantees are replica's (its package doc): no lock granted twice,
// no token repeated, a leader change costs no healthy client its lock.
// What a client must still do: bound its belief that it holds a lock by
// its own clock (lockd.Lease.Deadline), and let the resource check the
// fencing token.
package cluster
