package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"mplock/machine"
)

// LockdSoak is `mplock bench lockd --soak`'s result: the server's memory
// over time while its clients work. Its JSON form is the --json document.
type LockdSoak struct {
	Where   string       `json:"where"`
	Clients int          `json:"clients"`
	TTL     float64      `json:"ttl_seconds"`
	Samples []SoakSample `json:"samples"`
	Machine machine.Info `json:"machine"`
}

// SoakSample is one look at the server: pairs per second since the last
// look, its resident set (/proc/PID/status VmRSS), and what its DEBUG
// request reports after a garbage collection.
type SoakSample struct {
	Elapsed     time.Duration `json:"elapsed_ns"`
	PairsPerSec float64       `json:"pairs_per_second"`
	Pairs       int64         `json:"pairs"`
	RSS         uint64        `json:"rss_bytes"`
	HeapLive    uint64        `json:"heap_live_bytes"`
	HeapTotal   uint64        `json:"heap_total_bytes"`
	Goroutines  uint64        `json:"goroutines"`
	Sessions    uint64        `json:"sessions"`
	Locks       uint64        `json:"locks"`
	Deadlines   uint64        `json:"deadlines"`
}

// WriteLockdSoak renders the samples as a table, then the range of each.
func WriteLockdSoak(w io.Writer, s LockdSoak) error {
	fmt.Fprintf(w, "lock server memory under load: %s; %d clients, lease %vs\n\n", s.Where, s.Clients, s.TTL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TIME\tPAIRS/S\tPAIRS\tRSS\tHEAP LIVE\tHEAP TOTAL\tGOROUTINES\tLOCKS\tDEADLINES\t")
	for _, x := range s.Samples {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t\n", x.Elapsed.Round(time.Second), rate(x.PairsPerSec), count(x.Pairs),
			mib(x.RSS), mib(x.HeapLive), mib(x.HeapTotal), x.Goroutines, x.Locks, x.Deadlines)
	}
	tw.Flush()
	if n := len(s.Samples); n > 0 {
		lo, hi := s.Samples[0], s.Samples[0]
		for _, x := range s.Samples {
			lo.RSS, hi.RSS = min(lo.RSS, x.RSS), max(hi.RSS, x.RSS)
			lo.HeapLive, hi.HeapLive = min(lo.HeapLive, x.HeapLive), max(hi.HeapLive, x.HeapLive)
		}
		fmt.Fprintf(w, "\nRSS %s to %s, heap in use %s to %s over %s pairs; %s\n", mib(lo.RSS), mib(hi.RSS),
			mib(lo.HeapLive), mib(hi.HeapLive), count(s.Samples[n-1].Pairs), s.Machine)
	}
	return nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
