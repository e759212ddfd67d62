package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"mplock/coordinator"
	"mplock/worker"
)

// Cluster is a cluster run's result with the exit code the command
// returns for it.
type Cluster struct {
	Result   *coordinator.ClusterResult
	ExitCode int
}

// ClusterHeader says what the run is about to do.
func ClusterHeader(w io.Writer, p coordinator.ClusterPlan) error {
	p.Defaults()
	faults := "no faults"
	if len(p.Faults) > 0 {
		var names []string
		for _, f := range p.Faults {
			names = append(names, f.String())
		}
		faults = fmt.Sprintf("faults %s every %v from %v", strings.Join(names, ","), p.FaultEvery.Round(time.Millisecond), p.FirstFault.Round(time.Millisecond))
	}
	fencing := "on"
	if !p.Fencing {
		fencing = "OFF"
	}
	_, err := fmt.Fprintf(w, "mplock cluster: %d nodes (mplock serve, raft), %d clients, %v; %s; fencing %s; checks %s\n"+
		"  election timeout %v, session TTL %v; every client has a UUID and works on %s\n",
		p.Nodes, p.Clients, p.Duration, faults, fencing, p.Consistency, p.ElectionTimeout, p.SessionTTL, names(p.Names))
	if err != nil {
		return err
	}
	for _, k := range coordinator.AllClusterFaults {
		if d, ok := p.Unscheduled()[k]; ok {
			first := p.FirstFault + time.Duration(slices.Index(p.Faults, k))*p.FaultEvery
			why := ""
			if k == coordinator.PauseClient {
				why = " (two session TTLs, and time for another client to take the lock)"
			}
			if _, err := fmt.Fprintf(w, "  no %s fault: it lasts %v%s and would not end before the run does: give a --duration of at least %v\n",
				k, d.Round(time.Millisecond), why, (first + d + time.Second - 1).Truncate(time.Second)); err != nil {
				return err
			}
		}
	}
	return nil
}

func names(n int) string {
	var out []string
	for i := range n {
		out = append(out, coordinator.ClusterName(i))
	}
	return strings.Join(out, ", ")
}

// short is a client's UUID as the narrative says it: its first 4 digits.
func shortID(id string) string {
	if len(id) > 4 {
		return id[:4]
	}
	return id
}

// ClusterEventLine is one line of the narrative, "" for events it does
// not tell (accepted register writes: the report counts them).
func ClusterEventLine(e coordinator.ClusterEvent) string {
	t := ClusterEventText(e)
	if t == "" {
		return ""
	}
	at := offset(e.At)
	if e.Setup {
		at = "setup"
	}
	return fmt.Sprintf("  %8s  %s", at, t)
}

// ClusterEventText tells an event in the seed's words.
func ClusterEventText(e coordinator.ClusterEvent) string {
	switch e.Kind {
	case coordinator.ClusterNodeUp:
		return fmt.Sprintf("%s started (pid %d), clients at %s", e.Node, e.PID, e.Text)
	case coordinator.ClusterLeader:
		if e.Took > 0 {
			return fmt.Sprintf("%s elected leader in %s (term %d)", e.Node, durText(e.Took), e.Term)
		}
		return fmt.Sprintf("%s is the leader (term %d)", e.Node, e.Term)
	case coordinator.ClusterFaultStart:
		return faultText(e)
	case coordinator.ClusterFaultEnd:
		switch e.Fault {
		case coordinator.PauseLeader:
			return fmt.Sprintf("%s continued (SIGCONT): a deposed leader wakes up", e.Node)
		case coordinator.Partition:
			return fmt.Sprintf("%s's links healed", e.Node)
		case coordinator.PauseClient:
			return fmt.Sprintf("client %s continued (SIGCONT), still believing it holds its lock", shortID(e.Client))
		}
	case coordinator.ClusterOp:
		return opText(e.Note)
	case coordinator.ClusterRegister:
		n := e.Note
		switch {
		case n.Refused && n.Text == "read":
			return fmt.Sprintf("register %s refused a read from %s with token %d (highest seen %d)", n.Name, shortID(n.Client), n.Token, n.Highest)
		case n.Refused:
			return fmt.Sprintf("register %s refused a write from %s with token %d (highest seen %d)", n.Name, shortID(n.Client), n.Token, n.Highest)
		case n.Lost > 0:
			return fmt.Sprintf("register %s accepted a late write from %s with token %d: %d -> %d, overwriting %s it never saw",
				n.Name, shortID(n.Client), n.Token, n.Read, n.Wrote, nOf(int(n.Lost), "update", "updates"))
		}
	case coordinator.ClusterSession:
		n := e.Note
		if n.Previous != "" {
			return fmt.Sprintf("client %s lost its session %s (%s); opened %s", shortID(e.Client), sessionOf(n.Previous), clip(n.Text), sessionOf(n.Client))
		}
		return fmt.Sprintf("client %s resumed its session at %s (%s)", shortID(e.Client), n.Server, n.Text)
	case coordinator.ClusterAbort:
		return "stopping: " + e.Text
	}
	return ""
}

func faultText(e coordinator.ClusterEvent) string {
	if e.Text != "" && e.Node == "" && e.Client == "" {
		return fmt.Sprintf("fault %s %s", e.Fault, e.Text)
	}
	switch e.Fault {
	case coordinator.KillLeader:
		return fmt.Sprintf("%s killed (SIGKILL; leader of term %d)", e.Node, e.Term)
	case coordinator.PauseLeader:
		return fmt.Sprintf("%s paused (SIGSTOP; leader of term %d) past the election timeout", e.Node, e.Term)
	case coordinator.Partition:
		return fmt.Sprintf("%s cut off from its peers (leader of term %d): every raft link silent, no FIN, no RST", e.Node, e.Term)
	case coordinator.PauseClient:
		return fmt.Sprintf("client %s paused (SIGSTOP) %s, past its session TTL", shortID(e.Client), e.Text)
	}
	return ""
}

// opText: "client 3f2a preempt file_A at n2 (follower): granted, token 41, leader n1".
func opText(n *worker.ClusterNote) string {
	who := "client " + shortID(n.Client)
	if n.Op == "expire" {
		return fmt.Sprintf("%s's session %s is gone, and its lock on %s with it", who, sessionOf(n.Client), n.Name)
	}
	at := ""
	if r := n.Reply; r != nil && r.Node != "" {
		at = " at " + r.Node
		var how []string
		if n.Op == "check" && r.Consistency != "" {
			c := string(r.Consistency)
			if r.Consistency == worker.Stale {
				c += ", " + durText(r.Contact) + " behind"
			}
			if r.Role != "" {
				how = append(how, r.Role)
			}
			how = append(how, c)
		} else if r.Role != "" {
			how = append(how, r.Role)
		}
		if len(how) > 0 {
			at += " (" + strings.Join(how, "; ") + ")"
		}
	} else if n.Server != "" {
		at = " at " + n.Server
	}
	var res string
	switch n.Outcome {
	case worker.OutcomeUnknown:
		res = "outcome unknown (" + clip(n.Err) + ")"
	case worker.OutcomeDropped:
		res = "not applied (" + clip(n.Err) + ")"
	default:
		r := n.Reply
		switch {
		case n.Op == "check" && r.Owner == "":
			res = "free"
		case n.Op == "check":
			res = "owner " + shortID(r.Owner)
		case n.Op == "preempt" && r.OK:
			res = fmt.Sprintf("granted, token %d", r.Token)
		case n.Op == "preempt":
			res = "refused (held)"
		case r.OK:
			res = "released"
		default:
			res = "refused (not the owner)"
		}
		if r.Leader != "" && r.Leader != r.Node && n.Op != "check" {
			res += ", leader " + r.Leader
		}
	}
	return fmt.Sprintf("%s %s %s%s: %s", who, n.Op, n.Name, at, res)
}

// clip shortens an error for the narrative: its first 120 characters.
func clip(s string) string {
	if r := []rune(s); len(r) > 120 {
		return string(r[:119]) + "…"
	}
	return s
}

// sessionOf is the session part of a client name: "3f2a.2".
func sessionOf(client string) string {
	if i := strings.LastIndexByte(client, '.'); i > 0 {
		return shortID(client[:i]) + client[i:]
	}
	return client
}

func durText(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// ClusterSummary writes the report after the narrative.
func ClusterSummary(w io.Writer, c Cluster) error {
	r := c.Result
	var b strings.Builder
	fmt.Fprintf(&b, "\nNodes (%v of operations):\n", r.Elapsed.Round(time.Millisecond))
	for _, n := range r.Nodes {
		terms := "never leader"
		if len(n.Terms) > 0 {
			terms = fmt.Sprintf("leader for %s in term %s", durText(n.Leader), joinUints(n.Terms))
		}
		fmt.Fprintf(&b, "  %-4s %s; applied index %d; down %s; %s; %s\n", n.ID, terms, n.Applied, durText(n.Downtime),
			nOf(len(n.PIDs), "process", "processes"), n.Exit)
	}
	b.WriteString("Clients:\n")
	for _, cl := range r.Clients {
		fmt.Fprintf(&b, "  %s  %s; %s\n", cl.ID, opsText(cl.Ops), nOf(cl.Sessions, "session", "sessions"))
	}
	if len(r.Failovers) > 0 {
		b.WriteString("Failovers:\n")
		for _, f := range r.Failovers {
			el, ok := "no new leader", "no operation completed after it"
			if f.Elected >= 0 {
				el = fmt.Sprintf("%s leader in %s (term %d)", f.NewLeader, durText(f.Elected), f.Term)
			}
			if f.FirstOK >= 0 {
				ok = "first successful preempt/release " + durText(f.FirstOK) + " after it"
			}
			fmt.Fprintf(&b, "  %8s  %s of %s: %s; %s\n", offset(f.At), f.Fault, f.Node, el, ok)
		}
	}
	fmt.Fprintf(&b, "Stale checks: %d, the largest %s behind the leader (information, never proof of ownership)\n",
		r.Stale.Count, durText(r.Stale.LargestLag))
	fmt.Fprintf(&b, "Double grants: %d\n", len(r.DoubleGrants))
	for _, d := range r.DoubleGrants {
		fmt.Fprintf(&b, "  %8s  %s granted to %s (token %d) while %s held it (token %d)\n", offset(d.At), d.Name, shortID(d.Second), d.Tokens[1], shortID(d.First), d.Tokens[0])
	}
	b.WriteString("Registers:\n")
	for _, g := range r.Registers {
		fmt.Fprintf(&b, "  %s  value %d; writes accepted %d, refused %d (stale tokens); lost updates %d\n", g.Name, g.Value, g.Accepted, g.Refused, g.Lost)
	}
	if l := r.Lin; l != nil {
		fmt.Fprintf(&b, "Linearizability (porcupine): %s, %d operations checked in %s\n", l.Result, l.Operations, durText(l.Took))
		if l.SliceName != "" {
			open := ""
			if l.SliceOpen > 0 {
				open = fmt.Sprintf(" (and %s called before their last answer, outcomes left open)", nOf(l.SliceOpen, "later one", "later ones"))
			}
			fmt.Fprintf(&b, "  the smallest failing slice: the first %d of %d operations on %s%s:\n", l.SliceOps, l.SliceOf, l.SliceName, open)
			for _, line := range l.SliceLines {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	b.WriteString("\n")
	for _, line := range ClusterVerdict(c) {
		b.WriteString(line + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func joinUints(v []uint64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ", ")
}

// opsText: "preempt 40 ok, 12 refused; release 40 ok; check 20 ok".
func opsText(ops map[string]int) string {
	byOp := map[string][]string{}
	var keys []string
	for k := range ops {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		op, outcome, _ := strings.Cut(k, " ")
		byOp[op] = append(byOp[op], fmt.Sprintf("%d %s", ops[k], outcome))
	}
	var out []string
	for _, op := range []string{"preempt", "release", "check"} {
		if len(byOp[op]) > 0 {
			out = append(out, op+" "+strings.Join(byOp[op], ", "))
		}
	}
	if len(out) == 0 {
		return "no operations"
	}
	return strings.Join(out, "; ")
}

// ClusterVerdict is the two plain-language lines that end the report.
func ClusterVerdict(c Cluster) []string {
	r := c.Result
	lost := r.LostUpdates()
	var refused uint64
	for _, g := range r.Registers {
		refused += g.Refused
	}
	switch {
	case r.Failure != "":
		return []string{"FAILED: " + strings.TrimSuffix(r.Failure, ".") + ".",
			"What happened up to then is above; nothing of the run is left behind."}
	case r.Lin != nil && r.Lin.Result == "illegal":
		return []string{fmt.Sprintf("VIOLATION: the history is not linearizable: the service gave %s an answer no single copy of the lock table could give.", r.Lin.SliceName),
			"The slice above shows how; a follower answering from its own map without the leader does this."}
	case len(r.DoubleGrants) > 0:
		return []string{fmt.Sprintf("VIOLATION: %s granted twice: two clients held it at once.", r.DoubleGrants[0].Name),
			"A lock service must never do this, whatever fails."}
	case r.Plan.Fencing && lost > 0:
		return []string{fmt.Sprintf("VIOLATION: %d register updates were lost although the register checks fencing tokens.", lost), ""}
	case !r.Plan.Fencing && lost > 0:
		return []string{fmt.Sprintf("Without fencing the registers lost %s: a client paused past its TTL wrote what it read before the pause over what the lock's next holder wrote.", nOf(int(lost), "update", "updates")),
			"The lock service did nothing wrong; only a fencing token checked by the resource stops a late write (run again without --fencing=off)."}
	}
	var held []string
	held = append(held, "no lock was granted twice")
	if r.Lin != nil {
		held = append(held, "the history is linearizable")
	}
	held = append(held, "no register update was lost")
	first := fmt.Sprintf("All held: %s, through %s.", strings.Join(held, ", "), nOf(len(r.Failovers), "failover", "failovers"))
	second := "Clients kept working at the surviving nodes; a check is information, only the fencing token proves ownership."
	if refused > 0 {
		second = fmt.Sprintf("The registers refused %s with stale tokens: fencing stopped late writers that a lock alone cannot stop.", nOf(int(refused), "access", "accesses"))
	}
	if r.Interrupted {
		first = "Interrupted: " + first
	}
	return []string{first, second}
}

// nOf is "1 update", "3 updates".
func nOf(n int, one, many string) string { return fmt.Sprintf("%d %s", n, plural(n, one, many)) }
