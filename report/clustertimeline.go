package report

import (
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"mplock/coordinator"
)

// ClusterTimeline draws a cluster run: one row per node (its role over
// time: leader, follower, down, paused, cut off) and one per client (the
// names it held, from grant to release, one colour per name), with the
// faults marked, to file (SVG, or PNG by its extension).
func ClusterTimeline(file string, r *coordinator.ClusterResult) error {
	var rows []string
	for _, n := range r.Nodes {
		rows = append(rows, n.ID)
	}
	for _, c := range r.Clients {
		rows = append(rows, "client "+shortID(c.ID))
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("mplock cluster: %d nodes (role over time), %d clients (locks held, by name)", len(r.Nodes), len(r.Clients))
	p.X.Label.Text = "ms since the start of the operations"
	p.X.Min, p.X.Max = 0, ms(max(r.Elapsed, time.Millisecond))
	p.X.Tick.Marker = msTicks{}
	p.Y.Min, p.Y.Max = -0.75, float64(len(rows))-0.25
	var ticks []plot.Tick
	for i, name := range rows {
		ticks = append(ticks, plot.Tick{Value: float64(len(rows) - 1 - i), Label: name})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(&clusterBars{r: r, rows: len(rows)})
	p.Legend.Top = true
	for _, role := range []string{"leader", "follower", "candidate", "down", "paused", "cut off"} {
		p.Legend.Add(role, swatch{roleColor(role)})
	}
	for i := range r.Plan.Names {
		p.Legend.Add(coordinator.ClusterName(i)+" held", swatch{barColors[i%len(barColors)]})
	}
	height := vg.Length(1.5+0.3*float64(len(rows))) * vg.Inch
	width := 11 * vg.Inch
	var err error
	if strings.EqualFold(filepath.Ext(file), ".png") {
		cv := vgimg.PngCanvas{Canvas: vgimg.New(width, height)}
		p.Draw(draw.New(cv))
		err = writeTo(file, cv.WriteTo)
	} else {
		cv := vgsvg.New(width, height)
		p.Draw(draw.New(cv))
		err = writeTo(file, cv.WriteTo)
	}
	if err != nil {
		return fmt.Errorf("report: cluster timeline: %w", err)
	}
	return nil
}

func writeTo(file string, write func(io.Writer) (int64, error)) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func roleColor(role string) color.Color {
	switch {
	case role == "leader":
		return color.RGBA{214, 39, 40, 255}
	case role == "follower":
		return color.RGBA{158, 202, 225, 255}
	case role == "candidate":
		return color.RGBA{255, 187, 120, 255}
	case role == "down":
		return color.RGBA{60, 60, 60, 255}
	case role == "paused":
		return color.RGBA{150, 150, 150, 255}
	case strings.HasPrefix(role, "cut off"):
		return color.RGBA{188, 128, 189, 255}
	}
	return color.RGBA{220, 220, 220, 255}
}

type swatch struct{ c color.Color }

// Thumbnail implements plot.Thumbnailer.
func (s swatch) Thumbnail(c *draw.Canvas) {
	rect(*c, s.c, c.Min.X, c.Max.X, c.Min.Y, c.Max.Y)
}

// clusterBars draws the rows.
type clusterBars struct {
	r    *coordinator.ClusterResult
	rows int
}

// Plot implements plot.Plotter.
func (b *clusterBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	row := map[string]int{}
	for i, n := range b.r.Nodes {
		row[n.ID] = b.rows - 1 - i
	}
	for i, cl := range b.r.Clients {
		row["client "+cl.ID] = b.rows - 1 - len(b.r.Nodes) - i
	}
	bar := func(r int, from, to time.Duration, clr color.Color, h float64) {
		x0, x1 := trX(ms(from)), trX(ms(max(to, from+time.Millisecond)))
		rect(c, clr, x0, x1, trY(float64(r)-h), trY(float64(r)+h))
	}
	for _, s := range b.r.Roles {
		bar(row[s.Node], s.From, s.To, roleColor(s.Role), 0.3)
	}
	name := map[string]int{}
	for i := range b.r.Plan.Names {
		name[coordinator.ClusterName(i)] = i
	}
	for _, h := range b.r.Holds {
		bar(row["client "+h.Client], h.From, h.To, barColors[name[h.Name]%len(barColors)], 0.3)
	}
	// Faults: a thin black line at the start of each.
	for _, e := range b.r.Events {
		if e.Kind != coordinator.ClusterFaultStart || (e.Node == "" && e.Client == "") {
			continue
		}
		x := trX(ms(e.At))
		c.StrokeLine2(draw.LineStyle{Color: color.Black, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(3), vg.Points(2)}},
			x, trY(-0.5), x, trY(float64(b.rows)-0.5))
	}
}

var _ plot.Plotter = (*clusterBars)(nil)
