package worker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ClusterService is the lock service as one client of `mplock cluster`
// sees it: the seed's three operations, each sent to a server of the
// client's choosing (the service may answer from another one, after a
// failover). A ClusterService is one session; it is used by one goroutine.
//
// Outcomes and errors, which decide how an operation goes into the
// history that is checked for linearizability:
//
//   - a Reply (nil error): the outcome is known. A refusal (the name is
//     held by someone else, a release by a non-owner) is Reply.OK false;
//   - ErrNotApplied (wrapped): the request surely took no effect (no
//     leader, refused before it reached the log, a read that failed);
//   - ErrSessionLost (wrapped): the session is gone (its TTL passed
//     without keepalives); its locks were released by the service at some
//     moment since the session was last seen alive. The request's outcome
//     is unknown (it may have taken effect before the session ended),
//     unless the error also wraps ErrNotApplied (it was not sent);
//   - any other error: the outcome is unknown (the request may have taken
//     effect, or not, at any time after it was sent).
type ClusterService interface {
	Preempt(ctx context.Context, name string, at string) (Reply, error)
	Release(ctx context.Context, name string, at string) (Reply, error)
	Check(ctx context.Context, name string, at string, c Consistency) (Reply, error)
	// Close ends the session (QUIT: its locks are released).
	Close() error
}

// ClusterDialer opens a session named client (the model's client: the
// owner a check reports) with the servers, and reports the service's
// events (a session resumed at another server) through note.
type ClusterDialer func(ctx context.Context, servers []string, client string, note func(ClusterNote)) (ClusterService, error)

var (
	// ErrNotApplied says a request surely took no effect.
	ErrNotApplied = errors.New("worker: request not applied")
	// ErrSessionLost says the session is gone, and its locks with it.
	ErrSessionLost = errors.New("worker: session lost")
	// ErrNoLease (with ErrNotApplied) says a release was not sent: the
	// session holds no lease of the name.
	ErrNoLease = errors.New("worker: the session holds no lease of the name")
)

// Reply is what the service answered, and where from.
type Reply struct {
	OK    bool   // preempt granted, release done (ignored for check)
	Token uint64 // a granted preempt's fencing token
	Owner string // check: the owning client, "" when free
	// Node is the server that answered (its id). For a check, Role is
	// its role then ("leader", "follower") and Leader the leader it knew,
	// as its answer said; a change's answer does not say them (empty).
	Node, Role, Leader string
	Consistency        Consistency   // check: as answered
	Index              uint64        // check: the applied index it answered at
	Contact            time.Duration // check (stale): time since the node last heard from the leader
}

// Consistency is a check's consistency, as the protocol names it.
type Consistency string

// The consistencies of a check (docs/protocol.md, CHECK).
const (
	Stale      Consistency = "stale"      // the node's own map (the seed's check)
	Default    Consistency = "default"    // the leader's map, without a quorum round
	Consistent Consistency = "consistent" // linearizable
	// Mixed is not a consistency: each check picks one of the three.
	Mixed Consistency = "mixed"
)

// ParseConsistency reads stale, default, consistent or mixed.
func ParseConsistency(s string) (Consistency, error) {
	switch c := Consistency(s); c {
	case Stale, Default, Consistent, Mixed:
		return c, nil
	}
	return "", fmt.Errorf("worker: consistency %q: want stale, default, consistent or mixed", s)
}
