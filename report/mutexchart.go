package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"mplock/dmutex"
)

// algColors give each algorithm one colour in every chart.
var algColors = []color.Color{
	color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
	color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255},
	color.RGBA{227, 119, 194, 255}, color.RGBA{127, 127, 127, 255}, color.RGBA{188, 189, 34, 255},
	color.RGBA{23, 190, 207, 255},
}

// MutexChart draws messages per entry against the number of processes, one
// colour per algorithm: what the runs measured (solid, with points) and
// what the theory gives at heavy load, as the cost scales with N (dashed;
// bars span a range). The table beside it compares each run with the
// theory for its own load.
// The y axis is logarithmic: the algorithms differ by an order of
// magnitude. format is SVG or PNG.
func MutexChart(w io.Writer, m Mutex, format ChartFormat) error {
	runs := m.Runs
	if len(runs) == 0 {
		return ErrNoData
	}
	p := plot.New()
	p.Title.Text = "Messages per entry against processes: measured (solid), theory at heavy load (dashed)"
	p.X.Label.Text = "processes"
	p.Y.Label.Text = "messages per entry"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{label: func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }}
	p.Legend.Top, p.Legend.Left = true, true
	var ticks plot.ConstantTicks
	var sizes []int
	var algs []dmutex.Algorithm
	for _, r := range runs {
		if !slices.Contains(sizes, r.Procs) {
			sizes = append(sizes, r.Procs)
		}
		if !slices.Contains(algs, r.Algorithm) {
			algs = append(algs, r.Algorithm)
		}
	}
	slices.Sort(sizes)
	for _, n := range sizes {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
	}
	p.X.Tick.Marker = ticks
	ymin, ymax := math.Inf(1), 0.0
	for i, a := range algs {
		var measured plotter.XYs
		var theory errPoints
		for _, n := range sizes {
			for _, r := range runs {
				if r.Algorithm != a || r.Procs != n || r.Entries == 0 {
					continue
				}
				y := math.Max(r.MessagesPerEntry, 0.1) // log axis: a run of free entries sits at the bottom
				measured = append(measured, plotter.XY{X: float64(n), Y: y})
				ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
				// The theory at heavy load: the cost as it scales with N.
				// A range that starts at 0 (Raymond's "about 4") is drawn
				// at its top.
				e := r.Cost.Heavy
				if math.IsInf(e.Hi, 1) {
					continue
				}
				lo, hi := e.Lo, e.Hi
				if lo <= 0 {
					lo = hi
				}
				mid := math.Sqrt(lo * hi)
				theory.XYs = append(theory.XYs, plotter.XY{X: float64(n), Y: mid})
				theory.YErrors = append(theory.YErrors, struct{ Low, High float64 }{mid - lo, hi - mid})
				ymin, ymax = math.Min(ymin, lo), math.Max(ymax, hi)
			}
		}
		if len(measured) == 0 {
			continue
		}
		col := algColors[i%len(algColors)]
		line, points, err := plotter.NewLinePoints(measured)
		if err != nil {
			return err
		}
		line.Color, points.Color = col, col
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(a.String(), line, points)
		if len(theory.XYs) > 0 {
			tl, err := plotter.NewLine(theory)
			if err != nil {
				return err
			}
			tl.Color = col
			tl.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			bars, err := plotter.NewYErrorBars(theory)
			if err != nil {
				return err
			}
			bars.Color = col
			p.Add(tl, bars)
		}
	}
	if ymax == 0 {
		return ErrNoData
	}
	p.Y.Min, p.Y.Max = ymin/1.5, ymax*legendRoom
	if len(sizes) == 1 {
		p.X.Min, p.X.Max = float64(sizes[0])-1, float64(sizes[0])+1
	} else {
		pad := float64(sizes[len(sizes)-1]-sizes[0]) / 20
		p.X.Min, p.X.Max = float64(sizes[0])-pad, float64(sizes[len(sizes)-1])+pad
	}
	width, height := 9*vg.Inch, 6*vg.Inch
	var canvas vg.CanvasWriterTo
	switch format {
	case SVG:
		canvas = vgsvg.New(width, height)
	case PNG:
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(chartDPI))}
	default:
		return fmt.Errorf("report: unknown chart format %q (svg, png)", format)
	}
	p.Draw(draw.New(canvas))
	_, err := canvas.WriteTo(w)
	return err
}

// legendRoom raises the log axis' top so that the legend, top right, sits
// above the lines rather than over them.
const legendRoom = 4
