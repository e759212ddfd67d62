package waitfor

import (
	"slices"
	"strings"
	"time"
)

// Cycle is a closed chain of waits: Edges[i].To() is Edges[i+1].From(), and
// the last edge leads back to the first process. Members is every process of
// the strongly connected set the cycle was taken from: all of them wait,
// directly or not, for each other, even those the chain does not pass
// through.
type Cycle struct {
	Edges   []Edge
	Members []Proc
}

// Procs returns the processes along the cycle, in its order.
func (c Cycle) Procs() []Proc {
	ps := make([]Proc, len(c.Edges))
	for i, e := range c.Edges {
		ps[i] = e.From()
	}
	return ps
}

// Formed is when the cycle came to exist: the start of its latest wait
// (every hold it depends on began before the wait it blocks).
func (c Cycle) Formed() time.Time {
	var t time.Time
	for _, e := range c.Edges {
		if e.Waiter.Since.After(t) {
			t = e.Waiter.Since
		}
	}
	return t
}

// Bounded reports whether a wait of the cycle ends by itself at a deadline,
// which breaks the cycle: it is transient, not a deadlock.
func (c Cycle) Bounded() bool {
	return slices.ContainsFunc(c.Edges, Edge.Bounded)
}

// Servers returns the distinct servers the cycle's locks live on.
func (c Cycle) Servers() []string {
	var s []string
	for _, e := range c.Edges {
		s = append(s, e.Lock.Server)
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// Key identifies the cycle across looks, whatever process it is read from.
func (c Cycle) Key() string {
	keys := make([]string, len(c.Edges))
	for i, e := range c.Edges {
		keys[i] = e.Key()
	}
	slices.Sort(keys)
	return strings.Join(keys, ";")
}

// Deadlocks returns the cycles made only of waits without a deadline: none of
// their processes can go on until one of them is stopped from outside. One
// cycle per strongly connected set of processes, in order of its first
// member.
func (g Graph) Deadlocks() []Cycle {
	return g.cycles(func(e Edge) bool { return !e.Bounded() })
}

// Cycles returns every cycle, deadlocks and transient ones, one per
// strongly connected set of processes.
func (g Graph) Cycles() []Cycle {
	return g.cycles(func(Edge) bool { return true })
}

// cycles finds the strongly connected sets of processes over the edges keep
// accepts (Tarjan's algorithm), and from each set with a cycle takes the
// shortest cycle through its first member (breadth-first search), so that
// the same graph always gives the same cycles.
func (g Graph) cycles(keep func(Edge) bool) []Cycle {
	out := map[Proc][]Edge{}
	var nodes []Proc
	for _, e := range g.Edges {
		if !keep(e) {
			continue
		}
		if _, ok := out[e.From()]; !ok {
			nodes = append(nodes, e.From())
		}
		out[e.From()] = append(out[e.From()], e)
	}
	// Edges are sorted by From, so nodes are in order; every cycle node has
	// an outgoing edge, so nodes holds all of them.
	t := tarjan{out: out, index: map[Proc]int{}, low: map[Proc]int{}, on: map[Proc]bool{}}
	for _, n := range nodes {
		if _, seen := t.index[n]; !seen {
			t.visit(n)
		}
	}
	var cycles []Cycle
	for _, scc := range t.sccs {
		slices.SortFunc(scc, Proc.compare)
		if len(scc) == 1 && !selfLoop(out[scc[0]]) {
			continue
		}
		in := map[Proc]bool{}
		for _, p := range scc {
			in[p] = true
		}
		cycles = append(cycles, Cycle{Edges: shortestCycle(scc[0], out, in), Members: scc})
	}
	slices.SortFunc(cycles, func(a, b Cycle) int { return a.Members[0].compare(b.Members[0]) })
	return cycles
}

func selfLoop(es []Edge) bool {
	return slices.ContainsFunc(es, func(e Edge) bool { return e.From() == e.To() })
}

type tarjan struct {
	out   map[Proc][]Edge
	index map[Proc]int
	low   map[Proc]int
	on    map[Proc]bool
	stack []Proc
	next  int
	sccs  [][]Proc
}

// visit is Tarjan's recursive step. Recursion depth is bounded by the
// number of processes in a run, at most a few hundred.
func (t *tarjan) visit(v Proc) {
	t.index[v], t.low[v] = t.next, t.next
	t.next++
	t.stack = append(t.stack, v)
	t.on[v] = true
	for _, e := range t.out[v] {
		w := e.To()
		if _, seen := t.index[w]; !seen {
			t.visit(w)
			t.low[v] = min(t.low[v], t.low[w])
		} else if t.on[w] {
			t.low[v] = min(t.low[v], t.index[w])
		}
	}
	if t.low[v] != t.index[v] {
		return
	}
	var scc []Proc
	for {
		w := t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		t.on[w] = false
		scc = append(scc, w)
		if w == v {
			break
		}
	}
	t.sccs = append(t.sccs, scc)
}

// shortestCycle returns the shortest chain of edges from start back to
// start that stays inside the set in.
func shortestCycle(start Proc, out map[Proc][]Edge, in map[Proc]bool) []Edge {
	via := map[Proc]Edge{} // how each process was first reached
	queue := []Proc{start}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, e := range out[p] {
			to := e.To()
			if !in[to] {
				continue
			}
			if to == start {
				chain := []Edge{e}
				for q := p; q != start; q = via[q].From() {
					chain = append(chain, via[q])
				}
				slices.Reverse(chain)
				return chain
			}
			if _, seen := via[to]; !seen {
				via[to] = e
				queue = append(queue, to)
			}
		}
	}
	return nil // not reached: start is in a strongly connected set with a cycle
}

// Confirm returns the cycles of a later look whose every edge was also in an
// earlier one. The later look must have begun after the earlier one ended:
// then every edge of a confirmed cycle existed throughout the time between
// the two looks, so the cycle existed as a whole at that time and was not an
// artefact of asking the servers one after the other (see the package
// documentation).
func Confirm(earlier Graph, later []Cycle) []Cycle {
	seen := make(map[string]bool, len(earlier.Edges))
	for _, e := range earlier.Edges {
		seen[e.Key()] = true
	}
	var out []Cycle
	for _, c := range later {
		if !slices.ContainsFunc(c.Edges, func(e Edge) bool { return !seen[e.Key()] }) {
			out = append(out, c)
		}
	}
	return out
}
