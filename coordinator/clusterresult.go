package coordinator

import (
	"fmt"
	"time"

	"mplock/worker"
)

// ClusterEventKind is the kind of an event of a cluster run.
type ClusterEventKind uint8

// Cluster event kinds.
const (
	ClusterNodeUp     ClusterEventKind = iota + 1 // a node listens (started or restarted)
	ClusterLeader                                 // a node became leader (Node, Term; Took: since the fault)
	ClusterFaultStart                             // a fault was injected (Fault, Node or Client)
	ClusterFaultEnd                               // it was undone: restart, SIGCONT, heal
	ClusterOp                                     // a client's operation (Note)
	ClusterRegister                               // a client's register access (Note)
	ClusterSession                                // a client's session resumed elsewhere or replaced (Note)
	ClusterAbort                                  // the run stops early (Text)
)

var clusterEventNames = [...]string{
	ClusterNodeUp: "node-up", ClusterLeader: "leader", ClusterFaultStart: "fault", ClusterFaultEnd: "fault-end",
	ClusterOp: "op", ClusterRegister: "register", ClusterSession: "session", ClusterAbort: "abort",
}

func (k ClusterEventKind) String() string {
	if int(k) < len(clusterEventNames) && k > 0 {
		return clusterEventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// MarshalText names the kind in JSON.
func (k ClusterEventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalText names the fault in JSON.
func (k ClusterFault) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// ClusterEvent is one thing that happened in a cluster run.
type ClusterEvent struct {
	At     time.Duration       `json:"at_ns"`           // since the start of the operations
	Setup  bool                `json:"setup,omitempty"` // before the operations started (At is then 0 in the result)
	Kind   ClusterEventKind    `json:"kind"`
	Node   string              `json:"node,omitempty"`
	PID    int                 `json:"pid,omitempty"`
	Client string              `json:"client,omitempty"` // the client's UUID
	Fault  ClusterFault        `json:"fault,omitempty"`
	Term   uint64              `json:"term,omitempty"`
	Took   time.Duration       `json:"took_ns,omitempty"` // leader: since the fault that caused the election
	Note   *worker.ClusterNote `json:"note,omitempty"`
	Text   string              `json:"text,omitempty"`
}

// ClusterResult is what a cluster run did and what the checks found.
type ClusterResult struct {
	Plan    ClusterPlan   `json:"plan"`
	Start   time.Time     `json:"start"`
	Elapsed time.Duration `json:"elapsed_ns"`

	Nodes     []ClusterNodeResult   `json:"nodes"`
	Clients   []ClusterClientResult `json:"clients"`
	Failovers []Failover            `json:"failovers"`
	Stale     StaleChecks           `json:"stale_checks"`
	// DoubleGrants are grants of a name to a client while another held
	// it, in real time (must be none).
	DoubleGrants []DoubleGrant    `json:"double_grants"`
	Registers    []RegisterState  `json:"registers"`
	Lin          *Linearizability `json:"linearizability,omitempty"`

	Events []ClusterEvent `json:"-"`
	Roles  []RoleSpan     `json:"-"` // the timeline's node rows
	Holds  []HoldSpan     `json:"-"` // the timeline's client rows

	Interrupted bool   `json:"interrupted"`
	Failure     string `json:"failure,omitempty"`
}

// ClusterNodeResult is one node's part.
type ClusterNodeResult struct {
	ID       string        `json:"id"`
	PIDs     []int         `json:"pids"`      // one per start
	Leader   time.Duration `json:"leader_ns"` // time it was leader
	Terms    []uint64      `json:"terms_led"` // the terms it led
	Applied  uint64        `json:"applied_index"`
	Downtime time.Duration `json:"downtime_ns"` // killed, paused or cut off
	Exit     string        `json:"exit"`
}

// ClusterClientResult is one client's part.
type ClusterClientResult struct {
	ID       string         `json:"id"` // UUID
	PID      int            `json:"pid"`
	Sessions int            `json:"sessions"`
	Ops      map[string]int `json:"ops"` // "preempt ok", "preempt refused", "check unknown", ...
	Exit     string         `json:"exit"`
}

// Failover is one fault that cost the cluster its leader, and what it
// took to recover.
type Failover struct {
	Fault     ClusterFault  `json:"fault"`
	Node      string        `json:"node"`
	At        time.Duration `json:"at_ns"`
	NewLeader string        `json:"new_leader,omitempty"`
	Term      uint64        `json:"term,omitempty"`
	// Elected is the time from the fault to a new leader, as the
	// coordinator's probes saw it; FirstOK to the first operation a client
	// completed (called after the fault). -1: never.
	Elected time.Duration `json:"elected_ns"`
	FirstOK time.Duration `json:"first_ok_ns"`
}

// StaleChecks counts checks at stale consistency and how far behind they
// were.
type StaleChecks struct {
	Count int `json:"count"`
	// LargestLag is the longest time since the answering node's last
	// contact with its leader, over every stale check.
	LargestLag time.Duration `json:"largest_lag_ns"`
}

// DoubleGrant is a grant of Name to Second while First held it.
type DoubleGrant struct {
	Name   string        `json:"name"`
	First  string        `json:"first"`
	Second string        `json:"second"`
	At     time.Duration `json:"at_ns"`
	Tokens [2]uint64     `json:"tokens"`
}

// RegisterState is one name's register at the end.
type RegisterState struct {
	Name     string `json:"name"`
	Value    uint64 `json:"value"`
	Accepted uint64 `json:"accepted"`
	Refused  uint64 `json:"refused"`
	Lost     uint64 `json:"lost"`
}

// Linearizability is porcupine's verdict on the history.
type Linearizability struct {
	Result     string        `json:"result"` // "ok", "illegal", "unknown" (the check timed out)
	Operations int           `json:"operations"`
	Took       time.Duration `json:"took_ns"`
	// On a violation: the smallest failing slice (lincheck.FailingSlice),
	// printed, and porcupine's HTML view of it.
	SliceName  string   `json:"slice_name,omitempty"`
	SliceOps   int      `json:"slice_operations,omitempty"`
	SliceOpen  int      `json:"slice_open,omitempty"` // later operations in the slice, their outcomes left open
	SliceOf    int      `json:"slice_of,omitempty"`
	SliceLines []string `json:"slice,omitempty"`
	HTML       []byte   `json:"-"`
}

// RoleSpan is a node's role over an interval.
type RoleSpan struct {
	Node     string
	Role     string // leader, follower, down, paused, cut off
	From, To time.Duration
}

// HoldSpan is a client's hold of a name: from its grant to its release
// (or the expiry of its session).
type HoldSpan struct {
	Client   string
	Name     string
	Token    uint64
	From, To time.Duration
}

// Failed reports whether the run found a violation or could not run:
// the exit status 1 of `mplock cluster`.
func (r *ClusterResult) Failed() bool {
	if r.Failure != "" || len(r.DoubleGrants) > 0 {
		return true
	}
	if r.Lin != nil && r.Lin.Result == "illegal" {
		return true
	}
	if r.Plan.Fencing {
		for _, g := range r.Registers {
			if g.Lost > 0 {
				return true
			}
		}
	}
	return false
}

// LostUpdates is the number of register increments overwritten unseen.
func (r *ClusterResult) LostUpdates() uint64 {
	var n uint64
	for _, g := range r.Registers {
		n += g.Lost
	}
	return n
}
