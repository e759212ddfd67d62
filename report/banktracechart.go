package report

import (
	"fmt"
	"image/color"
	"io"
	"sort"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"mplock/coordinator"
)

// Trace chart geometry.
const (
	traceWidth    = 11 * vg.Inch
	traceLane     = 0.45 * vg.Inch
	traceMinPanel = 2.2 * vg.Inch
	traceMaxLanes = 8  // workers drawn per run; the others are left out
	traceMaxOps   = 24 // operations drawn around the moment shown, at most
	traceLegend   = 2.4 * vg.Inch
)

var (
	lostRed       = color.RGBA{0xd0, 0x10, 0x10, 0xff}
	overwriteBlue = color.RGBA{0x00, 0x72, 0xb2, 0xff}
	traceGrey     = color.RGBA{0x55, 0x55, 0x55, 0xff}
)

// BankTraceChart draws the runs' traces as SVG, one panel per traced run:
// a lane per worker, each operation a bar from its read (circle) to its
// write (triangle), the events placed in the order they happened (their
// times under them). For the unlocked run it shows the lost update the
// report tells, the overwritten write in red; for each locked run, as many
// of its operations where the lock changed hands, one at a time. It
// returns ErrNoData when no run was traced.
func BankTraceChart(w io.Writer, b Bank) error {
	var plots [][]*plot.Plot
	var legends []plot.Legend
	var height vg.Length
	window := 0
	for _, r := range b.Runs {
		if r.Trace != nil && r.Trace.Lost != nil && !r.Kind.Excludes() {
			window = max(window, len(opsAround(r.Trace, r.Trace.Lost)))
		}
	}
	window = max(window, 12)
	for _, r := range b.Runs {
		if r.Trace == nil {
			continue
		}
		p, leg, lanes, err := tracePlot(r, window)
		if err != nil {
			return err
		}
		plots = append(plots, []*plot.Plot{p})
		legends = append(legends, leg)
		height += max(traceMinPanel, traceLane*vg.Length(lanes)+1.4*vg.Inch)
	}
	if len(plots) == 0 {
		return ErrNoData
	}
	canvas := vgsvg.New(traceWidth, height)
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Inch / 5, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8,
		PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	// The legends have a column of their own, right of the panels, clear
	// of the data and of the titles.
	canvases := plot.Align(plots, tiles, draw.Crop(dc, 0, -traceLegend, 0, 0))
	for j, row := range plots {
		c := canvases[j][0]
		row[0].Draw(c)
		legends[j].Draw(draw.Canvas{Canvas: dc, Rectangle: vg.Rectangle{
			Min: vg.Point{X: c.Max.X + vg.Inch/8, Y: c.Min.Y},
			Max: vg.Point{X: dc.Max.X, Y: c.Max.Y - vg.Inch/3},
		}})
	}
	_, err := canvas.WriteTo(w)
	return err
}

// opsAround returns the traced operations to draw around a lost update:
// those that overlap its time, from the overwriting read to the overwriting
// write, at most traceMaxOps of them, the two that matter always.
func opsAround(tr *coordinator.BankTrace, lu *coordinator.LostUpdate) []coordinator.TraceOp {
	from, to := min(lu.By.Read, lu.Overwritten.Read), lu.By.Wrote
	var in []coordinator.TraceOp
	for _, ops := range tr.Workers {
		for _, op := range ops {
			if op.Wrote >= from && op.Read <= to {
				in = append(in, op)
			}
		}
	}
	if len(in) <= traceMaxOps {
		return in
	}
	// Too many to read: keep the last ones before the overwriting write.
	sort.Slice(in, func(i, j int) bool { return in[i].Wrote < in[j].Wrote })
	keep := []coordinator.TraceOp{}
	for _, op := range in[len(in)-traceMaxOps:] {
		if !sameOp(op, lu.By) {
			keep = append(keep, op)
		}
	}
	return append(keep, lu.By)
}

func sameOp(a, b coordinator.TraceOp) bool { return a.Slot == b.Slot && a.Read == b.Read }

// handoffOps returns n traced operations, all workers together, around
// the last time the lock changed hands before the traces froze (or the
// end): operations of several workers, one after another.
func handoffOps(tr *coordinator.BankTrace, n int) []coordinator.TraceOp {
	var all []coordinator.TraceOp
	for _, ops := range tr.Workers {
		for _, op := range ops {
			if tr.Frozen < 0 || op.Wrote <= tr.Frozen {
				all = append(all, op)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Read < all[j].Read })
	at := len(all)
	for i := len(all) - 1; i > 0; i-- {
		if all[i].Slot != all[i-1].Slot {
			at = i
			break
		}
	}
	from := max(0, min(at-n/2, len(all)-n))
	return all[from:min(len(all), from+n)]
}

// event is a read or a write of a drawn operation.
type event struct {
	at    time.Duration
	op    int // index in the drawn operations
	write bool
}

// tracePlot draws one run's panel, and returns its legend and how many
// lanes it has.
func tracePlot(r *coordinator.BankResult, window int) (*plot.Plot, plot.Legend, int, error) {
	p := plot.New()
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	lu := r.Trace.Lost
	var ops []coordinator.TraceOp
	switch {
	case lu != nil:
		ops = opsAround(r.Trace, lu)
		p.Title.Text = fmt.Sprintf("%s: W%d's write of %s (v%d), in red, is lost: W%d had read before it, and wrote over it",
			r.Kind, lu.Overwritten.Slot, count(lu.Overwritten.WroteBalance), lu.Overwritten.WroteVersion, lu.By.Slot)
	case r.Kind.Excludes():
		ops = handoffOps(r.Trace, window)
		p.Title.Text = fmt.Sprintf("%s: the lock changing hands: one operation at a time, each reading what the last wrote", r.Kind)
	default:
		ops = handoffOps(r.Trace, window)
		p.Title.Text = fmt.Sprintf("%s: the last operations the workers made together", r.Kind)
	}
	lanes := map[int]bool{}
	for _, op := range ops {
		lanes[op.Slot] = true
	}
	var slots []int
	for s := range lanes {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	if len(slots) > traceMaxLanes {
		slots = slots[:traceMaxLanes]
	}
	lane := map[int]int{}
	var yTicks plot.ConstantTicks
	for i, s := range slots {
		lane[s] = len(slots) - 1 - i // W0 on top
		pid := 0
		if s < len(r.Procs) {
			pid = r.Procs[s].Pid
		}
		yTicks = append(yTicks, plot.Tick{Value: float64(lane[s]), Label: fmt.Sprintf("W%d (pid %d)", s, pid)})
	}
	p.Y.Tick.Marker = yTicks
	p.Y.Min, p.Y.Max = -0.6, float64(len(slots))-0.4

	// Events in the order they happened, one step apart, so that an
	// interleaving stays readable whether it took 2µs or 2ms.
	var events []event
	for i, op := range ops {
		if _, ok := lane[op.Slot]; ok {
			events = append(events, event{op.Read, i, false}, event{op.Wrote, i, true})
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].at < events[j].at })
	pos := map[event]float64{}
	var times []time.Duration
	for i, e := range events {
		pos[e] = float64(i)
		times = append(times, e.at)
	}
	// Label the key events (the lost update's), the first and the last,
	// and others at even steps, none closer than about 0.75in to another.
	minGap := max(1, (len(events)*3+31)/32)
	isKey := func(e event) bool {
		return lu != nil && (sameOp(ops[e.op], lu.Overwritten) || sameOp(ops[e.op], lu.By))
	}
	var candidates []int
	for i, e := range events {
		if isKey(e) {
			candidates = append(candidates, i)
		}
	}
	candidates = append(candidates, 0, len(events)-1)
	for i := range events {
		if i%minGap == 0 {
			candidates = append(candidates, i)
		}
	}
	labelled := map[int]bool{}
	for _, c := range candidates {
		free := true
		for l := range labelled {
			if l != c && l > c-minGap && l < c+minGap {
				free = false
			}
		}
		if free {
			labelled[c] = true
		}
	}
	var shown []time.Duration
	for i := range labelled {
		shown = append(shown, events[i].at)
	}
	tf := msFormat(shown...)
	var xTicks plot.ConstantTicks
	for i, e := range events {
		t := plot.Tick{Value: float64(i)}
		if labelled[i] {
			t.Label = strings.TrimSuffix(tf(e.at), " ms")
		}
		xTicks = append(xTicks, t)
	}
	p.X.Tick.Marker = xTicks
	p.X.Min, p.X.Max = -0.8, float64(len(events))-0.2
	p.X.Label.Text = "reads and writes in the order they happened (ms since the run's start)"
	p.Add(plotter.NewGrid())

	var reads, writes, lost, overwriting plotter.XYs
	for i, op := range ops {
		y, ok := lane[op.Slot]
		if !ok {
			continue
		}
		x0, x1 := pos[event{op.Read, i, false}], pos[event{op.Wrote, i, true}]
		bar, err := plotter.NewLine(plotter.XYs{{X: x0, Y: float64(y)}, {X: x1, Y: float64(y)}})
		if err != nil {
			return nil, leg, 0, err
		}
		bar.Color, bar.Width = traceGrey, vg.Points(2)
		p.Add(bar)
		reads = append(reads, plotter.XY{X: x0, Y: float64(y)})
		switch {
		case lu != nil && sameOp(op, lu.Overwritten):
			lost = append(lost, plotter.XY{X: x1, Y: float64(y)})
		case lu != nil && sameOp(op, lu.By):
			overwriting = append(overwriting, plotter.XY{X: x1, Y: float64(y)})
		default:
			writes = append(writes, plotter.XY{X: x1, Y: float64(y)})
		}
	}
	for _, m := range []struct {
		pts    plotter.XYs
		shape  draw.GlyphDrawer
		col    color.Color
		radius vg.Length
		name   string
	}{
		{reads, draw.CircleGlyph{}, color.Black, vg.Points(3), "read the balance"},
		{writes, draw.TriangleGlyph{}, color.Black, vg.Points(3.5), "wrote it"},
		{overwriting, draw.TriangleGlyph{}, overwriteBlue, vg.Points(5), "wrote over the red one"},
		{lost, draw.TriangleGlyph{}, lostRed, vg.Points(6), "the write overwritten: lost"},
	} {
		if len(m.pts) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(m.pts)
		if err != nil {
			return nil, leg, 0, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Shape: m.shape, Color: m.col, Radius: m.radius}
		p.Add(sc)
		leg.Add(m.name, sc)
	}
	return p, leg, len(slots), nil
}

// msf is d in milliseconds, for an axis.
func msf(d time.Duration) float64 { return float64(d) / 1e6 }
