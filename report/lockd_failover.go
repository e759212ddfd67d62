package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"mplock/machine"
)

// LockdFailover is `mplock bench lockd --failover N`'s result: leaders of a
// real cluster killed one after another, and how long clients waited.
// Its JSON form is the --json document.
type LockdFailover struct {
	Where   string         `json:"where"`
	Members int            `json:"members"`
	Serve   []string       `json:"serve_args"` // the members' flags beyond their addresses and data dirs
	Kills   []FailoverKill `json:"kills"`
	Machine machine.Info   `json:"machine"`
}

// FailoverKill is one leader killed (SIGKILL) and restarted. The times
// are from the kill: Election until a survivor first named a new leader;
// AtKilled until the first LOCK asked for after the kill was granted to a
// client that was connected to the killed leader (it resumed its session
// at a survivor first); Elsewhere the same for a client connected to a
// follower. Err says why the kill has no figures.
type FailoverKill struct {
	Leader    string        `json:"leader"`
	Follower  string        `json:"follower"` // where the other client was connected
	Election  time.Duration `json:"election_ns"`
	AtKilled  time.Duration `json:"at_killed_ns"`
	Elsewhere time.Duration `json:"elsewhere_ns"`
	Err       string        `json:"error,omitempty"`
}

// Distribution is the nearest-rank percentiles of a sample.
type Distribution struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
}

// Distribute sorts a copy of xs and takes its nearest-rank percentiles
// (the p-th is the smallest value with at least p% of the sample at or
// below it: with fewer than 100 values, p99 is the largest).
func Distribute(xs []time.Duration) Distribution {
	if len(xs) == 0 {
		return Distribution{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[max((p*len(s)+99)/100, 1)-1] }
	return Distribution{N: len(s), Min: s[0], P50: rank(50), P90: rank(90), P99: rank(99), Max: s[len(s)-1]}
}

// Distributions are the three measures over the kills that have figures.
func (f LockdFailover) Distributions() (election, atKilled, elsewhere Distribution) {
	var e, a, o []time.Duration
	for _, k := range f.Kills {
		if k.Err != "" {
			continue
		}
		e, a, o = append(e, k.Election), append(a, k.AtKilled), append(o, k.Elsewhere)
	}
	return Distribute(e), Distribute(a), Distribute(o)
}

// Failed is how many kills have no figures (Err set).
func (f LockdFailover) Failed() int {
	n := 0
	for _, k := range f.Kills {
		if k.Err != "" {
			n++
		}
	}
	return n
}

// WriteLockdFailover renders every kill, then the distributions.
func WriteLockdFailover(w io.Writer, f LockdFailover, perKill bool) error {
	fmt.Fprintf(w, "failover: %d leader kills (SIGKILL, then a restart with the same data dir) of %s\n\n", len(f.Kills), f.Where)
	if perKill {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "KILL\tLEADER\tNEW LEADER KNOWN\tLOCK AT A CLIENT OF IT\tLOCK AT A CLIENT OF A FOLLOWER\t")
		for i, k := range f.Kills {
			if k.Err != "" {
				fmt.Fprintf(tw, "%d\t%s\tfailed: %s\t\t\t\n", i+1, k.Leader, k.Err)
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s (%s)\t\n", i+1, k.Leader, millis(k.Election), millis(k.AtKilled), millis(k.Elsewhere), k.Follower)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	e, a, o := f.Distributions()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "FROM THE KILL TO\tKILLS\tMIN\tP50\tP90\tP99\tMAX\t")
	for _, r := range []struct {
		what string
		d    Distribution
	}{{"a survivor names a new leader", e}, {"first LOCK, client of the killed leader", a}, {"first LOCK, client of a follower", o}} {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.what, r.d.N, millis(r.d.Min), millis(r.d.P50), millis(r.d.P90), millis(r.d.P99), millis(r.d.Max))
	}
	tw.Flush()
	if failed := f.Failed(); failed > 0 {
		fmt.Fprintf(w, "\n%d of %d kills have no figures (see above)\n", failed, len(f.Kills))
	}
	fmt.Fprintf(w, "\nPercentiles by nearest rank (below 100 kills, p99 is the largest). A client's figure is from the kill\n"+
		"to the grant of the first LOCK it asked for after the kill (each client locks and unlocks its own name\n"+
		"in a loop). Members: mplock serve %s; %s\n", strings.Join(f.Serve, " "), f.Machine)
	return nil
}

// millis renders a duration in whole milliseconds ("-" for none).
func millis(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}
