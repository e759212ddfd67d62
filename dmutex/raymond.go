package dmutex

import "slices"

// raymond is one process of K. Raymond, "A Tree-Based Algorithm for
// Distributed Mutual Exclusion", ACM Transactions on Computer Systems
// 7(1):61-77, 1989.
//
// The processes form a static tree (Tree: a binary heap of the ids) and
// pass one token along its edges; every process knows only which neighbour
// lies towards the token (its holder, itself when it has the token). A
// process that wants the token, for itself or for a neighbour that asked,
// puts the asker in its FIFO queue and, if it has not already, asks its
// holder with a REQUEST. The holder, when it does not use the token, sends
// it to the head of its queue, and asks for it back at once if its queue is
// not empty. Messages use the paper's procedures ASSIGN_PRIVILEGE and
// MAKE_REQUEST; the TOKEN is the paper's PRIVILEGE.
//
// A request climbs at most D edges (the tree's diameter) and the token
// comes down as many: an entry costs 0 to 2D messages, about 4 when every
// process is waiting (Raymond, section 4). The links need not be FIFO: a
// REQUEST that overtakes the TOKEN sent before it is queued, and served
// once the token arrives (the explorer finds no failure over unordered
// links for up to 5 processes making 2 entries each).
type raymond struct {
	node
	state  State
	reqTS  uint64
	holder int   // the neighbour towards the token, or this process
	queue  []int // who asked: neighbours, or this process
	asked  bool  // a REQUEST to holder is outstanding
}

var _ Process = (*raymond)(nil)

func newRaymond(nd node) *raymond {
	t := NewTree(nd.cfg.N)
	p := &raymond{node: nd, holder: t.Parent(nd.cfg.ID)}
	if p.holder < 0 {
		p.holder = nd.cfg.ID
	}
	return p
}

func (p *raymond) ID() int           { return p.cfg.ID }
func (p *raymond) State() State      { return p.state }
func (p *raymond) RequestTS() uint64 { return p.reqTS }
func (p *raymond) Start() error      { return nil }

// HasToken reports whether the token is here.
func (p *raymond) HasToken() bool { return p.holder == p.cfg.ID }

// Awaiting is the neighbour towards the token, while this process waits
// for it.
func (p *raymond) Awaiting() Set {
	var s Set
	if p.state == Wanted && p.holder != p.cfg.ID {
		s.Add(p.holder)
	}
	return s
}

func (p *raymond) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	p.observe(Requested, -1, p.reqTS)
	p.queue = append(p.queue, p.cfg.ID)
	p.assignPrivilege()
	p.makeRequest()
	return p.flush()
}

func (p *raymond) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	p.assignPrivilege()
	p.makeRequest()
	return p.flush()
}

func (p *raymond) Handle(m Message) error {
	if !slices.Contains(treeNeighbors(p.cfg.ID, p.cfg.N), m.From) {
		return unexpected(m, "not a neighbour in the tree")
	}
	switch m.Kind {
	case Request:
		if m.Carried != nil || slices.Contains(p.queue, m.From) {
			return unexpected(m, "a second request from a neighbour already queued")
		}
		p.clock.See(m.TS)
		p.queue = append(p.queue, m.From)
		p.observe(Queued, m.From, p.clock.Now())
	case Token:
		if m.Carried != nil || p.holder != m.From {
			return unexpected(m, "the token comes only from the neighbour towards it")
		}
		p.clock.See(m.TS)
		p.holder = p.cfg.ID
		p.observe(ReceivedToken, m.From, p.clock.Now())
	default:
		return unexpected(m, "not a Raymond message")
	}
	p.assignPrivilege()
	p.makeRequest()
	return p.flush()
}

// assignPrivilege is the paper's ASSIGN_PRIVILEGE: an unused token goes to
// the head of the queue.
func (p *raymond) assignPrivilege() {
	if p.holder != p.cfg.ID || p.state == Held || len(p.queue) == 0 {
		return
	}
	p.holder = p.queue[0]
	p.queue = slices.Delete(p.queue, 0, 1)
	p.asked = false
	if p.holder == p.cfg.ID {
		p.state = Held
		p.observe(Entered, -1, p.clock.Now())
		return
	}
	ts := p.clock.Now()
	p.observe(PassedToken, p.holder, ts)
	p.send(Token, p.holder, ts)
}

// makeRequest is the paper's MAKE_REQUEST: ask the holder, once, while
// anyone here waits.
func (p *raymond) makeRequest() {
	if p.holder == p.cfg.ID || len(p.queue) == 0 || p.asked {
		return
	}
	p.asked = true
	ts := p.clock.Now()
	p.observe(AskedHolder, p.holder, ts)
	p.send(Request, p.holder, ts)
}

func (p *raymond) Clone() Node {
	c := *p
	c.queue = slices.Clone(p.queue)
	return &c
}

// AppendState leaves the clock out: Raymond's algorithm has no timestamps.
func (p *raymond) AppendState(dst []byte) []byte {
	dst = append(dst, byte(p.state))
	dst = appendInt(dst, p.holder)
	dst = appendInts(dst, p.queue)
	return appendBool(dst, p.asked)
}
