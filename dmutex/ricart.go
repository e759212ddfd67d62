package dmutex

import "slices"

// ricartAgrawala is one process of Ricart and Agrawala's algorithm (1981).
//
// To enter, a process stamps a request with its Lamport clock and sends it to
// every other process, then waits for all N-1 replies. A process receiving a
// request replies at once unless it is in the critical section, or wants it
// and its own request is earlier in (timestamp, id) order; then it defers the
// reply until it leaves. Each entry costs exactly 2(N-1) messages, and
// processes enter in the total order of their requests' (timestamp, id).
//
// With skipDeferral (the Broken algorithm) the process replies at once to
// every request: any two requesters can then enter together.
type ricartAgrawala struct {
	node
	state        State
	reqTS        uint64
	awaiting     Set // processes whose reply the current request still needs
	deferred     Set // processes whose requests this process answers on exit
	deferredTS   [MaxIDs]uint64
	order        []Stamp // scratch for Release
	skipDeferral bool
}

var _ Process = (*ricartAgrawala)(nil)

func (p *ricartAgrawala) ID() int           { return p.cfg.ID }
func (p *ricartAgrawala) State() State      { return p.state }
func (p *ricartAgrawala) RequestTS() uint64 { return p.reqTS }
func (p *ricartAgrawala) Awaiting() Set     { return p.awaiting }
func (p *ricartAgrawala) Start() error      { return nil }

func (p *ricartAgrawala) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
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

func (p *ricartAgrawala) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	// Reply in the order of the deferred requests: the earliest is the next
	// one in, and each reply costs a system call, so it goes first.
	p.order = p.order[:0]
	for _, j := range p.deferred.IDs() {
		p.order = append(p.order, Stamp{TS: p.deferredTS[j], ID: j})
	}
	slices.SortFunc(p.order, func(a, b Stamp) int {
		if a.Less(b) {
			return -1
		}
		return 1
	})
	for _, s := range p.order {
		ts := p.clock.Now()
		p.observe(SentDeferred, s.ID, ts)
		p.send(Reply, s.ID, ts)
	}
	p.deferred = Set{}
	return p.flush()
}

func (p *ricartAgrawala) Handle(m Message) error {
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
		if ahead && !p.skipDeferral {
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
		ts := p.clock.Now()
		p.observe(Replied, m.From, ts)
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
	}
	return unexpected(m, "not a Ricart-Agrawala message")
}

func (p *ricartAgrawala) Clone() Node {
	c := *p
	c.order = nil
	return &c
}

func (p *ricartAgrawala) AppendState(dst []byte) []byte {
	dst = appendUint(dst, p.clock.Now())
	dst = append(dst, byte(p.state))
	dst = appendUint(dst, p.reqTS)
	dst = appendSet(dst, p.awaiting)
	dst = appendSet(dst, p.deferred)
	for _, j := range p.deferred.IDs() {
		dst = appendUint(dst, p.deferredTS[j])
	}
	return dst
}

func (p *ricartAgrawala) enterIfAllowed() {
	if p.state == Wanted && p.awaiting.Empty() {
		p.state = Held
		p.observe(Entered, -1, p.clock.Now())
	}
}
