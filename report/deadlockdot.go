package report

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"mplock/coordinator"
	"mplock/waitfor"
)

// ErrNoDot is returned when Graphviz's dot command is not installed.
var ErrNoDot = errors.New("report: Graphviz's dot command is not installed (not found in PATH)")

// DeadlockDOT writes the run's wait-for graph in Graphviz's language: every
// process (ellipse) and every lock (box, with its server) is a node; a
// "holds" edge goes from a lock to its holder and a "waits for" edge from a
// waiter to the lock, so that a deadlock reads as a directed cycle,
// drawn in red. The graph is the detector's look that confirmed the
// deadlock, or else the one with the most waits.
func DeadlockDOT(w io.Writer, r *coordinator.DeadlockResult) error {
	g := r.Graph
	var b strings.Builder
	title := "no process ever waited"
	switch {
	case r.Deadlock != nil:
		var chain []string
		for _, e := range r.Deadlock.Cycle {
			chain = append(chain, e.Proc)
		}
		chain = append(chain, chain[0])
		title = fmt.Sprintf("DEADLOCK %s, confirmed at %s", strings.Join(chain, " → "), offset(r.GraphAt))
	case len(g.Edges) > 0:
		title = fmt.Sprintf("no deadlock; the most waits seen at once, at %s", offset(r.GraphAt))
	}
	fmt.Fprintf(&b, "// mplock deadlock --strategy %s --resolve %s: the wait-for graph\n", r.Plan.Strategy, r.Plan.Resolve)
	b.WriteString("digraph waitfor {\n")
	fmt.Fprintf(&b, "  label=%s;\n  labelloc=t;\n", quote(fmt.Sprintf("mplock deadlock, strategy %s: %s", r.Plan.Strategy, title)))
	if r.Deadlock != nil {
		b.WriteString("  layout=circo; // the cycle drawn as a circle\n")
	} else {
		b.WriteString("  rankdir=LR;\n")
	}
	b.WriteString("  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n")

	inCycle := map[string]bool{} // edge ids drawn in red
	if r.Deadlock != nil {
		for _, e := range r.Deadlock.Cycle {
			inCycle["w|"+e.Proc+"|"+e.WaitsFor] = true
			if e.Kind == waitfor.HeldBy {
				inCycle["h|"+e.Blocker+"|"+e.WaitsFor] = true
			}
		}
	}
	for _, h := range r.Holders {
		attrs := ""
		if h.Victim {
			attrs = ", style=dashed, color=gray40"
		}
		fmt.Fprintf(&b, "  %s [shape=ellipse, label=%s%s];\n", quote(procNode(h.Proc, h.PID)), quote(fmt.Sprintf("%s\npid %d", h.Proc, h.PID)), attrs)
	}
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "  %s [shape=box, label=%s];\n", quote(lockNode(s.Lock, s.Addr)), quote(s.Lock+"\n"+s.Addr))
	}
	for _, ls := range g.Locks {
		node := quote(lockNode(ls.Lock.Name, ls.Lock.Server))
		for _, h := range ls.Holders {
			label := fmt.Sprintf("holds\ntoken %d", h.Token)
			fmt.Fprintf(&b, "  %s -> %s [label=%s, dir=back%s];\n", quote(procNode(h.Proc.Name, h.Proc.PID)), node, quote(label),
				red(inCycle["h|"+h.Proc.Name+"|"+ls.Lock.Name]))
		}
		for _, wt := range ls.Waiters {
			label := "waits for"
			if wt.Position > 1 {
				label += fmt.Sprintf("\n(#%d in queue)", wt.Position)
			}
			if !wt.Deadline.IsZero() {
				label += "\n(timed)"
			}
			fmt.Fprintf(&b, "  %s -> %s [label=%s, style=dashed%s];\n", quote(procNode(wt.Proc.Name, wt.Proc.PID)), node, quote(label),
				red(inCycle["w|"+wt.Proc.Name+"|"+ls.Lock.Name]))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func procNode(name string, pid int) string { return fmt.Sprintf("%s (pid %d)", name, pid) }

func lockNode(name, addr string) string { return name + " at " + addr }

func red(on bool) string {
	if on {
		return ", color=red, fontcolor=red, penwidth=2"
	}
	return ""
}

// quote makes s a DOT string, with "\n" as a line break.
func quote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"`
}

// DotPath returns the path of Graphviz's dot command, or ErrNoDot.
func DotPath() (string, error) {
	p, err := exec.LookPath("dot")
	if err != nil {
		return "", ErrNoDot
	}
	return p, nil
}

// RenderSVG renders a DOT graph to an SVG file with Graphviz's dot.
func RenderSVG(dot []byte, file string) error {
	path, err := DotPath()
	if err != nil {
		return err
	}
	cmd := exec.Command(path, "-Tsvg", "-o", file)
	cmd.Stdin = bytes.NewReader(dot)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("report: dot -Tsvg: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
