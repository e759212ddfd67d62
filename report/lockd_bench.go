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
	Machine machine.Info       `json:"machine"`
}

// WriteLockdBench renders the table of pairs per second.
func WriteLockdBench(w io.Writer, b LockdBench) error {
	fmt.Fprintf(w, "lock service throughput: %s\n\n", b.Where)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tPAIRS/S\tPAIRS\tACQUIRE P50\tACQUIRE P99\tRETRIES")
	for _, r := range b.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, rate(r.PairsPerSec), count(r.Pairs), dur(r.P50), dur(r.P99), count(r.Retries))
	}
	tw.Flush()
	fmt.Fprintf(w, "\none pair = acquire + release, each client on its own connection; %s\n", b.Machine)
	return nil
}
