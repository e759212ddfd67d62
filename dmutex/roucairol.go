package dmutex

import "slices"

// roucairolCarvalho is one process of the algorithm of O. S. F. Carvalho and
// G. Roucairol, "On Mutual Exclusion in Computer Networks", Communications
// of the ACM 26(2):146-148, 1983: Ricart-Agrawala in which a permission,
// once received, stays with its receiver until its giver asks for it.
//
// Between every two processes there is one permission, held by one of
// them (at the start, by the lower id). A process asks only those whose
// permission it does not hold, and enters once it holds all N-1. A process
// asked for a permission gives it (REPLY) unless it is inside or its own
// request is earlier in (timestamp, id) order; then it defers, as in
// Ricart-Agrawala. A waiting process that gives a permission away asks for
// it back at once, with its own (later) request.
//
// An entry costs between 0 messages (the process entered last and nobody
// asked since) and 2(N-1). Entries are not granted in timestamp order: a
// process holding every permission enters without asking, ahead of a
// request still on its way to it.
type roucairolCarvalho struct {
	node
	state      State
	reqTS      uint64
	perm       Set // processes whose permission this one holds
	awaiting   Set // processes asked for their permission by the current request
	deferred   Set
	deferredTS [MaxProcs]uint64
	order      []Stamp // scratch for Release
}

var _ Process = (*roucairolCarvalho)(nil)

func newRoucairolCarvalho(nd node) *roucairolCarvalho {
	p := &roucairolCarvalho{node: nd}
	for j := nd.cfg.ID + 1; j < nd.cfg.N; j++ {
		p.perm.Add(j)
	}
	return p
}

func (p *roucairolCarvalho) ID() int           { return p.cfg.ID }
func (p *roucairolCarvalho) State() State      { return p.state }
func (p *roucairolCarvalho) RequestTS() uint64 { return p.reqTS }
func (p *roucairolCarvalho) Awaiting() Set     { return p.awaiting }
func (p *roucairolCarvalho) Start() error      { return nil }

func (p *roucairolCarvalho) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	if p.observing() {
		e := Event{Kind: Requested, TS: p.reqTS}
		if k := p.perm.Len(); k > 0 {
			e.Why, e.Count = BecauseKept, k
		}
		p.emit(e)
	}
	for j := range p.cfg.N {
		if j != p.cfg.ID && !p.perm.Has(j) {
			p.awaiting.Add(j)
			p.send(Request, j, p.reqTS)
		}
	}
	p.enterIfAllowed()
	return p.flush()
}

func (p *roucairolCarvalho) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	p.order = p.order[:0]
	for _, j := range p.deferred.IDs() {
		p.order = append(p.order, Stamp{TS: p.deferredTS[j], ID: j})
	}
	slices.SortFunc(p.order, cmpStamp)
	for _, s := range p.order {
		p.perm.Remove(s.ID)
		ts := p.clock.Now()
		p.observe(SentDeferred, s.ID, ts)
		p.send(Reply, s.ID, ts)
	}
	p.deferred = Set{}
	return p.flush()
}

func (p *roucairolCarvalho) Handle(m Message) error {
	if m.From < 0 || m.From >= p.cfg.N || m.From == p.cfg.ID {
		return unexpected(m, "not a peer of this run")
	}
	switch m.Kind {
	case Request:
		if p.deferred.Has(m.From) {
			return unexpected(m, "a second request before the first was answered")
		}
		p.clock.See(m.TS)
		ahead := p.state == Held || p.state == Wanted && before(p.reqTS, p.cfg.ID, m.TS, m.From)
		if ahead {
			p.deferred.Add(m.From)
			p.deferredTS[m.From] = m.TS
			if p.observing() {
				e := Event{Kind: Deferred, Peer: m.From, TS: p.clock.Now(), Why: BecauseInside}
				if p.state == Wanted {
					e.Why, e.Other = BecauseEarlier, Stamp{TS: p.reqTS, ID: p.cfg.ID}
				}
				p.emit(e)
			}
			return nil
		}
		p.perm.Remove(m.From)
		ts := p.clock.Now()
		p.observe(Replied, m.From, ts)
		p.send(Reply, m.From, ts)
		if p.state == Wanted && !p.awaiting.Has(m.From) {
			// Our own request is later: ask for the permission back.
			p.awaiting.Add(m.From)
			p.send(Request, m.From, p.reqTS)
		}
		return p.flush()
	case Reply:
		if p.state != Wanted || !p.awaiting.Has(m.From) {
			return unexpected(m, "no request of ours is waiting for it")
		}
		p.clock.See(m.TS)
		p.awaiting.Remove(m.From)
		p.perm.Add(m.From)
		p.observe(ReceivedReply, m.From, p.clock.Now())
		p.enterIfAllowed()
		return nil
	}
	return unexpected(m, "not a Roucairol-Carvalho message")
}

func (p *roucairolCarvalho) enterIfAllowed() {
	if p.state == Wanted && p.awaiting.Empty() {
		p.state = Held
		p.observe(Entered, -1, p.clock.Now())
	}
}

func (p *roucairolCarvalho) Clone() Node {
	c := *p
	c.order = nil
	return &c
}

func (p *roucairolCarvalho) AppendState(dst []byte) []byte {
	dst = appendUint(dst, p.clock.Now())
	dst = append(dst, byte(p.state))
	dst = appendUint(dst, p.reqTS)
	dst = appendSet(dst, p.perm)
	dst = appendSet(dst, p.awaiting)
	dst = appendSet(dst, p.deferred)
	for _, j := range p.deferred.IDs() {
		dst = appendUint(dst, p.deferredTS[j])
	}
	return dst
}
