// Package waitfor builds the global wait-for graph of processes that hold and
// wait for named locks on several lock servers, finds its cycles, and tells a
// cycle that really exists from one that only appears in a snapshot taken
// mid-handoff.
//
// It is pure: no I/O, no goroutines, no clock. The caller (mplock's
// deadlock coordinator) asks every server for its holders and waiters
// (lockd's STATUS), turns each answer into LockStates with FromStatus, and
// calls New with all of them: one look. Processes are keyed by the identity
// they gave each server in HELLO (name and pid), so the same process is one
// node across servers.
//
// The edges: a waiter waits for every holder of its lock that its mode
// conflicts with ("held by"), and, because lockd's queues are FIFO and a
// request never overtakes an earlier one, for every earlier waiter it
// conflicts with ("queued behind").
//
// Deadlocks and transient cycles. A wait with a deadline (a timed acquire)
// ends by itself, so a cycle through it is transient; Deadlocks returns only
// cycles of waits without one, Cycles every cycle.
//
// Why two looks. The servers answer one after the other, so one look is
// not a snapshot of one instant: an edge seen on server A may be gone by the
// time server B is asked, and a cycle assembled from such parts may never
// have existed at any one time. Every edge carries the identity of the wait
// (session and the time it was queued) and of what it waits for (the
// holder's fencing token, or the earlier waiter's identity). A wait or a
// hold with the same identity in two looks existed throughout the time
// between them: a hold cannot end and come back with the same token, and a
// wait cannot end and come back with the same session and start time. So if
// every edge of a cycle found in the second look is also in the first (the
// second begun after the first ended), all of them existed together at the
// instant between the looks: the cycle was real, and a cycle of waits with
// no deadline never breaks by itself. Confirm applies that rule.
package waitfor
