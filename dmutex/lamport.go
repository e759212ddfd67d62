package dmutex

import "slices"

// lamportProc is one process of Lamport's mutual exclusion algorithm:
// L. Lamport, "Time, Clocks, and the Ordering of Events in a Distributed
// System", Communications of the ACM 21(7):558-565, 1978 (section "The
// mutual exclusion problem").
//
// Every process keeps a queue of every request it knows of, ordered by
// (Lamport timestamp, id). To enter, a process puts its request in its own
// queue and sends REQUEST to every other process, which queues it and
// answers with a REPLY (Lamport's acknowledgement). It enters when its
// request heads its own queue and it has heard from every other process
// since the request (the replies): over FIFO links nothing earlier can
// still be on its way. On leaving it removes its request and sends RELEASE
// to every other process, which removes it too.
//
// Each entry costs exactly 3(N-1) messages; entries are granted in
// (timestamp, id) order. The links must be FIFO: a REPLY overtaking the
// sender's own earlier REQUEST would let both in.
type lamportProc struct {
	node
	state    State
	reqTS    uint64
	awaiting Set     // processes whose reply the current request still needs
	queue    []Stamp // every known request, own included, in (ts, id) order
}

var _ Process = (*lamportProc)(nil)

func newLamport(nd node) *lamportProc { return &lamportProc{node: nd} }

func (p *lamportProc) ID() int           { return p.cfg.ID }
func (p *lamportProc) State() State      { return p.state }
func (p *lamportProc) RequestTS() uint64 { return p.reqTS }
func (p *lamportProc) Start() error      { return nil }

// Awaiting is the processes whose reply is missing and, once every reply is
// in, those whose requests are ahead in the queue.
func (p *lamportProc) Awaiting() Set {
	if p.state != Wanted {
		return Set{}
	}
	s := p.awaiting
	for _, q := range p.queue {
		if q.ID == p.cfg.ID {
			break
		}
		s.Add(q.ID)
	}
	return s
}

func (p *lamportProc) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	p.insert(Stamp{TS: p.reqTS, ID: p.cfg.ID})
	p.observe(Requested, -1, p.reqTS)
	for j := range p.cfg.N {
		if j != p.cfg.ID {
			p.awaiting.Add(j)
			p.send(Request, j, p.reqTS)
		}
	}
	p.enterIfAllowed()
	return p.flush()
}

func (p *lamportProc) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.remove(p.cfg.ID)
	p.observe(Exited, -1, p.clock.Now())
	ts := p.clock.Now()
	for j := range p.cfg.N {
		if j != p.cfg.ID {
			p.send(ReleaseLock, j, ts)
		}
	}
	return p.flush()
}

func (p *lamportProc) Handle(m Message) error {
	if m.From < 0 || m.From >= p.cfg.N || m.From == p.cfg.ID {
		return unexpected(m, "not a peer of this run")
	}
	switch m.Kind {
	case Request:
		if p.find(m.From) >= 0 {
			return unexpected(m, "a second request before the first was released")
		}
		p.clock.See(m.TS)
		p.insert(Stamp{TS: m.TS, ID: m.From})
		ts := p.clock.Now()
		if p.observing() {
			p.emit(Event{Kind: Acknowledged, Peer: m.From, TS: ts, Other: Stamp{TS: m.TS, ID: m.From}})
		}
		p.send(Reply, m.From, ts)
		return p.flush()
	case Reply:
		if p.state != Wanted || !p.awaiting.Has(m.From) {
			return unexpected(m, "no request of ours is waiting for it")
		}
		p.clock.See(m.TS)
		p.awaiting.Remove(m.From)
		p.observe(ReceivedReply, m.From, p.clock.Now())
		p.enterIfAllowed()
		return nil
	case ReleaseLock:
		if p.find(m.From) < 0 {
			return unexpected(m, "no request of the sender is queued")
		}
		p.clock.See(m.TS)
		p.remove(m.From)
		p.observe(ReceivedRelease, m.From, p.clock.Now())
		p.enterIfAllowed()
		return nil
	}
	return unexpected(m, "not a Lamport message")
}

func (p *lamportProc) enterIfAllowed() {
	if p.state == Wanted && p.awaiting.Empty() && p.queue[0].ID == p.cfg.ID {
		p.state = Held
		p.observe(Entered, -1, p.clock.Now())
	}
}

func (p *lamportProc) insert(s Stamp) {
	i, _ := slices.BinarySearchFunc(p.queue, s, cmpStamp)
	p.queue = slices.Insert(p.queue, i, s)
}

func (p *lamportProc) find(id int) int {
	return slices.IndexFunc(p.queue, func(s Stamp) bool { return s.ID == id })
}

func (p *lamportProc) remove(id int) {
	if i := p.find(id); i >= 0 {
		p.queue = slices.Delete(p.queue, i, i+1)
	}
}

func (p *lamportProc) Clone() Node {
	c := *p
	c.queue = slices.Clone(p.queue)
	return &c
}

func (p *lamportProc) AppendState(dst []byte) []byte {
	dst = appendUint(dst, p.clock.Now())
	dst = append(dst, byte(p.state))
	dst = appendUint(dst, p.reqTS)
	dst = appendSet(dst, p.awaiting)
	dst = appendUint(dst, uint64(len(p.queue)))
	for _, s := range p.queue {
		dst = appendInt(appendUint(dst, s.TS), s.ID)
	}
	return dst
}

func cmpStamp(a, b Stamp) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}
