// Package replica replicates lockd's lock table with hashicorp/raft: a
// cluster of nodes that loses no lock, repeats no fencing token and grants no
// lock twice when a node dies, as long as a majority of the nodes is up and
// connected.
//
// # The pieces, one file each
//
//   - command.go: the log commands. Each entry is a type byte (Op), a version
//     byte, the leader's wall-clock stamp (Unix ns), then the command as
//     JSON. An unknown type stops the FSM unless flagged ignorable.
//   - fsm.go, fsm_snapshot.go, result.go: the FSM, a thin deterministic
//     adapter from commands to a lockd.Table (table time is max(stamp, last
//     stamp); session ids are log indexes; a fresh table's tokens start at
//     the first stamp in microseconds), session metadata and de-duplication
//     of retries by (session, request id), and canonical snapshots
//     (lockd.TableSnapshot plus the FSM's own state): replicas of one log
//     write byte-identical snapshots.
//   - node.go, config.go, store.go, transport.go, hclog.go: a node: bolt for
//     the log and stable store behind raft's LogCache, raft's file snapshots
//     (2 kept) in a private data dir, raft and the cluster RPC multiplexed on
//     one TCP port (loopback by default, authenticated by the cluster
//     secret), static bootstrap from an initial cluster or joining through a
//     member, per-peer dial addresses (Config.PeerAddr), slog logging.
//   - forward.go, rpc.go: writes at a follower are forwarded to the leader
//     over pooled connections; the follower answers once its own FSM has
//     applied the entry.
//   - nudge.go: when the last proposal in flight at the leader commits and
//     a forwarded write is among those it waits for, the leader appends a
//     barrier, whose AppendEntries tells the followers the commit index at
//     once (hashicorp/raft would otherwise tell them only with the next
//     entry, or after CommitTimeout).
//   - lessor.go: the leader's duties, started after a Barrier when it gains
//     leadership and stopped when it loses it: session deadlines (in memory,
//     expired through the log), lease extension on takeover and after a
//     stall, and Advance entries for lease expiries and wait timeouts.
//   - read.go: reads at a stated consistency (stale, default, consistent).
//   - membership.go: members, status, join and remove.
//   - testing.go: Cluster, an in-memory cluster for tests (partitions,
//     kills, restarts).
//   - lincheck/: a porcupine model of preempt, release and check, to check
//     recorded histories for linearizability.
//
// # Wiring a server to a Node
//
// The line-protocol server keeps its connections and turns requests into
// commands; the Node does the rest. The contract:
//
//   - Sessions. A connection's session is opened with OpenSession (a fresh
//     random secret, which the client keeps for RESUME; the TTL; the client's
//     name, pid and address; this node's id) and lives in the replicated
//     state, not in the connection: it outlives a dropped connection until
//     its TTL passes without keepalives. The server sends Keepalive for the
//     sessions of its connections (batched; every TTL/3 or on PING), and
//     ends a session with CloseSession on QUIT. A client that comes back at
//     any node sends RESUME; the server may check the secret with
//     View.CheckSecret and proposes ResumeSession (ResumeAttempt, whose
//     attempt id comes back in Result.Request, tells the proposer's entry
//     from an older resume replayed from the log), whose result carries the
//     session's whole state (held locks with tokens, waits with positions,
//     as STATUS lists them, and the last request id applied).
//   - Requests. Each session numbers its requests (Command.Request, rising,
//     starting at 1) and applies them one at a time, in order, with Apply.
//     On ErrAmbiguous the server retries the same command (same id), at
//     this node or another: the FSM returns the recorded result and never
//     applies it twice (a retried LOCK returns the same grant, and in
//     Result.Current where the session stands on the name now). It keeps
//     the results of a session's last lockd.RequestWindow requests, each
//     with a fingerprint of its request: a retry must repeat its request
//     unchanged (another request under a recorded id is refused,
//     CodeRequestOrder, and not applied), and a client keeps at most
//     RequestWindow requests of a session unanswered. On
//     ErrNotApplied nothing happened. Result.Err is the table's refusal
//     (errors.Is against lockd.ErrLocked, lockd.ErrNotHolder, ...;
//     TableError.Code is the protocol's ERR code).
//   - Replies and events. Config.Observer sees every applied entry in log
//     order, synchronously in the apply goroutine (it must only queue,
//     never block). A node delivers Result.Events to the sessions attached
//     to it, where a connection is attached to its session from the apply
//     of its OpenSession or ResumeSession entry on: so an event is delivered
//     once, by the node holding the session's connection, and the log
//     replay after a restart (which happens before any session can attach)
//     delivers nothing again. A reply may be pushed from the observer too
//     (for the pending request with that session and request id) or taken
//     from Apply's return; either way it comes after the events of every
//     earlier entry and of its own (the observer runs before Apply returns,
//     at the leader and at a follower). Applied.Restored says the FSM was
//     replaced by a snapshot: re-read the attached sessions' state.
//   - Reads. CHECK and STATUS run under Read with the client's consistency:
//     View.Owners, View.Status, View.Session, View.Nodes. ReadInfo gives the
//     applied index, the leader and the time since the last contact with it
//     (for `consistency=stale`).
//   - A node started with Config.AwaitAdmission and empty stores waits to
//     be added (Join at a member) instead of bootstrapping a cluster of
//     its own: what `mplock serve --join` starts.
//   - Cluster. Status (role, term, leader and its client address, commit
//     and applied index, last contact, members, Ready for /readyz),
//     PeerStatus for every member's, Members, Join, RemoveMember, and
//     Config.OnState on every change of role, leader or membership (HELLO's
//     leader= and members=). Shutdown hands leadership over first.
//
// # Guarantees and their limits
//
// Every change to the table is a log entry applied by every node in the same
// order at the same table time, after a majority stored it. A leader
// change keeps every lock, token and queue position; a new leader gives
// every session and lease a full TTL before it expires any, and so does a
// leader that finds it stood still for more than a second. Consistent
// reads are linearizable; default reads are linearizable except while a
// deposed leader has not noticed (at most LeaderLeaseTimeout); stale reads
// say how stale they may be and are refused past Config.MaxStale. A client
// that believes it holds a lock must still bound that belief by its own
// lease clock, and a resource must still check fencing tokens: a paused
// client's lock can expire under it.
//
// # Figures (this package's benchmarks, 2 shared cores, loopback, bolt with fsync)
//
// With the default timeouts, the time from a leader's crash (its links cut,
// no leadership transfer) to the first successful Apply at a survivor was
// 0.73 s at the median and 1.22 s at the worst over 60 crashes; after
// Shutdown, which transfers leadership first, 23 ms at the median. Apply
// throughput: see BenchmarkApply (one applier waits for two fsyncs in
// sequence, the leader's then a follower's; sixteen share them; a request
// entering at a follower also waits for the follower to learn of the
// commit, up to twice CommitTimeout).
//
// Concurrency: Node's methods are safe for concurrent use; an FSM is driven
// by raft (Apply, Snapshot, Restore from one goroutine) and read under its
// read lock.
package replica
