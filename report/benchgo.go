package report

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"strings"

	"mplock/coordinator"
)

// benchUnits are the metrics of each gobench line after ns/op, with the
// direction benchstat should read as better.
var benchUnits = []struct{ unit, better string }{
	{"ops/s", "higher"},
	{"p50-ns", "lower"},
	{"p99-ns", "lower"},
	{"max-ns", "lower"},
	{"handoffs/kop", ""},
	{"max-run", ""},
	{"cpu-ns/op", "lower"},
	{"cpus", ""},
	{"bg-cpus", ""},
}

// BenchGo writes the matrix in the Go benchmark format, one line per
// measured run, so that benchstat compares two matrices:
//
//	BenchmarkBank/kind=sem/workers=2/hold=0  1364212  146.6 ns/op  6821060 ops/s  56 p50-ns ...
//
// The iteration count is the run's operations, all workers; ns/op is wall
// time per operation (the inverse of ops/s). The latency columns are left
// out for lock-free kinds and without latency recording, and the handoff
// columns for kinds that take no lock. The machine context comes first as
// configuration lines (cpu:, kernel:, cpuidle-governor:, mplock-version:),
// which benchstat shows and can group by. bg-cpus is the CPUs other
// processes kept busy during the run: a run with a busy neighbour measures
// the neighbour too.
func BenchGo(w io.Writer, b Bench) error {
	bw := bufio.NewWriter(w)
	m := b.Machine
	config := [][2]string{
		{"goos", runtime.GOOS}, {"goarch", m.Arch}, {"pkg", "mplock"}, {"cpu", m.CPUModel},
		{"cpus", fmt.Sprint(m.CPUs)}, {"gomaxprocs", fmt.Sprint(m.GOMAXPROCS)}, {"kernel", m.Kernel},
		{"cpuidle-governor", m.Governor}, {"mplock-version", m.Version},
	}
	for _, kv := range config {
		// An empty value would delete the key; write only what is known.
		if v := oneLine(kv[1]); v != "" {
			fmt.Fprintf(bw, "%s: %s\n", kv[0], v)
		}
	}
	for _, u := range benchUnits {
		if u.better != "" {
			fmt.Fprintf(bw, "Unit %s better=%s\n", u.unit, u.better)
		}
	}
	for _, c := range b.Result.Cells {
		name := "BenchmarkBank/" + c.Cell.String()
		for i, r := range c.Runs {
			fmt.Fprintf(bw, "%s\t%d\t%.2f ns/op\t%.0f ops/s", name, r.Ops, float64(r.Wall.Nanoseconds())/float64(r.Ops), r.OpsPerSecond)
			if r.Latency != nil && r.Latency.TotalCount() > 0 {
				fmt.Fprintf(bw, "\t%d p50-ns\t%d p99-ns\t%d max-ns", int64(r.Percentile(50)), int64(r.Percentile(99)), int64(r.MaxLatency()))
			}
			if k := c.Cell.Kind; k.Excludes() && !k.LockFree() {
				fmt.Fprintf(bw, "\t%.2f handoffs/kop\t%d max-run", 1000*float64(r.Handoffs)/float64(r.Ops), r.MaxRun)
			}
			fmt.Fprintf(bw, "\t%d cpu-ns/op\t%.3f cpus", r.CPUPerOp.Nanoseconds(), coordinator.CPUsBusy(r))
			if i < len(c.Background) {
				fmt.Fprintf(bw, "\t%.3f bg-cpus", c.Background[i])
			}
			fmt.Fprintln(bw)
		}
	}
	return bw.Flush()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
