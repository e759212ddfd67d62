package coordinator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mplock/lockd/replica"
	"mplock/worker"
)

// Cluster defaults, in one place. Faults come every third of the run, or
// every DefaultMaxFaultEvery in a longer one (so that a minute shows a
// dozen), but no closer than an election takes; the first one comes as
// long after the start (the default run: the leader is killed at a third
// of it). A pause lasts well past an election (faultLength), a client's
// pause past its session's TTL; a killed leader comes back after
// FaultEvery/2.
const (
	DefaultClusterNodes    = 3
	MaxClusterNodes        = 9
	DefaultClusterClients  = 4
	MaxClusterClients      = 64
	DefaultClusterDuration = 10 * time.Second
	DefaultClusterNames    = 2
	DefaultMaxFaultEvery   = 5 * time.Second
	// The nodes' raft timeouts and session TTL are `mplock serve`'s own
	// defaults (lockd/replica: a dead leader is replaced in about 0.4 to
	// 1.2 s).
	DefaultElectionTimeout     = replica.DefaultElectionTimeout
	DefaultHeartbeatTimeout    = replica.DefaultHeartbeatTimeout
	DefaultSessionTTL          = replica.DefaultSessionTTL
	DefaultClusterThink        = 200 * time.Millisecond
	DefaultClusterHold         = 20 * time.Millisecond
	DefaultClusterCheckTimeout = time.Minute
)

// ClusterFault is a kind of fault `mplock cluster` can inject.
type ClusterFault uint8

// Fault kinds.
const (
	// KillLeader: SIGKILL of the leader; it is restarted with its data dir
	// after a while.
	KillLeader ClusterFault = iota + 1
	// PauseLeader: SIGSTOP of the leader past the election timeout, then
	// SIGCONT: it wakes up as a deposed leader and must step down.
	PauseLeader
	// Partition: every link to and from one node is cut (its
	// proxies forward nothing, close nothing), then healed.
	Partition
	// PauseClient: SIGSTOP of a client between its read of the register
	// and its write, past its session's TTL, then SIGCONT: its lock went
	// to another client meanwhile, and its late write must be refused.
	PauseClient
)

var clusterFaultNames = [...]string{KillLeader: "kill", PauseLeader: "pause", Partition: "partition", PauseClient: "client-pause"}

func (k ClusterFault) String() string {
	if int(k) < len(clusterFaultNames) && k > 0 {
		return clusterFaultNames[k]
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

// Description says what the fault does, for help texts.
func (k ClusterFault) Description() string {
	switch k {
	case KillLeader:
		return "SIGKILL the leader; restart it later with its data dir"
	case PauseLeader:
		return "SIGSTOP the leader past the election timeout, then SIGCONT: a deposed leader wakes up"
	case Partition:
		return "cut every link to and from one node (no FIN, no RST), then heal"
	case PauseClient:
		return "SIGSTOP a client under its lock past its session TTL, then SIGCONT: its late write"
	}
	return ""
}

// AllClusterFaults lists every fault kind in the order a schedule cycles through.
var AllClusterFaults = []ClusterFault{KillLeader, PauseLeader, Partition, PauseClient}

// ParseClusterFaults reads a comma-separated list of fault kinds ("none" or ""
// for none).
func ParseClusterFaults(s string) ([]ClusterFault, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []ClusterFault
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "all" {
			out = append(out, AllClusterFaults...)
			continue
		}
		k, ok := parseClusterFault(f)
		if !ok {
			return nil, fmt.Errorf("%w: unknown fault %q: want kill, pause, partition, client-pause, all or none", ErrPlan, f)
		}
		out = append(out, k)
	}
	return out, nil
}

func parseClusterFault(s string) (ClusterFault, bool) {
	for i, n := range clusterFaultNames {
		if n != "" && strings.EqualFold(s, n) {
			return ClusterFault(i), true
		}
	}
	return 0, false
}

// ClusterPlan is one `mplock cluster` run.
type ClusterPlan struct {
	Nodes    int
	Clients  int
	Names    int // lock names file_A, file_B, ...
	Duration time.Duration
	// Faults are injected in turn, one every FaultEvery from FirstFault
	// on, cycling through the list.
	Faults     []ClusterFault
	FaultEvery time.Duration
	FirstFault time.Duration
	// Consistency of the clients' checks.
	Consistency worker.Consistency
	// Fencing: the registers refuse tokens below the highest they saw.
	Fencing bool
	// Check the recorded history for linearizability (porcupine), giving
	// up after CheckTimeout.
	Check        bool
	CheckTimeout time.Duration
	// Raft's and the sessions' timings, passed to every node.
	ElectionTimeout, HeartbeatTimeout, SessionTTL time.Duration
	// Think between a client's operations; Hold between its register
	// read and write.
	Think, Hold time.Duration
	// UnsafeLocalGrants runs every node in the deliberately broken mode:
	// a follower grants from its own map (for the checker's own test).
	UnsafeLocalGrants bool
	Seed              uint64
	// OnEvent, when set, sees every event as it happens (the narrative).
	OnEvent func(ClusterEvent) `json:"-"`
}

// Defaults fills in what is zero.
func (p *ClusterPlan) Defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if p.Nodes == 0 {
		p.Nodes = DefaultClusterNodes
	}
	if p.Clients == 0 {
		p.Clients = DefaultClusterClients
	}
	if p.Names == 0 {
		p.Names = DefaultClusterNames
	}
	if p.Consistency == "" {
		p.Consistency = worker.Mixed
	}
	def(&p.Duration, DefaultClusterDuration)
	def(&p.ElectionTimeout, DefaultElectionTimeout)
	def(&p.HeartbeatTimeout, DefaultHeartbeatTimeout)
	def(&p.SessionTTL, DefaultSessionTTL)
	def(&p.FaultEvery, max(min(p.Duration/3, DefaultMaxFaultEvery), p.electionBound()))
	def(&p.FirstFault, min(p.Duration/3, p.FaultEvery))
	def(&p.CheckTimeout, DefaultClusterCheckTimeout)
}

// Validate checks the plan; errors wrap ErrPlan.
func (p ClusterPlan) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrPlan, fmt.Sprintf(format, a...))
	}
	switch {
	case p.Nodes < 1 || p.Nodes > MaxClusterNodes:
		return bad("%d nodes: want 1 to %d", p.Nodes, MaxClusterNodes)
	case p.Clients < 1 || p.Clients > MaxClusterClients:
		return bad("%d clients: want 1 to %d", p.Clients, MaxClusterClients)
	case p.Names < 1 || p.Names > 26:
		return bad("%d names: want 1 to 26", p.Names)
	case p.Duration <= 0:
		return bad("duration %v: must be positive", p.Duration)
	case p.FaultEvery <= 0 || p.FirstFault < 0:
		return bad("fault interval %v from %v: must be positive", p.FaultEvery, p.FirstFault)
	case p.ElectionTimeout <= 0 || p.HeartbeatTimeout <= 0 || p.SessionTTL <= 0:
		return bad("timeouts must be positive")
	case p.Think < 0 || p.Hold < 0:
		return bad("think and hold must not be negative")
	}
	if _, err := worker.ParseConsistency(string(p.Consistency)); err != nil {
		return bad("%v", err)
	}
	for _, f := range p.Faults {
		if (f == KillLeader || f == PauseLeader || f == Partition) && p.Nodes < 3 {
			return bad("fault %s needs at least 3 nodes (a majority must survive it), have %d", f, p.Nodes)
		}
	}
	return nil
}

// ClusterName is the i-th lock name: file_A, file_B, ... (the seed's).
func ClusterName(i int) string { return "file_" + string(rune('A'+i)) }

// NodeName is the i-th node's id: n1, n2, ...
func NodeName(i int) string { return fmt.Sprintf("n%d", i+1) }

// Schedule lists the faults of the run with their start times: one every
// FaultEvery from FirstFault, cycling through p.Faults, until one would
// not end before the run does (see Unscheduled).
func (p ClusterPlan) Schedule() []ScheduledFault {
	if len(p.Faults) == 0 {
		return nil
	}
	var out []ScheduledFault
	for at, i := p.FirstFault, 0; at < p.Duration; at, i = at+p.FaultEvery, i+1 {
		k := p.Faults[i%len(p.Faults)]
		if at+p.faultLength(k) > p.Duration {
			break
		}
		out = append(out, ScheduledFault{At: at, Kind: k})
	}
	return out
}

// Unscheduled lists the kinds of p.Faults that Schedule leaves out, each
// with how long it lasts: the run is too short for them (a client's pause
// lasts two session TTLs and more).
func (p ClusterPlan) Unscheduled() map[ClusterFault]time.Duration {
	out := map[ClusterFault]time.Duration{}
	s := p.Schedule()
	for _, k := range p.Faults {
		if !slices.ContainsFunc(s, func(f ScheduledFault) bool { return f.Kind == k }) {
			out[k] = p.faultLength(k)
		}
	}
	return out
}

// ScheduledFault is one fault of a schedule.
type ScheduledFault struct {
	At   time.Duration // from the start of the operations
	Kind ClusterFault
}

// faultLength is how long a fault lasts before it is undone (a killed
// node's restart, SIGCONT, the heal).
func (p ClusterPlan) faultLength(k ClusterFault) time.Duration {
	switch k {
	case KillLeader:
		return p.FaultEvery / 2
	case PauseLeader:
		return p.electionBound()
	case Partition:
		return max(p.FaultEvery/2, p.electionBound())
	case PauseClient:
		// The session ends within two TTLs (nodeArgs: the idle timeout
		// closes the silent connection, the session expires a TTL
		// later); then long enough for another client to take the lock.
		return 2*p.SessionTTL + max(2*p.ElectionTimeout, 2*time.Second)
	}
	return 0
}

// electionBound is a generous bound of the time the others take to elect
// a new leader after losing the old one: a follower waits up to twice the
// heartbeat timeout before it stands, and a split vote costs up to twice
// the election timeout again; thrice their sum.
func (p ClusterPlan) electionBound() time.Duration {
	return 3 * (p.HeartbeatTimeout + p.ElectionTimeout)
}

// opTimeout bounds a client's operation (worker.ClusterSpec.Timeout): the
// Go client resumes its session at another node, or learns it is lost,
// within a session TTL, so a change still unanswered after three has hit a
// stuck service.
func (p ClusterPlan) opTimeout() time.Duration { return 3 * p.SessionTTL }
