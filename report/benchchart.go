package report

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"mplock/coordinator"
	"mplock/lock"
)

// ChartFormat is an image format for BenchChart.
type ChartFormat string

// The chart formats.
const (
	SVG ChartFormat = "svg"
	PNG ChartFormat = "png"
)

// Chart size: one row of panels per hold/think combination, and a column
// at the right for the legends, clear of the titles and the lines.
const (
	chartWidth     = 11 * vg.Inch
	chartRowHeight = 4.2 * vg.Inch
	chartBanner    = vg.Inch / 2
	chartLegend    = 1.1 * vg.Inch
	chartDPI       = 110
)

// ErrNoData is returned by BenchChart when no cell finished.
var ErrNoData = errors.New("report: no finished cell to chart")

// BenchChart draws the matrix with gonum/plot: for each hold/think
// combination, throughput against workers with one line per kind (median,
// with bars from the slowest to the fastest repeat), and beside it the
// acquire latency p50 (solid) and p99 (dashed) against workers. Both axes
// of both panels are logarithmic: kinds differ by orders of magnitude.
func BenchChart(w io.Writer, b Bench, format ChartFormat) error {
	res := b.Result
	if len(res.Cells) == 0 {
		return ErrNoData
	}
	type combo struct{ hold, think time.Duration }
	var combos []combo
	for _, h := range res.Plan.Holds {
		for _, t := range res.Plan.Thinks {
			combos = append(combos, combo{h, t})
		}
	}
	latency := false
	for _, c := range res.Cells {
		latency = latency || c.Latency != nil
	}
	cols := 1
	if latency {
		cols = 2
	}
	var rows [][]*plot.Plot
	var legends []plot.Legend
	for _, cb := range combos {
		var cells []*coordinator.BenchCellResult
		for _, c := range res.Cells {
			if c.Cell.Hold == cb.hold && c.Cell.Think == cb.think {
				cells = append(cells, c)
			}
		}
		if len(cells) == 0 {
			continue
		}
		where := "hold " + shortDur(cb.hold)
		if cb.think != 0 {
			where += ", think " + shortDur(cb.think)
		}
		leg := plot.NewLegend()
		leg.Top, leg.Left = true, true
		tp, err := throughputPlot(cells, res.Plan.Kinds, where, &leg)
		if err != nil {
			return err
		}
		legends = append(legends, leg)
		row := []*plot.Plot{tp}
		if latency {
			lp, err := latencyPlot(cells, res.Plan.Kinds, where)
			if err != nil {
				return err
			}
			row = append(row, lp)
		}
		rows = append(rows, row)
	}

	height := chartRowHeight*vg.Length(len(rows)) + chartBanner
	var canvas vg.CanvasWriterTo
	switch format {
	case SVG:
		canvas = vgsvg.New(chartWidth, height)
	case PNG:
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(chartWidth, height), vgimg.UseDPI(chartDPI))}
	default:
		return fmt.Errorf("report: unknown chart format %q (svg, png)", format)
	}
	tiles := draw.Tiles{
		Rows: len(rows), Cols: cols,
		PadX: vg.Inch / 3, PadY: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8,
		PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4,
	}
	dc := draw.New(canvas)
	banner := plot.New().Title.TextStyle // the default title font
	banner.Font.Size = vg.Points(11)
	banner.XAlign, banner.YAlign = draw.XCenter, draw.YTop
	text := "mplock bench: " + res.Plan.Describe() + "\n" + machineLine(b.Machine)
	dc.FillText(banner, vg.Point{X: dc.Center().X, Y: dc.Max.Y - vg.Inch/10}, text)
	dc = draw.Crop(dc, 0, 0, 0, -(banner.Height(text) + vg.Inch/5))
	canvases := plot.Align(rows, tiles, draw.Crop(dc, 0, -chartLegend, 0, 0))
	for j, row := range rows {
		for i, p := range row {
			p.Draw(canvases[j][i])
		}
		last := canvases[j][len(row)-1]
		legends[j].Draw(legendCanvas(dc, last))
	}
	_, err := canvas.WriteTo(w)
	return err
}

// legendCanvas is where a row's legend goes: right of its last panel,
// from below the panels' titles down.
func legendCanvas(dc, last draw.Canvas) draw.Canvas {
	return draw.Canvas{Canvas: dc, Rectangle: vg.Rectangle{
		Min: vg.Point{X: last.Max.X + vg.Inch/8, Y: last.Min.Y},
		Max: vg.Point{X: dc.Max.X, Y: last.Max.Y - vg.Inch/3},
	}}
}

// throughputPlot is median ops/s against workers, one line per kind, with
// bars to the slowest and fastest repeat; each kind is added to leg.
func throughputPlot(cells []*coordinator.BenchCellResult, kinds []lock.Kind, where string, leg *plot.Legend) (*plot.Plot, error) {
	p := newLogLogPlot(cells)
	p.Title.Text = "Throughput (" + where + ")"
	p.Y.Label.Text = "operations/s, all workers"
	p.Y.Tick.Marker = logTicks{label: tickRate}
	for _, k := range kinds {
		var pts errPoints
		for _, c := range cells {
			if c.Cell.Kind != k {
				continue
			}
			s := c.OpsPerSecond
			pts.XYs = append(pts.XYs, plotter.XY{X: float64(c.Cell.Workers), Y: s.Median})
			pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{s.Median - s.Min, s.Max - s.Median})
		}
		if len(pts.XYs) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return nil, err
		}
		col := kindColor(k)
		line.Color, points.Color, bars.Color = col, col, col
		points.Shape = plotutil.Shape(int(k))
		p.Add(line, points, bars)
		leg.Add(k.String(), line, points)
	}
	return p, nil
}

// latencyPlot is acquire latency p50 (solid) and p99 (dashed) against
// workers, one colour per kind (the row's legend, beside the throughput
// panel's); lock-free kinds have no line.
func latencyPlot(cells []*coordinator.BenchCellResult, kinds []lock.Kind, where string) (*plot.Plot, error) {
	p := newLogLogPlot(cells)
	p.Title.Text = "Acquire latency p50 (solid), p99 (dashed) (" + where + ")"
	p.Y.Label.Text = "time to acquire"
	p.Y.Tick.Marker = logTicks{label: tickDur}
	for _, k := range kinds {
		var p50, p99 plotter.XYs
		for _, c := range cells {
			if c.Cell.Kind != k || c.Latency == nil {
				continue
			}
			x := float64(c.Cell.Workers)
			p50 = append(p50, plotter.XY{X: x, Y: math.Max(1, float64(c.Percentile(50)))})
			p99 = append(p99, plotter.XY{X: x, Y: math.Max(1, float64(c.Percentile(99)))})
		}
		if len(p50) == 0 {
			continue
		}
		col := kindColor(k)
		l50, pts, err := plotter.NewLinePoints(p50)
		if err != nil {
			return nil, err
		}
		l99, err := plotter.NewLine(p99)
		if err != nil {
			return nil, err
		}
		l50.Color, pts.Color, l99.Color = col, col, col
		pts.Shape = plotutil.Shape(int(k))
		l99.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l50, pts, l99)
	}
	return p, nil
}

// newLogLogPlot has log axes, x ticks at the workers counts, and room
// around the data so single points and error bars stay visible.
func newLogLogPlot(cells []*coordinator.BenchCellResult) *plot.Plot {
	p := plot.New()
	p.X.Label.Text = "worker processes"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	var ticks plot.ConstantTicks
	lo, hi := math.Inf(1), 0.0
	seen := map[int]bool{}
	for _, c := range cells {
		w := c.Cell.Workers
		lo, hi = math.Min(lo, float64(w)), math.Max(hi, float64(w))
		if !seen[w] {
			seen[w] = true
			ticks = append(ticks, plot.Tick{Value: float64(w), Label: strconv.Itoa(w)})
		}
	}
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = lo/1.25, hi*1.25
	p.Add(plotter.NewGrid())
	return p
}

// kindColors gives each kind its own colour in every chart, whichever kinds
// a matrix has (Okabe and Ito's palette, told apart with colour blindness).
var kindColors = []color.RGBA{
	{0x00, 0x00, 0x00, 0xff}, // none: black
	{0xe6, 0x9f, 0x00, 0xff}, // flock: orange
	{0x56, 0xb4, 0xe9, 0xff}, // fcntl: sky blue
	{0x00, 0x9e, 0x73, 0xff}, // sem: bluish green
	{0xd5, 0x5e, 0x00, 0xff}, // sysv: vermillion
	{0xcc, 0x79, 0xa7, 0xff}, // spin: reddish purple
	{0x00, 0x72, 0xb2, 0xff}, // atomic: blue
}

func kindColor(k lock.Kind) color.Color {
	return kindColors[int(k)%len(kindColors)]
}

// errPoints is points with vertical error bars, for plotter.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// logTicks marks a log axis at 1, 2 and 5 times each power of ten, labelled
// by label, with unlabelled minor ticks between; a narrow range that holds
// fewer than two of those gets labelled ticks at its ends instead.
type logTicks struct{ label func(float64) string }

func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	var major, minor []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow10(int(e)) <= hi; e++ {
		base := math.Pow10(int(e))
		for m := 1.0; m <= 9; m++ {
			v := m * base
			if v < lo || v > hi {
				continue
			}
			if m == 1 || m == 2 || m == 5 {
				major = append(major, plot.Tick{Value: v, Label: t.label(v)})
			} else {
				minor = append(minor, plot.Tick{Value: v})
			}
		}
	}
	if len(major) < 2 {
		major = []plot.Tick{{Value: lo, Label: t.label(lo)}, {Value: hi, Label: t.label(hi)}}
	}
	return append(major, minor...)
}

// tickRate labels a rate compactly: 500k, 2M, 1.5G.
func tickRate(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if v >= u.div {
			return strconv.FormatFloat(v/u.div, 'g', 3, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// tickDur labels nanoseconds compactly: 50ns, 2µs, 1ms.
func tickDur(v float64) string {
	for _, u := range []struct {
		div    float64
		suffix string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}} {
		if v >= u.div {
			return strconv.FormatFloat(v/u.div, 'g', 3, 64) + u.suffix
		}
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + "ns"
}
