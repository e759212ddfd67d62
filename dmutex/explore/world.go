package explore

import (
	"encoding/binary"
	"fmt"
	"slices"

	"mplock/dmutex"
)

// world is one global state: every node's state, the entries each peer
// still has to make, and the messages in flight on each directed link.
// A world is never changed once built: a transition makes a new one,
// sharing the links it does not touch.
type world struct {
	nodes []dmutex.Node // peers 0..N-1, then the server if the algorithm has one
	left  []int         // entries each peer still has to make
	links [][]flight    // in flight, per directed link (see model.links), oldest first
}

// flight is a message on its way, and the step that sent it (-1 before the
// trace starts; only a replayed trace keeps steps).
type flight struct {
	m      dmutex.Message
	sentAt int
}

// transition is one thing that can happen next.
type transition struct {
	kind StepKind
	proc int // the peer that requests or releases
	link int // the link a message is delivered from
	pos  int // its position in the link (0 with FIFO links)
}

// model is what every world of one exploration shares: the algorithm, the
// links, and the scratch the nodes' transports write to.
type model struct {
	cfg       Config
	ids       []int       // node ids, in world.nodes order
	index     map[int]int // node id -> position
	links     [][2]int    // directed links: from, to (ids)
	linkOf    map[[2]int]int
	outbox    []dmutex.Message // what the node being stepped sent
	recording bool
	events    []dmutex.Event
	buf       []byte
}

func newModel(cfg Config) *model {
	m := &model{cfg: cfg, index: map[int]int{}, linkOf: map[[2]int]int{}}
	for i := range cfg.N {
		m.ids = append(m.ids, i)
	}
	if cfg.Algorithm.HasServer() {
		m.ids = append(m.ids, dmutex.ServerID)
	}
	for pos, id := range m.ids {
		m.index[id] = pos
	}
	for _, from := range m.ids {
		var nbrs []int
		if from == dmutex.ServerID {
			nbrs = cfg.Algorithm.Neighbors(dmutex.ServerID, cfg.N)
		} else {
			nbrs = cfg.Algorithm.Neighbors(from, cfg.N)
		}
		for _, to := range nbrs {
			m.linkOf[[2]int{from, to}] = len(m.links)
			m.links = append(m.links, [2]int{from, to})
		}
	}
	return m
}

// initial builds the starting world: every node created and started (the
// token ring's first holder sends the token on).
func (m *model) initial() (*world, error) {
	w := &world{left: make([]int, m.cfg.N), links: make([][]flight, len(m.links))}
	for i := range w.left {
		w.left[i] = m.cfg.Entries
	}
	m.outbox = m.outbox[:0]
	for _, id := range m.ids {
		cfg := dmutex.Config{ID: id, N: m.cfg.N, Transport: dmutex.TransportFunc(m.send), Observe: m.observe}
		var n dmutex.Node
		var err error
		switch {
		case m.cfg.newNode != nil:
			n, err = m.cfg.newNode(cfg)
		case id == dmutex.ServerID:
			n, err = dmutex.NewServer(cfg)
		default:
			n, err = dmutex.New(m.cfg.Algorithm, cfg)
		}
		if err != nil {
			return nil, err
		}
		w.nodes = append(w.nodes, n)
	}
	for _, n := range w.nodes {
		if err := n.Start(); err != nil {
			return nil, err
		}
	}
	if err := m.post(w, -1); err != nil {
		return nil, err
	}
	return w, nil
}

func (m *model) send(msg dmutex.Message) error {
	m.outbox = append(m.outbox, msg)
	return nil
}

func (m *model) observe(e dmutex.Event) {
	if m.recording {
		m.events = append(m.events, e)
	}
}

// post moves what the last step sent onto its links; a message to a node
// the sender has no link to is the algorithm's error.
func (m *model) post(w *world, step int) error {
	for _, msg := range m.outbox {
		l, ok := m.linkOf[[2]int{msg.From, msg.To}]
		if !ok {
			return fmt.Errorf("%s sent %v to %s, which it has no link to", dmutex.Name(msg.From), msg.Kind, dmutex.Name(msg.To))
		}
		// Copy on write: the link's slice may be shared with the parent.
		w.links[l] = append(slices.Clip(w.links[l]), flight{m: msg, sentAt: step})
	}
	m.outbox = m.outbox[:0]
	return nil
}

func (w *world) proc(i int) dmutex.Process { return w.nodes[i].(dmutex.Process) }

// done reports whether every peer made all its entries and is out.
func (w *world) done() bool {
	for i, l := range w.left {
		if l > 0 || w.proc(i).State() != dmutex.Released {
			return false
		}
	}
	return true
}

// inside returns the peers in the critical section.
func (w *world) inside() []int {
	var in []int
	for i := range w.left {
		if w.proc(i).State() == dmutex.Held {
			in = append(in, i)
		}
	}
	return in
}

// transitions lists what can happen next, in a fixed order: requests,
// releases, then deliveries link by link. With unordered links, every
// message on a link can be next; equal messages count once.
func (m *model) transitions(w *world, out []transition) []transition {
	out = out[:0]
	for i, l := range w.left {
		switch w.proc(i).State() {
		case dmutex.Released:
			if l > 0 {
				out = append(out, transition{kind: StepRequest, proc: i})
			}
		case dmutex.Held:
			out = append(out, transition{kind: StepRelease, proc: i})
		}
	}
	for l, fl := range w.links {
		if len(fl) == 0 {
			continue
		}
		if !m.cfg.Unordered {
			out = append(out, transition{kind: StepDeliver, link: l})
			continue
		}
		for pos := range fl {
			if !slices.ContainsFunc(fl[:pos], func(f flight) bool { return f.m.Equal(fl[pos].m) }) {
				out = append(out, transition{kind: StepDeliver, link: l, pos: pos})
			}
		}
	}
	return out
}

// apply makes the world that t leads to. err is a process's refusal (a
// message it could not accept, a call in the wrong state) or a message
// sent where there is no link: either is the algorithm's error.
func (m *model) apply(w *world, t transition, step int) (next *world, delivered flight, err error) {
	next = &world{nodes: slices.Clone(w.nodes), left: slices.Clone(w.left), links: slices.Clone(w.links)}
	m.outbox = m.outbox[:0]
	switch t.kind {
	case StepRequest:
		p := next.nodes[t.proc].Clone()
		next.nodes[t.proc] = p
		err = p.(dmutex.Process).Request()
	case StepRelease:
		p := next.nodes[t.proc].Clone()
		next.nodes[t.proc] = p
		next.left[t.proc]--
		err = p.(dmutex.Process).Release()
	case StepDeliver:
		fl := next.links[t.link]
		delivered = fl[t.pos]
		rest := make([]flight, 0, len(fl)-1)
		rest = append(append(rest, fl[:t.pos]...), fl[t.pos+1:]...)
		next.links[t.link] = rest
		to := m.index[delivered.m.To]
		n := next.nodes[to].Clone()
		next.nodes[to] = n
		err = n.Handle(delivered.m)
	}
	if err != nil {
		return next, delivered, err
	}
	return next, delivered, m.post(next, step)
}

// encode appends the world's canonical form: each node's state, the
// entries left, and each link's messages (in order with FIFO links, as a
// sorted multiset without), each as the algorithm sees it.
func (m *model) encode(w *world) []byte {
	b := m.buf[:0]
	for _, n := range w.nodes {
		start := len(b)
		b = append(b, 0, 0) // length, patched below
		b = n.AppendState(b)
		binary.BigEndian.PutUint16(b[start:], uint16(len(b)-start-2))
	}
	for _, l := range w.left {
		b = binary.AppendUvarint(b, uint64(l))
	}
	a := m.cfg.Algorithm
	var forms [][]byte
	for _, fl := range w.links {
		b = binary.AppendUvarint(b, uint64(len(fl)))
		if !m.cfg.Unordered {
			for _, f := range fl {
				b = a.AppendCanonical(b, f.m)
			}
			continue
		}
		forms = forms[:0]
		for _, f := range fl {
			forms = append(forms, a.AppendCanonical(nil, f.m))
		}
		slices.SortFunc(forms, func(x, y []byte) int { return string2cmp(x, y) })
		for _, f := range forms {
			b = append(b, f...)
		}
	}
	m.buf = b
	return b
}

func string2cmp(x, y []byte) int {
	switch {
	case string(x) < string(y):
		return -1
	case string(x) > string(y):
		return 1
	}
	return 0
}
