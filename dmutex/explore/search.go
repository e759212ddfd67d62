package explore

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"time"

	"mplock/dmutex"
	"mplock/internal/numfmt"
)

// Flags of a state in the depth-first search.
const (
	onStack   uint8 = 1 << iota // in the strongly connected component being built
	good                        // before its component completes: the state is final or leads into a good component; after: the component can finish
	completed                   // its component is complete
)

// search is one depth-first search with Tarjan's strongly connected
// components: a state's index is its id, in the order first reached.
type search struct {
	ctx   context.Context
	cfg   Config
	m     *model
	seeds [2]maphash.Seed
	ids   map[[2]uint64]int32
	// Per state id.
	lowlink []int32
	flags   []uint8

	scc         []int32 // Tarjan's stack
	transitions int
	final       int
	maxDepth    int
	start       time.Time

	// The failure the depth-first search found, and the path to it.
	failKind FailureKind
	failPath []transition
}

type frame struct {
	w     *world
	id    int32
	trans []transition
	next  int
	via   transition // the step that led here from the frame below
}

func newSearch(ctx context.Context, cfg Config) *search {
	return &search{ctx: ctx, cfg: cfg, m: newModel(cfg), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		ids: map[[2]uint64]int32{}, start: time.Now()}
}

func (s *search) hash(w *world) [2]uint64 {
	b := s.m.encode(w)
	return [2]uint64{maphash.Bytes(s.seeds[0], b), maphash.Bytes(s.seeds[1], b)}
}

func (s *search) progress(phase string, states int) {
	if s.cfg.Progress != nil {
		s.cfg.Progress(Progress{States: states, Transitions: s.transitions, Elapsed: time.Since(s.start), Phase: phase})
	}
}

// dfs explores every state reachable from the start. It returns the kind of
// the first failure found (0 if none) and sets res.Complete and
// res.Stopped; the path to the failure is in s.failPath.
func (s *search) dfs(res *Result) (FailureKind, error) {
	w0, err := s.m.initial()
	if err != nil {
		return 0, fmt.Errorf("explore: start: %w", err)
	}
	var stack []frame
	push := func(w *world, via transition) {
		id := int32(len(s.lowlink))
		s.ids[s.hash(w)] = id
		s.lowlink = append(s.lowlink, id)
		fl := onStack
		if w.done() {
			fl |= good
			s.final++
		}
		s.flags = append(s.flags, fl)
		s.scc = append(s.scc, id)
		stack = append(stack, frame{w: w, id: id, trans: s.m.transitions(w, nil), via: via})
		s.maxDepth = max(s.maxDepth, len(stack)-1)
	}
	path := func(last *transition) []transition {
		var p []transition
		for _, f := range stack[1:] {
			p = append(p, f.via)
		}
		if last != nil {
			p = append(p, *last)
		}
		return p
	}
	fail := func(k FailureKind, last *transition) FailureKind {
		s.failKind, s.failPath = k, path(last)
		return k
	}
	push(w0, transition{})
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next < len(f.trans) {
			t := f.trans[f.next]
			f.next++
			s.transitions++
			next, _, err := s.m.apply(f.w, t, -1)
			if err != nil {
				return fail(Refused, &t), nil
			}
			if len(next.inside()) > 1 {
				return fail(Violation, &t), nil
			}
			h := s.hash(next)
			if id, seen := s.ids[h]; seen {
				switch {
				case s.flags[id]&onStack != 0:
					s.lowlink[f.id] = min(s.lowlink[f.id], id)
				case s.flags[id]&good != 0:
					s.flags[f.id] |= good
				}
				continue
			}
			if len(s.lowlink) >= s.cfg.MaxStates {
				res.Stopped = fmt.Sprintf("stopped at the state limit of %s states (--max-states)", numfmt.Grouped(int64(s.cfg.MaxStates)))
				return 0, nil
			}
			if len(s.lowlink)%4096 == 0 {
				if err := s.ctx.Err(); err != nil {
					res.Stopped = "interrupted"
					return 0, nil
				}
				if len(s.lowlink)%102_400 == 0 {
					s.progress("searching", len(s.lowlink))
				}
			}
			push(next, t)
			continue
		}
		// Every step from f is explored.
		if len(f.trans) == 0 && !f.w.done() {
			return fail(Deadlock, nil), nil
		}
		if s.lowlink[f.id] == f.id {
			canFinish := false
			i := len(s.scc) - 1
			for ; s.scc[i] != f.id; i-- {
				canFinish = canFinish || s.flags[s.scc[i]]&good != 0
			}
			canFinish = canFinish || s.flags[f.id]&good != 0
			for _, id := range s.scc[i:] {
				s.flags[id] = completed
				if canFinish {
					s.flags[id] |= good
				}
			}
			s.scc = s.scc[:i]
			if !canFinish {
				return fail(Starvation, nil), nil
			}
		}
		id, low, fl := f.id, s.lowlink[f.id], s.flags[f.id]
		stack = stack[:len(stack)-1]
		if len(stack) > 0 {
			p := &stack[len(stack)-1]
			s.lowlink[p.id] = min(s.lowlink[p.id], low)
			if fl&completed != 0 && fl&good != 0 {
				s.flags[p.id] |= good
			}
		}
		_ = id
	}
	res.Complete = true
	return 0, nil
}

// shortest finds, breadth first, the shortest path from the start to a
// failure of the kind the depth-first search found, replays it, and
// describes its last state. It falls back to the depth-first path when the
// breadth-first search would pass the state limit.
func (s *search) shortest(kind FailureKind, res *Result) (*Failure, error) {
	path, visited := s.bfs(kind)
	res.ShortestStates = visited
	shortest := path != nil
	if !shortest {
		path = s.failPath
	}
	f, err := s.replay(kind, path)
	if err != nil {
		return nil, err
	}
	if !shortest {
		f.What += " (the breadth-first search for a shorter path passed the state limit: this path may not be the shortest)"
	}
	return f, nil
}

// bfs returns the shortest path to a state of the given failure kind, and
// the states it visited; nil when it passed the state limit or the
// context ended.
func (s *search) bfs(kind FailureKind) ([]transition, int) {
	type node struct {
		parent int32
		via    transition
	}
	w0, err := s.m.initial()
	if err != nil {
		return nil, 0
	}
	seen := map[[2]uint64]int32{s.hash(w0): 0}
	nodes := []node{{parent: -1}}
	type item struct {
		w  *world
		id int32
	}
	level := []item{{w0, 0}}
	pathTo := func(id int32, last *transition) []transition {
		var p []transition
		if last != nil {
			p = append(p, *last)
		}
		for ; nodes[id].parent >= 0; id = nodes[id].parent {
			p = append(p, nodes[id].via)
		}
		for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
			p[i], p[j] = p[j], p[i]
		}
		return p
	}
	var trans []transition
	for len(level) > 0 {
		var next []item
		for _, it := range level {
			trans = s.m.transitions(it.w, trans)
			switch kind {
			case Deadlock:
				if len(trans) == 0 && !it.w.done() {
					return pathTo(it.id, nil), len(nodes)
				}
			case Starvation:
				if id, ok := s.ids[s.hash(it.w)]; ok && s.flags[id]&completed != 0 && s.flags[id]&good == 0 {
					return pathTo(it.id, nil), len(nodes)
				}
			}
			for _, t := range trans {
				w, _, err := s.m.apply(it.w, t, -1)
				if err != nil || len(w.inside()) > 1 {
					if err != nil && kind == Refused || err == nil && kind == Violation {
						return pathTo(it.id, &t), len(nodes)
					}
					continue
				}
				h := s.hash(w)
				if _, ok := seen[h]; ok {
					continue
				}
				if len(nodes) >= s.cfg.MaxStates || len(nodes)%100_000 == 0 && s.ctx.Err() != nil {
					return nil, len(nodes)
				}
				if len(nodes)%100_000 == 0 {
					s.progress("shortest", len(nodes))
				}
				id := int32(len(nodes))
				seen[h] = id
				nodes = append(nodes, node{parent: it.id, via: t})
				next = append(next, item{w, id})
			}
		}
		level = next
	}
	return nil, len(nodes)
}

// replay runs path from the start, recording what each step did, and
// describes the state it ends in.
func (s *search) replay(kind FailureKind, path []transition) (*Failure, error) {
	m := s.m
	m.recording = true
	defer func() { m.recording = false }()
	w, err := m.initial()
	if err != nil {
		return nil, err
	}
	f := &Failure{Kind: kind}
	for i, t := range path {
		m.events = nil
		next, delivered, err := m.apply(w, t, i)
		st := Step{Kind: t.kind, Proc: t.proc, SentAt: -1, Events: m.events, Err: err}
		if t.kind == StepDeliver {
			st.Msg, st.SentAt, st.Proc = delivered.m, delivered.sentAt, delivered.m.To
		}
		for _, fl := range next.links {
			for _, x := range fl {
				if x.sentAt == i {
					st.Sent = append(st.Sent, x.m)
				}
			}
		}
		st.Inside = next.inside()
		f.Trace = append(f.Trace, st)
		if err != nil {
			f.What = fmt.Sprintf("%s refused a message: %v", dmutex.Name(st.Proc), err)
			return f, nil
		}
		w = next
	}
	switch kind {
	case Violation:
		in := w.inside()
		f.What = fmt.Sprintf("%s are in the critical section at once", names(in))
	case Deadlock, Starvation:
		var waits []string
		for i := range w.left {
			p := w.proc(i)
			if p.State() == dmutex.Wanted {
				f.Waiting = append(f.Waiting, i)
				w := fmt.Sprintf("%s waits", dmutex.Name(i))
				if a := p.Awaiting(); !a.Empty() {
					w += " for " + names(a.IDs())
				}
				waits = append(waits, w)
			}
		}
		inFlight := 0
		for _, fl := range w.links {
			inFlight += len(fl)
		}
		if kind == Deadlock {
			f.What = fmt.Sprintf("nothing can happen any more (no message in flight, nobody inside): %s", strings.Join(waits, "; "))
		} else {
			f.What = fmt.Sprintf("from here no order of events lets every process finish (%d messages in flight): %s", inFlight, strings.Join(waits, "; "))
		}
	}
	return f, nil
}

func names(ids []int) string {
	var s []string
	for _, id := range ids {
		s = append(s, dmutex.Name(id))
	}
	return joinAnd(s)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return "nobody"
	case 1:
		return s[0]
	}
	out := ""
	for i, x := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " and "
		default:
			out += ", "
		}
		out += x
	}
	return out
}
