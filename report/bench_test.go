package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"html"
	"image/png"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/perf/benchfmt"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"

	"mplock/coordinator"
	"mplock/lock"
	"mplock/machine"
	"mplock/worker"
)

// testBench is a small finished matrix: sem and atomic at 1 and 2 workers,
// hold 0 and 1us, two repeats each, with made-up but plausible figures.
func testBench(t *testing.T) Bench {
	t.Helper()
	return testBenchOf(t, []lock.Kind{lock.Sem, lock.Atomic}, []int{1, 2})
}

// testBenchOf is testBench with other kinds and worker counts.
func testBenchOf(t *testing.T, kinds []lock.Kind, workers []int) Bench {
	t.Helper()
	plan := coordinator.BenchPlan{
		Kinds: kinds, Workers: workers,
		Holds: []time.Duration{0, time.Microsecond}, Repeat: 2,
	}
	if err := plan.Validate(); err != nil {
		t.Fatal(err)
	}
	res := &coordinator.BenchResult{Plan: plan, Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Elapsed: 3 * time.Second}
	for ci, c := range plan.Cells() {
		cr := &coordinator.BenchCellResult{Cell: c}
		for rep := range 2 {
			ops := int64(1_000_000 * (ci + 1) * (rep + 1))
			r := &coordinator.BankResult{
				Kind: c.Kind, Workers: c.Workers, Hold: c.Hold, Ops: ops, Deposits: ops, Duration: 200 * time.Millisecond,
				Wall: 200 * time.Millisecond, OpsPerSecond: float64(ops) * 5, Consistent: true,
				Handoffs: ops / 100, MaxRun: 1000 + int64(ci), Fairness: 0.99, CPUPerOp: 40,
				Procs: []coordinator.ProcResult{{Slot: 0, Pid: 100 + ci, Ops: ops, Deposits: ops, CPU: 200 * time.Millisecond, Exit: "exit 0"}},
			}
			if !c.Kind.LockFree() {
				r.Latency = worker.NewLatencyHistogram()
				for v := int64(40); v < 140; v++ {
					r.Latency.RecordValue(v * int64(rep+1))
				}
			}
			cr.Runs = append(cr.Runs, r)
			cr.Background = append(cr.Background, 0.05)
			cr.Steal = append(cr.Steal, 0)
		}
		cr.Summarize()
		res.Cells = append(res.Cells, cr)
	}
	m := machine.Info{CPUModel: "Test CPU @ 1GHz", CPUs: 2, GOMAXPROCS: 2, Kernel: "Linux 6.1.0", Arch: "amd64",
		Governor: "menu", IdleDriver: "none", Hypervisor: "KVM", Go: "go1.26", Version: "v0.1.0 (abc)"}
	return Bench{Machine: m, Result: res}
}

// TestBenchGoParses reads the gobench output back with benchstat's own
// parser: every run is one result with the right name, iterations and
// units, the machine context is in the configuration, and nothing is a
// syntax error.
func TestBenchGoParses(t *testing.T) {
	b := testBench(t)
	var buf bytes.Buffer
	if err := BenchGo(&buf, b); err != nil {
		t.Fatal(err)
	}
	r := benchfmt.NewReader(&buf, "gobench")
	var results []*benchfmt.Result
	for r.Scan() {
		switch rec := r.Result().(type) {
		case *benchfmt.SyntaxError:
			t.Errorf("syntax error: %v", rec)
		case *benchfmt.Result:
			results = append(results, rec.Clone())
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if want := b.Result.Runs(); len(results) != want {
		t.Fatalf("%d results, want one per run (%d)", len(results), want)
	}
	if got := r.Units().GetBetter("ops/s"); got != 1 {
		t.Errorf("ops/s better = %d, want higher (+1)", got)
	}
	i := 0
	for _, c := range b.Result.Cells {
		for _, run := range c.Runs {
			res := results[i]
			i++
			if got, want := string(res.Name.Full()), "Bank/"+c.Cell.String(); got != want {
				t.Errorf("name %q, want %q", got, want)
			}
			base, parts := res.Name.Parts()
			if string(base) != "Bank" || len(parts) != 3 || string(parts[0]) != "/kind="+c.Cell.Kind.String() {
				t.Errorf("name parts %q %q: want Bank and kind, workers, hold", base, parts)
			}
			if res.Iters != int(run.Ops) {
				t.Errorf("%s: iterations %d, want the run's ops %d", res.Name.Full(), res.Iters, run.Ops)
			}
			ops, ok := res.Value("ops/s")
			if !ok || ops != run.OpsPerSecond {
				t.Errorf("%s: ops/s %v (%v), want %v", res.Name.Full(), ops, ok, run.OpsPerSecond)
			}
			nsop, _ := res.Value("sec/op") // benchfmt tidies ns/op into sec/op
			if want := run.Wall.Seconds() / float64(run.Ops); nsop < want*0.999 || nsop > want*1.001 {
				t.Errorf("%s: sec/op %v, want %v", res.Name.Full(), nsop, want)
			}
			_, hasP99 := res.Value("p99-sec") // tidied from p99-ns
			if hasP99 != !c.Cell.Kind.LockFree() {
				t.Errorf("%s: p99-ns present %v, want %v", res.Name.Full(), hasP99, !c.Cell.Kind.LockFree())
			}
			for key, want := range map[string]string{
				"cpu": "Test CPU @ 1GHz", "kernel": "Linux 6.1.0", "cpuidle-governor": "menu",
				"mplock-version": "v0.1.0 (abc)", "gomaxprocs": "2", "cpus": "2",
			} {
				if got := res.GetConfig(key); got != want {
					t.Errorf("config %s = %q, want %q", key, got, want)
				}
			}
		}
	}
}

// TestBenchCSVColumns checks the header against BenchCSVHeader and
// BENCHMARKS.md (every column documented), and each row's shape.
func TestBenchCSVColumns(t *testing.T) {
	b := testBench(t)
	var buf bytes.Buffer
	if err := BenchCSV(&buf, b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(BenchCSVHeader, ",") {
		t.Fatalf("header %v, want %v", rows[0], BenchCSVHeader)
	}
	if len(rows)-1 != len(b.Result.Cells) {
		t.Fatalf("%d rows, want one per cell (%d)", len(rows)-1, len(b.Result.Cells))
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, row := range rows[1:] {
		c := b.Result.Cells[i]
		if row[col["name"]] != c.Cell.String() || row[col["lock"]] != c.Cell.Kind.String() {
			t.Errorf("row %d: name %q lock %q, want %q %q", i, row[col["name"]], row[col["lock"]], c.Cell, c.Cell.Kind)
		}
		med, err := strconv.ParseFloat(row[col["ops_per_second"]], 64)
		if err != nil || med != c.OpsPerSecond.Median {
			t.Errorf("row %d: ops_per_second %q, want %v", i, row[col["ops_per_second"]], c.OpsPerSecond.Median)
		}
		if p99 := row[col["acquire_p99_ns"]]; (p99 == "") != c.Cell.Kind.LockFree() {
			t.Errorf("row %d (%s): acquire_p99_ns %q", i, c.Cell.Kind, p99)
		}
		if row[col["cpuidle_governor"]] != "menu" || row[col["mplock_version"]] != "v0.1.0 (abc)" {
			t.Errorf("row %d: machine columns missing: %v", i, row)
		}
	}

	doc, err := os.ReadFile("../BENCHMARKS.md")
	if err != nil {
		t.Fatalf("the CSV columns are documented in BENCHMARKS.md: %v", err)
	}
	for _, h := range BenchCSVHeader {
		if !regexp.MustCompile("(?m)^\\| `" + h + "` \\|").Match(doc) {
			t.Errorf("BENCHMARKS.md does not document CSV column %q (a table row starting | `%s` |)", h, h)
		}
	}
}

// TestBenchJSONRoundTrip decodes the JSON document and encodes it again:
// nothing is lost or renamed on the way.
func TestBenchJSONRoundTrip(t *testing.T) {
	b := testBench(t)
	var first bytes.Buffer
	if err := BenchJSON(&first, b); err != nil {
		t.Fatal(err)
	}
	var doc BenchDoc
	dec := json.NewDecoder(bytes.NewReader(first.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	enc := json.NewEncoder(&second)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("JSON changed on a round trip:\n%s\nvs\n%s", first.String(), second.String())
	}
	if len(doc.Cells) != len(b.Result.Cells) || len(doc.Cells[0].Runs) != 2 {
		t.Fatalf("%d cells, first with %d runs", len(doc.Cells), len(doc.Cells[0].Runs))
	}
	c := doc.Cells[0]
	if c.Name != "kind=sem/workers=1/hold=0" || c.AcquireNs == nil || c.AcquireNs.P99 == 0 || c.OpsPerSecond.Median == 0 {
		t.Errorf("first cell %+v", c)
	}
	if doc.Machine.Governor != "menu" || doc.Machine.Version != "v0.1.0 (abc)" || doc.Plan.Repeat != 2 {
		t.Errorf("machine or plan missing: %+v %+v", doc.Machine, doc.Plan)
	}
	for _, c := range doc.Cells {
		if (c.AcquireNs == nil) != (c.Lock == "atomic") {
			t.Errorf("%s: acquire_ns %v", c.Name, c.AcquireNs)
		}
	}
}

func TestBenchText(t *testing.T) {
	b := testBench(t)
	var buf bytes.Buffer
	if err := BenchText(&buf, b); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"KIND", "HOLD", "sem", "atomic", "1us", "Test CPU @ 1GHz", "cpuidle menu", "mplock v0.1.0 (abc)", "the machine was quiet"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\nsem "); n != 4 {
		t.Errorf("%d sem rows, want 4:\n%s", n, out)
	}
	if strings.Contains(out, "Interrupted") {
		t.Errorf("a finished matrix says it was interrupted:\n%s", out)
	}

	b.Result.Interrupted = true
	b.Result.Cells = b.Result.Cells[:3]
	for _, c := range b.Result.Cells {
		c.Background = []float64{0.9, 1.1}
		c.Summarize()
	}
	buf.Reset()
	BenchText(&buf, b)
	if !strings.Contains(buf.String(), "Interrupted after 6 of 16 measured runs") {
		t.Errorf("interrupted table does not say what finished:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "WARNING: other processes kept up to 1.00 CPUs busy") {
		t.Errorf("busy machine not flagged:\n%s", buf.String())
	}
}

func TestBenchChart(t *testing.T) {
	b := testBench(t)
	var svg bytes.Buffer
	if err := BenchChart(&svg, b, SVG); err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg.Bytes()))
	var texts strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts.Write(cd)
		}
	}
	for _, want := range []string{"sem", "atomic", "Throughput (hold 0)", "Throughput (hold 1us)", "Test CPU @ 1GHz"} {
		if !strings.Contains(texts.String(), want) {
			t.Errorf("SVG text lacks %q", want)
		}
	}

	var pngBuf bytes.Buffer
	if err := BenchChart(&pngBuf, b, PNG); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&pngBuf)
	if err != nil {
		t.Fatalf("PNG does not decode: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 600 || r.Dy() < 600 {
		t.Errorf("PNG is %v, want a two-row chart", r)
	}

	b.Result.Cells = nil
	if err := BenchChart(io.Discard, b, SVG); !errors.Is(err, ErrNoData) {
		t.Errorf("empty matrix: %v, want ErrNoData", err)
	}
}

// svgText is one text of an SVG that gonum's vgsvg wrote, with its box on
// the canvas (y up), measured with the font gonum laid it out with.
type svgText struct {
	s    string
	x, y [2]float64 // left, right; bottom, top
}

var svgTextRE = regexp.MustCompile(`(?s)<text x="([-0-9.e]+)" y="([-0-9.e]+)"[^>]*font-size:([0-9.]+)px[^>]*>([^<]*)</text>`)

func svgTexts(t *testing.T, svg string) []svgText {
	t.Helper()
	var out []svgText
	for _, m := range svgTextRE.FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		size, _ := strconv.ParseFloat(m[3], 64)
		s := html.UnescapeString(m[4])
		f := plot.DefaultFont
		f.Size = vg.Points(size)
		face := font.DefaultCache.Lookup(f, f.Size)
		ext := face.Extents()
		// vgsvg flips each text back: its baseline is at canvas height -y.
		base := -y
		out = append(out, svgText{s: s, x: [2]float64{x, x + float64(face.Width(s))},
			y: [2]float64{base - float64(ext.Descent), base + float64(ext.Ascent)}})
	}
	if len(out) == 0 {
		t.Fatal("no text found in the SVG")
	}
	return out
}

// sameBand reports whether two texts, grown by margin, share a line: their
// heights overlap, wherever they are across.
func sameBand(a, b svgText, margin float64) bool {
	return a.y[0]-margin < b.y[1] && b.y[0]-margin < a.y[1]
}

// TestBenchChartLegendClearOfTitles: no legend entry shares a line with a
// panel's title, give or take 4pt: the titles stand alone above the
// panels. (The legend sat in each panel's top corner, raised into the
// titles' line beside the latency panel's long title.)
func TestBenchChartLegendClearOfTitles(t *testing.T) {
	// mplock bench's default: every kind but none.
	b := testBenchOf(t, lock.Kinds()[1:], []int{1, 2, 4})
	var svg bytes.Buffer
	if err := BenchChart(&svg, b, SVG); err != nil {
		t.Fatal(err)
	}
	texts := svgTexts(t, svg.String())
	kinds := map[string]bool{}
	for _, k := range lock.Kinds() {
		kinds[k.String()] = true
	}
	var titles, entries []svgText
	for _, tx := range texts {
		switch {
		case strings.HasPrefix(tx.s, "Throughput (") || strings.HasPrefix(tx.s, "Acquire latency"):
			titles = append(titles, tx)
		case kinds[tx.s]:
			entries = append(entries, tx)
		}
	}
	if len(titles) == 0 || len(entries) == 0 {
		t.Fatalf("titles %v, legend entries %v", titles, entries)
	}
	for _, e := range entries {
		for _, ti := range titles {
			if sameBand(e, ti, 4) {
				t.Errorf("legend entry %q (%v, %v) is on the line of title %q (%v, %v)", e.s, e.x, e.y, ti.s, ti.x, ti.y)
			}
		}
	}
}

// TestBenchVerdict: after the table, which lock was fastest and why, the
// slowest and what it pays for, the lock-free bound, and the regime the
// workers ran in, from the cells' own figures.
func TestBenchVerdict(t *testing.T) {
	b := testBenchOf(t, []lock.Kind{lock.Flock, lock.Sem, lock.Atomic}, []int{1, 2})
	v := strings.Join(BenchVerdict(b), "\n")
	for _, want := range []string{
		"Fastest lock: sem, at every worker count (",
		"Why: sem takes a free lock with one compare-and-swap",
		"Slowest: flock with 1 worker",
		"a system call into the kernel's file lock table",
		"The bound: atomic, one atomic add and no lock at all, did",
		// The fixture's runs kept 1.00 CPU busy with 2 workers: turns.
		"Regime: in every run with 2 or more workers, they kept fewer CPUs busy than they could use (1.00 of up to 2)",
		"--pin binds each worker to its own CPU",
	} {
		if !strings.Contains(v, want) {
			t.Errorf("verdict lacks %q:\n%s", want, v)
		}
	}
	var out bytes.Buffer
	if err := BenchText(&out, b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\nFastest lock: sem") {
		t.Errorf("the table is not followed by the verdict:\n%s", out.String())
	}
	out.Reset()
	if err := BenchJSON(&out, b); err != nil {
		t.Fatal(err)
	}
	var doc BenchDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Verdict) < 4 {
		t.Errorf("JSON verdict %q (%v)", doc.Verdict, err)
	}
}
