package lockbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mplock/lockd"
)

// Entry is a member of a cluster where a benchmark's clients send their
// requests: the leader, or a follower (which forwards every change to the
// leader and answers once its own table has applied it).
type Entry struct {
	Role string // "leader" or "follower"
	Node string // the member's id
	Addr string // its client address
}

// Topology is what Discover learned of the server(s) at an address list.
type Topology struct {
	// Cluster is false for a single server; the rest is then empty.
	Cluster bool
	Leader  Entry
	// Followers are the members other than the leader that have a client
	// address, in the order MEMBERS lists them.
	Followers []Entry
	// Addrs is every member's client address, the leader's first.
	Addrs []string
}

// Discover asks the first server of addrs (comma-separated) that answers
// whether it is a cluster member and, if so, for the members and the
// leader (MEMBERS). A cluster without a leader, or whose leader has no
// client address, is an error. secret is presented with AUTH ("": none).
func Discover(ctx context.Context, addrs, secret string) (Topology, error) {
	c, err := lockd.Dial(ctx, addrs, lockd.Options{Client: "bench-discover", Secret: secret})
	if err != nil {
		return Topology{}, err
	}
	defer c.Close()
	if _, ok := c.Cluster(); !ok {
		return Topology{}, nil
	}
	m, err := c.Members(ctx)
	if err != nil {
		return Topology{}, fmt.Errorf("lockbench: MEMBERS: %w", err)
	}
	t := Topology{Cluster: true}
	for _, s := range m.Members {
		if s.ClientAddr == "" {
			continue
		}
		if s.ID == m.Leader {
			t.Leader = Entry{Role: "leader", Node: s.ID, Addr: s.ClientAddr}
		} else if s.Role != "down" {
			t.Followers = append(t.Followers, Entry{Role: "follower", Node: s.ID, Addr: s.ClientAddr})
		}
	}
	if t.Leader.Addr == "" {
		return Topology{}, fmt.Errorf("lockbench: the cluster at %s has no leader with a client address now (leader %q)", addrs, m.Leader)
	}
	t.Addrs = []string{t.Leader.Addr}
	for _, s := range m.Members {
		if s.ClientAddr != "" && !slices.Contains(t.Addrs, s.ClientAddr) {
			t.Addrs = append(t.Addrs, s.ClientAddr)
		}
	}
	return t, nil
}

// Via is the address list a client of e dials: e first, then the other
// members (where the Go client resumes its session should e fail).
func (t Topology) Via(e Entry) string {
	out := []string{e.Addr}
	for _, a := range t.Addrs {
		if a != e.Addr {
			out = append(out, a)
		}
	}
	return strings.Join(out, ",")
}

// ErrWrongMember: a client meant for one member reached another.
var ErrWrongMember = errors.New("lockbench: connected to another member than asked")

// MplockAt dials like MplockTTL, through addrs (the entry first), and
// fails with ErrWrongMember unless the member that answered is node: a
// benchmark of requests entering at a follower must not quietly measure
// the leader because the follower was down. node "" accepts any server.
func MplockAt(addrs, node string, ttl time.Duration, secret string) Dialer {
	return func(ctx context.Context, i int) (Locker, error) {
		c, err := dialAt(ctx, addrs, node, lockd.Options{Client: fmt.Sprintf("bench-%d", i), Secret: secret})
		if err != nil {
			return nil, err
		}
		return newMplockLocker(c, ttl), nil
	}
}

// dialAt dials a client through addrs and, unless node is "", fails with
// ErrWrongMember when the member that answered is not node (a single
// server, which is no member, is not node either).
func dialAt(ctx context.Context, addrs, node string, opts lockd.Options) (*lockd.Client, error) {
	c, err := lockd.Dial(ctx, addrs, opts)
	if err != nil {
		return nil, err
	}
	if info, _ := c.Cluster(); node != "" && info.Node != node {
		c.Close()
		return nil, fmt.Errorf("%w: want %s, got %q", ErrWrongMember, node, info.Node)
	}
	return c, nil
}
