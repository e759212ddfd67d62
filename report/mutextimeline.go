package report

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/shm"
)

// timelineMax bounds the bars drawn per run: beyond it the chart shows the
// start of the run only, and says so, so that the file stays small enough
// for a browser.
const timelineMax = 5000

// MutexTimeline draws one chart per run into an SVG file (PNG if the name
// ends in .png): one row per
// process, a bar wherever it held the critical section (on the shared
// monotonic clock, from the start barrier). Overlapping bars are the
// violations the safety check counted.
func MutexTimeline(file string, m Mutex) error {
	if len(m.Runs) == 0 {
		return fmt.Errorf("report: timeline: no run")
	}
	var plots [][]*plot.Plot
	height := vg.Length(0)
	for _, r := range m.Runs {
		p, err := timelinePlot(r)
		if err != nil {
			return err
		}
		plots = append(plots, []*plot.Plot{p})
		height += vg.Length(1.2+0.25*float64(r.Procs)) * vg.Inch
	}
	width := 10 * vg.Inch
	var c interface {
		vg.CanvasSizer
		io.WriterTo
	}
	if strings.EqualFold(filepath.Ext(file), ".png") {
		c = vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
	} else {
		c = vgsvg.New(width, height)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 4}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("report: timeline: %w", err)
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("report: timeline: %w", err)
	}
	return f.Close()
}

func timelinePlot(r *coordinator.MutexResult) (*plot.Plot, error) {
	p := plot.New()
	ivs := r.Intervals
	title := fmt.Sprintf("%s, %d processes: who held the critical section when", r.Algorithm.Title(), r.Procs)
	if len(ivs) > timelineMax {
		ivs = ivs[:timelineMax]
		title += fmt.Sprintf(" (first %d of %d entries)", timelineMax, len(r.Intervals))
	}
	if r.Violations > 0 {
		title += fmt.Sprintf(": %d VIOLATIONS", r.Violations)
	}
	p.Title.Text = title
	p.X.Label.Text = "ms since the start"
	p.Y.Label.Text = "process"
	bars := &timelineBars{ivs: ivs, start: r.StartNs, procs: r.Procs, overlap: overlapping(ivs)}
	p.Add(bars)
	p.Y.Min, p.Y.Max = -0.75, float64(r.Procs)-0.25
	var ticks []plot.Tick
	for i := range r.Procs {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: dmutex.Name(i)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	return p, nil
}

// timelineBars is a plot.Plotter that draws the intervals as horizontal
// bars, one row per process.
type timelineBars struct {
	ivs   []shm.MutexInterval
	start int64
	procs int
	// overlap marks the intervals that began while another was open:
	// drawn in red.
	overlap []bool
}

// overlapping marks each interval that began before an earlier-entered one
// ended, as the safety check counts them.
func overlapping(ivs []shm.MutexInterval) []bool {
	idx := make([]int, len(ivs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ivs[a].Entered, ivs[b].Entered) })
	out := make([]bool, len(ivs))
	var maxExit int64
	for k, i := range idx {
		exit := ivs[i].Exited
		if exit == 0 {
			exit = ivs[i].Entered
		}
		if k > 0 && ivs[i].Entered < maxExit {
			out[i] = true
		}
		maxExit = max(maxExit, exit)
	}
	return out
}

// barColors tell neighbouring rows apart; red is kept for violations.
var (
	barColors = []color.Color{
		color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
		color.RGBA{148, 103, 189, 255}, color.RGBA{140, 86, 75, 255}, color.RGBA{23, 190, 207, 255},
	}
	violationColor = color.RGBA{220, 0, 0, 255}
)

func (t *timelineBars) ms(ns int64) float64 { return float64(ns-t.start) / 1e6 }

// Plot implements plot.Plotter. Every bar is at least a hairline wide, so
// that an empty critical section still shows.
func (t *timelineBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	for i, iv := range t.ivs {
		exit := iv.Exited
		if exit == 0 {
			exit = iv.Entered
		}
		x0, x1 := trX(t.ms(iv.Entered)), trX(t.ms(exit))
		if x1-x0 < 0.5 {
			x1 = x0 + 0.5
		}
		y := float64(iv.Proc)
		y0, y1 := trY(y-0.35), trY(y+0.35)
		clr := barColors[int(iv.Proc)%len(barColors)]
		if t.overlap[i] {
			clr = violationColor
		}
		c.FillPolygon(clr, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
	}
}

// DataRange implements plot.DataRanger.
func (t *timelineBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmax = 1
	for _, iv := range t.ivs {
		xmax = max(xmax, t.ms(max(iv.Exited, iv.Entered)))
	}
	return 0, xmax, -0.5, float64(t.procs) - 0.5
}
