package report

import (
	"encoding/json"
	"io"

	"mplock/coordinator"
)

// ClusterDoc is `mplock cluster --json`'s document (fields in the
// README). Times are in milliseconds.
type ClusterDoc struct {
	Command      string                      `json:"command"` // "cluster"
	ExitCode     int                         `json:"exit_code"`
	Outcome      string                      `json:"outcome"` // held, violation, lost-updates, failed, interrupted
	Plan         ClusterPlanDoc              `json:"plan"`
	ElapsedMs    float64                     `json:"elapsed_ms"`
	Nodes        []ClusterNodeDoc            `json:"nodes"`
	Clients      []ClusterClientDoc          `json:"clients"`
	Failovers    []ClusterFailoverDoc        `json:"failovers"`
	StaleChecks  ClusterStaleDoc             `json:"stale_checks"`
	DoubleGrants []ClusterDoubleDoc          `json:"double_grants"`
	Registers    []coordinator.RegisterState `json:"registers"`
	LostUpdates  uint64                      `json:"lost_updates"`
	Lin          *ClusterLinDoc              `json:"linearizability,omitempty"`
	Failure      string                      `json:"failure,omitempty"`
	Verdict      []string                    `json:"verdict"`
}

// ClusterPlanDoc is the run's plan.
type ClusterPlanDoc struct {
	Nodes             int      `json:"nodes"`
	Clients           int      `json:"clients"`
	Names             int      `json:"names"`
	DurationMs        float64  `json:"duration_ms"`
	Faults            []string `json:"faults"`
	FaultEveryMs      float64  `json:"fault_every_ms"`
	Fencing           bool     `json:"fencing"`
	Consistency       string   `json:"consistency"`
	Check             bool     `json:"check"`
	ElectionTimeoutMs float64  `json:"election_timeout_ms"`
	SessionTTLMs      float64  `json:"session_ttl_ms"`
	Seed              uint64   `json:"seed"`
}

// ClusterNodeDoc is one node.
type ClusterNodeDoc struct {
	ID         string   `json:"id"`
	PIDs       []int    `json:"pids"`
	LeaderMs   float64  `json:"leader_ms"`
	TermsLed   []uint64 `json:"terms_led"`
	Applied    uint64   `json:"applied_index"`
	DowntimeMs float64  `json:"downtime_ms"`
	Exit       string   `json:"exit"`
}

// ClusterClientDoc is one client.
type ClusterClientDoc struct {
	ID       string         `json:"id"`
	PID      int            `json:"pid"`
	Sessions int            `json:"sessions"`
	Ops      map[string]int `json:"ops"`
	Exit     string         `json:"exit"`
}

// ClusterFailoverDoc is one failover; -1 for a time that never came.
type ClusterFailoverDoc struct {
	Fault     string  `json:"fault"`
	Node      string  `json:"node"`
	AtMs      float64 `json:"at_ms"`
	NewLeader string  `json:"new_leader"`
	Term      uint64  `json:"term"`
	ElectedMs float64 `json:"elected_ms"`
	FirstOKMs float64 `json:"first_ok_ms"`
}

// ClusterStaleDoc counts stale checks.
type ClusterStaleDoc struct {
	Count        int     `json:"count"`
	LargestLagMs float64 `json:"largest_lag_ms"`
}

// ClusterDoubleDoc is a double grant.
type ClusterDoubleDoc struct {
	Name   string    `json:"name"`
	First  string    `json:"first"`
	Second string    `json:"second"`
	AtMs   float64   `json:"at_ms"`
	Tokens [2]uint64 `json:"tokens"`
}

// ClusterLinDoc is porcupine's verdict.
type ClusterLinDoc struct {
	Result     string   `json:"result"`
	Operations int      `json:"operations"`
	CheckMs    float64  `json:"check_ms"`
	SliceName  string   `json:"slice_name,omitempty"`
	SliceOps   int      `json:"slice_operations,omitempty"` // the failing prefix
	SliceOpen  int      `json:"slice_open,omitempty"`       // later operations in it, their outcomes left open
	Slice      []string `json:"slice,omitempty"`
}

func msOrNever(d interface{ Microseconds() int64 }) float64 {
	if d.Microseconds() < 0 {
		return -1
	}
	return float64(d.Microseconds()) / 1000
}

// ClusterOutcome names the run's outcome in one word.
func ClusterOutcome(r *coordinator.ClusterResult) string {
	switch {
	case r.Interrupted:
		return "interrupted"
	case r.Failure != "":
		return "failed"
	case len(r.DoubleGrants) > 0 || (r.Lin != nil && r.Lin.Result == "illegal") || (r.Plan.Fencing && r.LostUpdates() > 0):
		return "violation"
	case r.LostUpdates() > 0:
		return "lost-updates"
	}
	return "held"
}

// NewClusterDoc builds the JSON document of a run.
func NewClusterDoc(c Cluster) ClusterDoc {
	r := c.Result
	p := r.Plan
	d := ClusterDoc{Command: "cluster", ExitCode: c.ExitCode, Outcome: ClusterOutcome(r), ElapsedMs: ms(r.Elapsed),
		Plan: ClusterPlanDoc{Nodes: p.Nodes, Clients: p.Clients, Names: p.Names, DurationMs: ms(p.Duration),
			FaultEveryMs: ms(p.FaultEvery), Fencing: p.Fencing, Consistency: string(p.Consistency), Check: p.Check,
			ElectionTimeoutMs: ms(p.ElectionTimeout), SessionTTLMs: ms(p.SessionTTL), Seed: p.Seed, Faults: []string{}},
		Nodes: []ClusterNodeDoc{}, Clients: []ClusterClientDoc{}, Failovers: []ClusterFailoverDoc{}, DoubleGrants: []ClusterDoubleDoc{},
		StaleChecks: ClusterStaleDoc{Count: r.Stale.Count, LargestLagMs: ms(r.Stale.LargestLag)},
		Registers:   r.Registers, LostUpdates: r.LostUpdates(), Failure: r.Failure, Verdict: ClusterVerdict(c)}
	for _, f := range p.Faults {
		d.Plan.Faults = append(d.Plan.Faults, f.String())
	}
	for _, n := range r.Nodes {
		d.Nodes = append(d.Nodes, ClusterNodeDoc{ID: n.ID, PIDs: n.PIDs, LeaderMs: ms(n.Leader), TermsLed: n.Terms,
			Applied: n.Applied, DowntimeMs: ms(n.Downtime), Exit: n.Exit})
	}
	for _, cl := range r.Clients {
		d.Clients = append(d.Clients, ClusterClientDoc{ID: cl.ID, PID: cl.PID, Sessions: cl.Sessions, Ops: cl.Ops, Exit: cl.Exit})
	}
	for _, f := range r.Failovers {
		d.Failovers = append(d.Failovers, ClusterFailoverDoc{Fault: f.Fault.String(), Node: f.Node, AtMs: ms(f.At),
			NewLeader: f.NewLeader, Term: f.Term, ElectedMs: msOrNever(f.Elected), FirstOKMs: msOrNever(f.FirstOK)})
	}
	for _, g := range r.DoubleGrants {
		d.DoubleGrants = append(d.DoubleGrants, ClusterDoubleDoc{Name: g.Name, First: g.First, Second: g.Second, AtMs: ms(g.At), Tokens: g.Tokens})
	}
	if d.Registers == nil {
		d.Registers = []coordinator.RegisterState{}
	}
	if l := r.Lin; l != nil {
		d.Lin = &ClusterLinDoc{Result: l.Result, Operations: l.Operations, CheckMs: ms(l.Took), SliceName: l.SliceName,
			SliceOps: l.SliceOps, SliceOpen: l.SliceOpen, Slice: l.SliceLines}
	}
	return d
}

// ClusterJSON writes the run as one JSON document.
func ClusterJSON(w io.Writer, c Cluster) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(NewClusterDoc(c))
}
