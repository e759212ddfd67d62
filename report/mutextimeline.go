package report

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"mplock/coordinator"
	"mplock/dmutex"
	"mplock/shm"
)

// Timeline layout.
const (
	// overviewBuckets is how many slices of time the overview draws per
	// process: a stay is drawn as the slices it touches, so the overview
	// shows every entry of a long run in a file of bounded size.
	overviewBuckets = 1000
	// windowEntries is about how many entries the automatic window holds:
	// enough to see several handoffs, few enough to read each bar.
	windowEntries = 30
	// windowMax bounds the stays drawn in the window.
	windowMax = 5000
	// zoomAbove is the run length above which one chart of the whole run
	// cannot show single entries, and a window is drawn under it.
	zoomAbove = 300 * time.Millisecond
)

// TimelineOptions shape MutexTimeline's charts.
type TimelineOptions struct {
	// Window is the span of the zoomed chart; 0 chooses one that holds
	// about 30 entries. It is placed where the run was busiest (the most
	// entries), or at the first violation if there was one.
	Window time.Duration
}

// MutexTimeline draws, for each run, who held the critical section when,
// into an SVG file (PNG if the name ends in .png): an overview of the
// whole run, and under it, for a run longer than 300ms (or with
// opts.Window set), a window in which each stay is a bar and each wait a
// thin line. Time runs along a millisecond axis from the start barrier, on
// the shared monotonic clock; stays that overlap another (the violations
// the safety check counted) are red.
func MutexTimeline(file string, m Mutex, opts TimelineOptions) error {
	if len(m.Runs) == 0 {
		return fmt.Errorf("report: timeline: no run")
	}
	if opts.Window < 0 {
		return fmt.Errorf("report: timeline: window %v: must not be negative", opts.Window)
	}
	var plots [][]*plot.Plot
	height := vg.Length(0)
	for _, r := range m.Runs {
		rowHeight := vg.Length(1.3+0.25*float64(r.Procs)) * vg.Inch
		tl := newTimeline(r)
		from, to, zoom := tl.window(opts.Window)
		plots = append(plots, []*plot.Plot{tl.overview(from, to, zoom)})
		height += rowHeight
		if zoom {
			plots = append(plots, []*plot.Plot{tl.zoomed(from, to)})
			height += rowHeight
		}
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

// timeline is one run's stays, sorted by entry, in ms since the start.
type timeline struct {
	r       *coordinator.MutexResult
	ivs     []shm.MutexInterval
	overlap []bool
	end     float64 // ms: the last exit, or the run's wall time
}

func newTimeline(r *coordinator.MutexResult) *timeline {
	ivs := slices.Clone(r.Intervals)
	slices.SortStableFunc(ivs, func(a, b shm.MutexInterval) int { return cmp.Compare(a.Entered, b.Entered) })
	t := &timeline{r: r, ivs: ivs, overlap: overlapping(ivs), end: float64(r.Wall) / 1e6}
	for _, iv := range ivs {
		t.end = max(t.end, t.ms(max(iv.Exited, iv.Entered)))
	}
	t.end = max(t.end, 1)
	return t
}

func (t *timeline) ms(ns int64) float64 { return float64(ns-t.r.StartNs) / 1e6 }

// window chooses the zoomed span [from, to] in ms; zoom is false when the
// run is short enough to read whole. Without a width, it takes the
// narrowest round span (1, 2 or 5 times a power of ten) in which the
// busiest stretch holds about windowEntries entries.
func (t *timeline) window(width time.Duration) (from, to float64, zoom bool) {
	if width == 0 && time.Duration(t.end*1e6) <= zoomAbove || len(t.ivs) == 0 {
		return 0, t.end, false
	}
	w := float64(width) / 1e6
	if w == 0 {
		w = 0.01
		for w < t.end/4 {
			if n, _ := t.busiest(w); n >= windowEntries {
				break
			}
			w = niceCeil(w * 1.5)
		}
		w = min(w, niceCeil(t.end/4))
	}
	if w >= t.end {
		return 0, t.end, false
	}
	// At the first violation, if there is one; else around the entries
	// of the busiest stretch.
	center := 0.0
	for i, o := range t.overlap {
		if o {
			center = t.ms(t.ivs[i].Entered)
			break
		}
	}
	if center == 0 {
		_, median := t.busiest(w)
		center = median
	}
	// Round the start to a twentieth of the span, so that the window's
	// ends read as round numbers.
	snap := niceCeil(w / 20)
	from = max(0, math.Floor((center-w/2)/snap)*snap)
	if from+w > t.end {
		from = max(0, math.Floor((t.end-w)/snap)*snap)
	}
	return from, from + w, true
}

// busiest returns the most entries any span of w ms holds, and the time
// of the middle one of them (two pointers over the entries in time order;
// the earliest such span).
func (t *timeline) busiest(w float64) (n int, median float64) {
	j := 0
	for i := range t.ivs {
		start := t.ms(t.ivs[i].Entered)
		for j < len(t.ivs) && t.ms(t.ivs[j].Entered) < start+w {
			j++
		}
		if j-i > n {
			n, median = j-i, t.ms(t.ivs[(i+j-1)/2].Entered)
		}
	}
	return n, median
}

func (t *timeline) title() string {
	s := fmt.Sprintf("%s, %d processes", t.r.Algorithm.Title(), t.r.Procs)
	if t.r.Violations > 0 {
		s += fmt.Sprintf(": %s VIOLATIONS", count(t.r.Violations))
	}
	return s
}

func (t *timeline) base(title string, from, to float64) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "ms since the start"
	p.Y.Label.Text = "process"
	p.X.Min, p.X.Max = from, to
	p.X.Tick.Marker = msTicks{}
	p.Y.Min, p.Y.Max = -0.75, float64(t.r.Procs)-0.25
	var ticks []plot.Tick
	for i := range t.r.Procs {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: dmutex.Name(i)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	return p
}

func (t *timeline) overview(from, to float64, zoom bool) *plot.Plot {
	title := t.title() + fmt.Sprintf(": who held the critical section, all %s entries", count(int64(len(t.ivs))))
	if zoom {
		title += fmt.Sprintf(" (shaded: the window below, %s ms)", fmtMs(to-from))
	}
	p := t.base(title, 0, t.end)
	p.Add(&overviewBars{t: t, shadeFrom: from, shadeTo: to, shade: zoom})
	return p
}

func (t *timeline) zoomed(from, to float64) *plot.Plot {
	n := 0
	for _, iv := range t.ivs {
		if t.ms(iv.Entered) < to && t.ms(max(iv.Exited, iv.Entered)) >= from {
			n++
		}
	}
	title := fmt.Sprintf("%s: %s to %s ms, %s entries: stays (bars) and waits from request to entry (lines)",
		t.title(), fmtMs(from), fmtMs(to), count(int64(n)))
	p := t.base(title, from, to)
	p.Add(&windowBars{t: t, from: from, to: to})
	return p
}

// overlapping marks each interval (sorted by entry) that began before an
// earlier-entered one ended, as the safety check counts them.
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
	waitColor      = color.RGBA{150, 150, 150, 255}
	shadeColor     = color.NRGBA{255, 215, 90, 90}
)

func rect(c draw.Canvas, clr color.Color, x0, x1, y0, y1 vg.Length) {
	c.FillPolygon(clr, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
}

// overviewBars draws each process's stays as the slices of time they
// touch: every entry shows, however many there are.
type overviewBars struct {
	t                  *timeline
	shade              bool
	shadeFrom, shadeTo float64
}

// Plot implements plot.Plotter.
func (o *overviewBars) Plot(c draw.Canvas, plt *plot.Plot) {
	t := o.t
	trX, trY := plt.Transforms(&c)
	if o.shade {
		rect(c, shadeColor, trX(o.shadeFrom), trX(o.shadeTo), trY(-0.5), trY(float64(t.r.Procs)-0.5))
	}
	step := t.end / overviewBuckets
	type row struct{ on, red []bool }
	rows := make([]row, t.r.Procs)
	for i := range rows {
		rows[i] = row{make([]bool, overviewBuckets), make([]bool, overviewBuckets)}
	}
	for i, iv := range t.ivs {
		if int(iv.Proc) >= len(rows) {
			continue
		}
		exit := iv.Exited
		if exit == 0 {
			exit = iv.Entered
		}
		b0 := min(int(t.ms(iv.Entered)/step), overviewBuckets-1)
		b1 := min(int(t.ms(exit)/step), overviewBuckets-1)
		for b := max(b0, 0); b <= b1; b++ {
			rows[iv.Proc].on[b] = true
			rows[iv.Proc].red[b] = rows[iv.Proc].red[b] || t.overlap[i]
		}
	}
	for p, rw := range rows {
		y0, y1 := trY(float64(p)-0.35), trY(float64(p)+0.35)
		for b := 0; b < overviewBuckets; {
			if !rw.on[b] {
				b++
				continue
			}
			e, red := b, false
			for e < overviewBuckets && rw.on[e] && rw.red[e] == rw.red[b] {
				red = rw.red[e]
				e++
			}
			clr := barColors[p%len(barColors)]
			if red {
				clr = violationColor
			}
			rect(c, clr, trX(float64(b)*step), max(trX(float64(e)*step), trX(float64(b)*step)+0.5), y0, y1)
			b = e
		}
	}
}

// DataRange implements plot.DataRanger.
func (o *overviewBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	return 0, o.t.end, -0.5, float64(o.t.r.Procs) - 0.5
}

// windowBars draws the stays and waits within [from, to].
type windowBars struct {
	t        *timeline
	from, to float64
}

// Plot implements plot.Plotter. Every bar is at least a hairline wide, so
// that an empty critical section still shows.
func (wb *windowBars) Plot(c draw.Canvas, plt *plot.Plot) {
	t := wb.t
	trX, trY := plt.Transforms(&c)
	clip := func(v float64) vg.Length { return trX(min(max(v, wb.from), wb.to)) }
	drawn := 0
	for i, iv := range t.ivs {
		in, req := t.ms(iv.Entered), t.ms(iv.Requested)
		out := in
		if iv.Exited != 0 {
			out = t.ms(iv.Exited)
		}
		if in >= wb.to || out < wb.from && in < wb.from {
			continue
		}
		if drawn++; drawn > windowMax {
			break
		}
		y := float64(iv.Proc)
		if iv.Requested != 0 && req < in && in > wb.from {
			c.StrokeLine2(draw.LineStyle{Color: waitColor, Width: vg.Points(1)}, clip(req), trY(y), clip(in), trY(y))
		}
		x0, x1 := clip(in), clip(out)
		if x1-x0 < 0.5 {
			x1 = x0 + 0.5
		}
		clr := barColors[int(iv.Proc)%len(barColors)]
		if t.overlap[i] {
			clr = violationColor
		}
		rect(c, clr, x0, x1, trY(y-0.35), trY(y+0.35))
	}
}

// DataRange implements plot.DataRanger.
func (wb *windowBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	return wb.from, wb.to, -0.5, float64(wb.t.r.Procs) - 0.5
}

// msTicks is a millisecond axis with round steps (1, 2 or 5 times a power
// of ten), about eight labelled ticks and four unlabelled ones between each.
type msTicks struct{}

// Ticks implements plot.Ticker.
func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	if hi <= lo {
		return []plot.Tick{{Value: lo, Label: fmtMs(lo)}}
	}
	step := niceCeil((hi - lo) / 8)
	minor := step / 5
	if s := fmt.Sprintf("%g", step/minor); s != "5" {
		minor = step / 2
	}
	var ticks []plot.Tick
	first := math.Ceil(lo/minor-1e-9) * minor
	for i := 0; ; i++ {
		v := first + float64(i)*minor
		if v > hi+minor*1e-6 {
			break
		}
		major := math.Abs(v/step-math.Round(v/step)) < 1e-6
		label := ""
		if major {
			label = fmtMs(v)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// fmtMs formats milliseconds without trailing zeros: "12.5", "300", "0.02".
func fmtMs(v float64) string {
	if math.Abs(v) < 1e-9 {
		return "0"
	}
	return strconv.FormatFloat(math.Round(v*1e4)/1e4, 'f', -1, 64)
}
