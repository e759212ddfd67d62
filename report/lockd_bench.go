package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"mplock/lockd/lockbench"
	"mplock/machine"
)

// LockdBench is `mplock bench lockd`'s result; its JSON form is the
// --json document (results: see lockbench.Result).
type LockdBench struct {
	Target  string             `json:"target"`
	Where   string             `json:"where"`
	Results []lockbench.Result `json:"results"`
	// Reads are --reads' measurements (absent without it).
	Reads   []lockbench.ReadResult `json:"reads,omitempty"`
	Warning string                 `json:"warning,omitempty"`
	Machine machine.Info           `json:"machine"`
}

// WriteLockdBench renders the table of pairs per second.
func WriteLockdBench(w io.Writer, b LockdBench) error {
	fmt.Fprintf(w, "lock service throughput: %s\n\n", b.Where)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	cluster := len(b.Results) > 0 && b.Results[0].Entry != ""
	entry := func(role, node string) string {
		if role == "" {
			return ""
		}
		return fmt.Sprintf("%s (%s)\t", role, node)
	}
	if cluster {
		fmt.Fprint(tw, "SCENARIO\tREQUESTS AT\tPAIRS/S\tPAIRS\tACQUIRE P50\tACQUIRE P99\tRETRIES\n")
	} else {
		fmt.Fprint(tw, "SCENARIO\tPAIRS/S\tPAIRS\tACQUIRE P50\tACQUIRE P99\tRETRIES\n")
	}
	for _, r := range b.Results {
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%s\n", r.Scenario, entry(r.Entry, r.Node), rate(r.PairsPerSec), count(r.Pairs), dur(r.P50), dur(r.P99), count(r.Retries))
	}
	tw.Flush()
	fmt.Fprintf(w, "\none pair = acquire + release, each client on its own connection; %s\n", b.Machine)
	if len(b.Reads) > 0 {
		fmt.Fprintf(w, "\nread latency: one client reading a name another client holds, again as soon as answered\n\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if b.Reads[0].Entry != "" {
			fmt.Fprint(tw, "READ\tANSWERED AT\tREADS/S\tP50\tP99\tMAX\n")
		} else {
			fmt.Fprint(tw, "READ\tREADS/S\tP50\tP99\tMAX\n")
		}
		for _, r := range b.Reads {
			fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\n", r.Read, entry(r.Entry, r.Node), rate(r.ReadsPerSec), dur(r.P50), dur(r.P99), dur(r.Max))
		}
		tw.Flush()
	}
	if b.Warning != "" {
		fmt.Fprintf(w, "\nWARNING: %s\n", b.Warning)
	}
	return nil
}
