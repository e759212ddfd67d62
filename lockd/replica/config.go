package replica

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"mplock/lockd"
)

// Defaults for Config's zero fields. The raft timeouts are chosen for a fast
// failover on a LAN or one host: a follower that hears nothing from the
// leader for HeartbeatTimeout (randomised up to twice that) starts an
// election once the other followers have also given up on the leader, so a
// dead leader is replaced in 0.4 s to 0.8 s plus a vote round and the new
// leader's Barrier and ExtendLeases commits, more when the first votes
// split. Measured over 60 leader crashes on a loaded 2-core machine: 0.73 s
// at the median, 1.22 s at the worst (BenchmarkFailover). raft's own
// defaults (1 s) take about twice as long. Across a WAN, raise both.
const (
	DefaultRaftListen         = "127.0.0.1:7555"
	DefaultHeartbeatTimeout   = 400 * time.Millisecond
	DefaultElectionTimeout    = 400 * time.Millisecond
	DefaultLeaderLeaseTimeout = 200 * time.Millisecond
	// DefaultCommitTimeout bounds how long a follower waits to learn that
	// an entry committed when no new entry follows it (raft sends an
	// AppendEntries after this idle time, randomised up to twice it). A
	// request that enters at a follower is answered once the follower has
	// applied it; the leader appends a barrier to tell it sooner
	// (nudge.go), so this matters for the others' entries. Each idle tick
	// is an exchange with every follower: at 2ms, the leader of an idle
	// 3-member cluster used 0.11 to 0.13 of a CPU and each follower 0.04
	// (three `mplock serve` processes, utime+stime from /proc/PID/stat
	// over 20-30 s, on the 2-vCPU development VM).
	DefaultCommitTimeout     = 2 * time.Millisecond
	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 30 * time.Second
	DefaultTrailingLogs      = 10240
	DefaultMaxStale          = 5 * time.Second
	// DefaultRetainSnapshots is how many snapshots the data dir keeps.
	DefaultRetainSnapshots = 2
)

// Peer is a member of the initial cluster: its node id and raft address.
type Peer struct {
	ID   string
	Addr string
}

// ParseInitialCluster reads "n1=127.0.0.1:7555,n2=127.0.0.1:7556" (etcd's
// --initial-cluster form). Ids and addresses must be non-empty and ids
// distinct.
func ParseInitialCluster(s string) ([]Peer, error) {
	var peers []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("replica: initial cluster %q: want id=host:port[,id=host:port...]", s)
		}
		if seen[id] {
			return nil, fmt.Errorf("replica: initial cluster %q: node %s twice", s, id)
		}
		seen[id] = true
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	return peers, nil
}

// Config configures a Node. NodeID is required; everything else has a
// default.
type Config struct {
	// NodeID names this node in the cluster for ever (raft's ServerID):
	// letters, digits, '.', '_', '-'.
	NodeID string
	// RaftListen is the TCP address for raft and the cluster's RPC (both
	// on one port: the first byte of each connection says which).
	// Loopback by default.
	RaftListen string
	// RaftAdvertise is the address other nodes dial to reach this one;
	// default: the address RaftListen bound.
	RaftAdvertise string
	// ClientAddr is this node's client (line protocol) address, recorded
	// in the replicated state so that every node can tell clients where
	// the members are.
	ClientAddr string
	// DataDir holds the raft log and stable store (bolt, raft.db) and the
	// snapshots. It must be a directory private to this user (mode 0700,
	// owned by the effective uid, not a symlink); it is created 0700 if
	// missing. Empty: nothing is kept on disk (tests only: a node that
	// restarts without its log may break raft's guarantees).
	DataDir string

	// InitialCluster bootstraps a new cluster: every node is given the
	// same list, which must include this node. Used only when the stores
	// are empty. Without it and without Join, a node with empty stores
	// bootstraps a one-node cluster of itself.
	InitialCluster []Peer
	// Join lists members' raft addresses: a node with empty stores asks
	// them, in turn and again until it is admitted, to add it as a voter
	// (the leader does). Ignored once the node has state.
	Join []string
	// AwaitAdmission: a node with empty stores and no InitialCluster
	// neither bootstraps a one-node cluster of itself nor asks anyone:
	// it waits until a member adds it (Join at a member, as `mplock serve
	// --join` asks through a member's client port). Without it, such a
	// node would lead a cluster of its own, which no other cluster could
	// ever take in.
	AwaitAdmission bool
	// Secret authenticates every connection between nodes (raft and RPC,
	// joins and member changes included): a peer that does not know it is
	// refused. Required by NewNode (ErrNoSecret): a peer on the raft port
	// can append log entries and write for any session. It is not
	// encryption.
	Secret string
	// PeerAddr, when set, overrides the address this node dials to reach
	// node id (for raft and forwarding alike); ok false means "the
	// member's own address". Per-link proxies use it to cut links without
	// root.
	PeerAddr func(id string) (addr string, ok bool)

	// raft tunables; see the Default constants.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64

	// SessionTTL is the TTL of a session opened with none
	// (DefaultSessionTTL when zero).
	SessionTTL time.Duration
	// MaxStale bounds a stale read: a follower that has not heard from a
	// leader for longer refuses it with ErrStale (DefaultMaxStale).
	MaxStale time.Duration
	// Limits bound each session in the table.
	Limits lockd.TableLimits

	// Logger receives the node's logs (elections, membership, errors) and,
	// at Debug, raft's own; nil discards them.
	Logger *slog.Logger
	// Observer is called for every applied entry, in log order, from the
	// apply goroutine (see Applied). It must not block: every apply waits
	// for it.
	Observer func(Applied)
	// OnState is called with the node's status after each change of role,
	// leader or membership, from a goroutine of the node, one call at a
	// time. It should return quickly.
	OnState func(Status)

	// UnsafeLocalGrants is a deliberately broken mode for tests and for
	// `mplock cluster`'s checker: a follower applies LOCK to its own table
	// without the leader, as a naive replication would. Never set it
	// otherwise.
	UnsafeLocalGrants bool
}

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if err := lockd.ValidName(c.NodeID); err != nil {
		return c, fmt.Errorf("replica: node id: %w", err)
	}
	if c.RaftListen == "" {
		c.RaftListen = DefaultRaftListen
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&c.ElectionTimeout, DefaultElectionTimeout)
	def(&c.LeaderLeaseTimeout, min(DefaultLeaderLeaseTimeout, c.HeartbeatTimeout))
	def(&c.CommitTimeout, DefaultCommitTimeout)
	def(&c.SnapshotInterval, DefaultSnapshotInterval)
	def(&c.SessionTTL, DefaultSessionTTL)
	def(&c.MaxStale, DefaultMaxStale)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(c.InitialCluster) > 0 {
		found := false
		for _, p := range c.InitialCluster {
			if err := lockd.ValidName(p.ID); err != nil {
				return c, fmt.Errorf("replica: initial cluster: node id: %w", err)
			}
			found = found || p.ID == c.NodeID
		}
		if !found {
			return c, fmt.Errorf("replica: initial cluster does not list this node (%s)", c.NodeID)
		}
	}
	return c, nil
}
