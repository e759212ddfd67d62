// Package lockd is mplock's named-lock service: a lock table, the line
// protocol that exposes it over TCP, the server, and a Go client.
//
// The pieces, one file each:
//
//   - table.go: the lock table as a pure state machine. It does no I/O,
//     starts no goroutine and reads no clock: every call is given the time.
//     Per name it keeps the holders and a FIFO queue of waiters; shared (READ)
//     holders coexist, an exclusive (WRITE) holder is alone, and a request
//     never overtakes an earlier waiter, so writers do not starve. Every grant
//     gets a fencing token from one counter, so tokens rise with every grant
//     of a name and never repeat.
//   - tokens.go: how the counter keeps rising across restarts (TokenStore:
//     from the start time, or a ceiling kept in a data directory).
//   - protocol.go: requests and replies as text lines, usable with nc. The
//     full grammar, error codes and limits are in docs/protocol.md.
//   - server.go, session.go: the TCP server. A connection is a session; its
//     locks die with it. Optional leases (TTL) must be renewed. Connections
//     that have not presented the secret are bounded in number and time.
//   - backend.go, local.go: the seam between the server and the table, and
//     its single-process implementation (the table, its mutex, its timers,
//     its token store). The code that applies a change pushes the reply and
//     the events into the sessions' outboxes and never waits for a socket.
//   - outbox.go: a session's bounded pending output, written by the
//     session's own goroutines; sendbuf.go: the kernel's share of it (a
//     fixed send buffer, counted in the bound).
//   - replicated.go, wire.go: the seam to a replicated table (Replicated,
//     Conn), implemented by package lockd/cluster over lockd/replica, and
//     the reply formats such a backend writes (CHECK, RESUME, MEMBERS and
//     the rest).
//   - status.go, deadline.go: the table's snapshots (what STATUS lists, in
//     pages) and its lease expiries and wait timeouts.
//   - debug.go: the DEBUG request (heap and table sizes), for tests.
//   - client.go, lease.go: the Go client: Dial, Client.Lock, Client.TryLock,
//     Client.Unlock, Client.Status; a Lease carries the fencing token and a
//     Done channel closed when the lock is lost.
//   - leaseclock.go: the client's own clock on each lease: renewals, and the
//     Deadline from which the server may have given the lock to someone
//     else, at which Done closes even if the server never says a word.
//   - resume.go: the client against a cluster: keepalives the leader
//     confirms, and on a lost connection RESUME at another member, the
//     unanswered requests sent again (same req=), leases and waits
//     reconciled; Check, Members.
//   - lockbench: the same acquire/release measurement against lockd, Redis
//     and etcd (`mplock bench lockd`, scripts/lockd-compare.sh).
//   - metrics.go: Prometheus metrics for the server.
//
// Concurrency: a Table is not safe for concurrent use (the local backend
// guards it with one mutex); Server and Client are.
package lockd
