package report

import (
	"bufio"
	"fmt"
	"html"
	"io"

	"mplock/dmutex"
	"mplock/dmutex/explore"
)

// MSC chart layout, in SVG user units.
const (
	mscLeft    = 70
	mscLaneGap = 170
	mscTop     = 60
	mscRow     = 30
)

// MSCSVG draws a counterexample as a message-sequence chart in SVG: a
// vertical line per process, time flowing down a row per step; each
// message an arrow from the step that sent it to the step that delivered
// it (dashed to the bottom when it was still in flight at the end); each
// stay in the critical section a thick bar on its process's line, red
// where two overlap.
func MSCSVG(w io.Writer, a dmutex.Algorithm, n int, f *explore.Failure) error {
	ids := laneIDs(a, n)
	x := func(id int) int {
		for k, v := range ids {
			if v == id {
				return mscLeft + k*mscLaneGap
			}
		}
		return mscLeft
	}
	y := func(step int) int { return mscTop + (step+1)*mscRow } // step -1: the start
	steps := len(f.Trace)
	bottom := y(steps) + mscRow/2
	width := mscLeft + len(ids)*mscLaneGap + 280
	height := bottom + 70
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintln(b, `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker></defs>`)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(b, `<text x="10" y="20" font-size="14" font-weight="bold">%s, %d processes: %s (%d steps)</text>`+"\n",
		html.EscapeString(a.Title()), n, html.EscapeString(f.Kind.String()), steps)
	for _, id := range ids {
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x(id), mscTop-12, dmutex.Name(id))
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#999" stroke-width="1"/>`+"\n", x(id), mscTop-5, x(id), bottom)
	}
	for i := range steps {
		fmt.Fprintf(b, `<text x="8" y="%d" fill="#777">%d</text>`+"\n", y(i)+4, i+1)
	}
	// Stays in the critical section: from the step a process is first
	// inside to the step it is no longer.
	type stay struct{ proc, from, to int }
	var stays []stay
	open := map[int]int{}
	for i, st := range f.Trace {
		now := map[int]bool{}
		for _, p := range st.Inside {
			now[p] = true
			if _, ok := open[p]; !ok {
				open[p] = i
			}
		}
		for p, from := range open {
			if !now[p] {
				stays = append(stays, stay{p, from, i})
				delete(open, p)
			}
		}
	}
	for p, from := range open {
		stays = append(stays, stay{p, from, steps})
	}
	for _, s := range stays {
		clr := "#2c7fb8"
		for _, o := range stays {
			if o != s && o.from < s.to && s.from < o.to {
				clr = "#dc0000"
			}
		}
		y1 := bottom
		if s.to < steps {
			y1 = y(s.to)
		}
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="%d" fill="%s" opacity="0.85"><title>%s in the critical section</title></rect>`+"\n",
			x(s.proc)-5, y(s.from), max(y1-y(s.from), 4), clr, dmutex.Name(s.proc))
	}
	// Messages.
	type sent struct {
		m    dmutex.Message
		step int
		done bool
	}
	var all []*sent
	for i, st := range f.Trace {
		for _, m := range st.Sent {
			all = append(all, &sent{m: m, step: i})
		}
	}
	for i, st := range f.Trace {
		if st.Kind != explore.StepDeliver {
			continue
		}
		for _, s := range all {
			if !s.done && s.step == st.SentAt && s.m.Equal(st.Msg) {
				s.done = true
				break
			}
		}
		x0, y0, x1, y1 := x(st.Msg.From), y(st.SentAt), x(st.Msg.To), y(i)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333" stroke-width="1.2" marker-end="url(#arrow)"/>`+"\n", x0, y0, x1, y1)
		// The label sits a third of the way from the sender, where
		// crossing arrows are furthest apart.
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" font-size="10" fill="#333">%s</text>`+"\n", x0+(x1-x0)/3, y0+(y1-y0)/3-3, html.EscapeString(msgLabel(a, st.Msg)))
	}
	for _, s := range all {
		if s.done {
			continue
		}
		x0, y0, x1 := x(s.m.From), y(s.step), x(s.m.To)
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888" stroke-width="1" stroke-dasharray="5,4" marker-end="url(#arrow)"><title>still in flight</title></line>`+"\n", x0, y0, x1, bottom)
		fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle" font-size="10" fill="#888">%s (in flight)</text>`+"\n", (x0+x1)/2, (y0+bottom)/2-3, html.EscapeString(msgLabel(a, s.m)))
	}
	// What each process did, beside its line.
	right := mscLeft + len(ids)*mscLaneGap - mscLaneGap/2 + 20
	for i, st := range f.Trace {
		switch st.Kind {
		case explore.StepRequest:
			fmt.Fprintf(b, `<circle cx="%d" cy="%d" r="4" fill="#333"/><text x="%d" y="%d" font-size="10">request ts %d</text>`+"\n", x(st.Proc), y(i), x(st.Proc)+8, y(i)+4, requestTS(st))
		case explore.StepRelease:
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="8" height="8" fill="#333"/><text x="%d" y="%d" font-size="10">release</text>`+"\n", x(st.Proc)-4, y(i)-4, x(st.Proc)+8, y(i)+4)
		}
		if p := enteredProc(st); p >= 0 {
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" font-weight="bold">enters</text>`+"\n", x(p)+8, y(i)+14)
		}
		var said string
		for _, e := range st.Events {
			if e.Kind == dmutex.Deferred || e.Kind == dmutex.SentFailed || e.Kind == dmutex.Inquired || e.Kind == dmutex.Relinquished || e.Kind == dmutex.Queued || e.Kind == dmutex.Voted {
				said = e.String()
				break
			}
		}
		if st.Err != nil {
			said = "REFUSED: " + st.Err.Error()
		}
		if said != "" {
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="10" fill="#555">%s</text>`+"\n", right, y(i)+4, html.EscapeString(said))
		}
	}
	fmt.Fprintf(b, `<text x="10" y="%d" font-size="12" fill="#b00">%s</text>`+"\n", bottom+30, html.EscapeString(f.What))
	fmt.Fprintln(b, `</svg>`)
	return b.Flush()
}
