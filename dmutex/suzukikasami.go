package dmutex

import "slices"

// suzukiKasami is one process of I. Suzuki and T. Kasami, "A Distributed
// Mutual Exclusion Algorithm", ACM Transactions on Computer Systems
// 3(4):344-349, 1985.
//
// One token exists (at process 0 at the start); its holder may enter. A
// process without it numbers its request (RN[i]++) and broadcasts REQUEST
// with that sequence number; every process remembers in RN[j] the highest
// number it has heard from j. The token carries LN[j], the number of j's
// last served request, and a queue of waiting processes. Leaving, the
// holder sets LN[i] = RN[i], appends every process with RN[j] = LN[j]+1
// (an unserved request) that is not yet queued, and sends the token to the
// head of the queue. An idle holder that hears an unserved request sends
// the token at once.
//
// An entry costs 0 messages (the process holds the token) or N: N-1
// REQUESTs and the TOKEN. The links need not be FIFO: a request that
// arrives late is recognised by its number. On the wire, REQUEST's number
// is the sequence number, and TOKEN carries LN and the queue (message.go);
// the token's own number is the sender's Lamport clock, kept for the event
// log only.
type suzukiKasami struct {
	node
	state    State
	reqTS    uint64 // Lamport clock at the request, for the log
	rn       [MaxProcs]uint64
	hasToken bool
	token    TokenState // valid while hasToken
}

var _ Process = (*suzukiKasami)(nil)

func newSuzukiKasami(nd node) *suzukiKasami {
	p := &suzukiKasami{node: nd}
	if nd.cfg.ID == 0 {
		p.hasToken = true
		p.token = TokenState{LN: make([]uint64, nd.cfg.N)}
	}
	return p
}

func (p *suzukiKasami) ID() int           { return p.cfg.ID }
func (p *suzukiKasami) State() State      { return p.state }
func (p *suzukiKasami) RequestTS() uint64 { return p.reqTS }
func (p *suzukiKasami) Start() error      { return nil }

// HasToken reports whether the token is here.
func (p *suzukiKasami) HasToken() bool { return p.hasToken }

// Awaiting is empty: a waiting process does not know who holds the token
// (the coordinator finds the holder from each process's token flag).
func (p *suzukiKasami) Awaiting() Set { return Set{} }

func (p *suzukiKasami) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	p.observe(Requested, -1, p.reqTS)
	if p.hasToken {
		p.enter()
		return nil
	}
	me := p.cfg.ID
	p.rn[me]++
	for j := range p.cfg.N {
		if j != me {
			p.send(Request, j, p.rn[me])
		}
	}
	return p.flush()
}

func (p *suzukiKasami) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	me := p.cfg.ID
	p.token.LN[me] = p.rn[me]
	for j := range p.cfg.N {
		if j != me && p.rn[j] == p.token.LN[j]+1 && !slices.Contains(p.token.Queue, j) {
			p.token.Queue = append(p.token.Queue, j)
		}
	}
	if len(p.token.Queue) > 0 {
		p.pass()
	}
	return p.flush()
}

func (p *suzukiKasami) Handle(m Message) error {
	if m.From < 0 || m.From >= p.cfg.N || m.From == p.cfg.ID {
		return unexpected(m, "not a peer of this run")
	}
	switch m.Kind {
	case Request:
		if m.Carried != nil || m.TS == 0 {
			return unexpected(m, "a request carries a sequence number and nothing else")
		}
		p.rn[m.From] = max(p.rn[m.From], m.TS)
		if p.hasToken && p.state == Released && p.rn[m.From] == p.token.LN[m.From]+1 {
			p.token.Queue = append(p.token.Queue, m.From)
			p.pass()
		}
		return p.flush()
	case Token:
		t := m.Carried
		switch {
		case p.hasToken:
			return unexpected(m, "a second token")
		case t == nil || len(t.LN) != p.cfg.N:
			return unexpected(m, "the token must carry one sequence number per process")
		case p.state != Wanted:
			return unexpected(m, "this process did not ask for the token")
		case len(t.Queue) > 0 && t.Queue[0] == p.cfg.ID:
			return unexpected(m, "the token's queue still names its receiver")
		}
		p.clock.See(m.TS)
		p.hasToken = true
		p.token = *t.Clone()
		p.observe(ReceivedToken, m.From, p.clock.Now())
		p.enter()
		return nil
	}
	return unexpected(m, "not a Suzuki-Kasami message")
}

func (p *suzukiKasami) enter() {
	p.state = Held
	p.observe(Entered, -1, p.clock.Now())
}

// pass sends the token to the head of its queue.
func (p *suzukiKasami) pass() {
	to := p.token.Queue[0]
	p.token.Queue = slices.Delete(p.token.Queue, 0, 1)
	p.hasToken = false
	ts := p.clock.Now()
	if p.observing() {
		p.emit(Event{Kind: PassedToken, Peer: to, TS: ts, Count: len(p.token.Queue)})
	}
	p.sendMessage(Message{Kind: Token, From: p.cfg.ID, To: to, TS: ts, Carried: p.token.Clone()})
	p.token = TokenState{}
}

func (p *suzukiKasami) Clone() Node {
	c := *p
	c.token = *p.token.Clone()
	return &c
}

// AppendState leaves the clock out: Suzuki-Kasami decides on sequence
// numbers only.
func (p *suzukiKasami) AppendState(dst []byte) []byte {
	dst = append(dst, byte(p.state))
	for j := range p.cfg.N {
		dst = appendUint(dst, p.rn[j])
	}
	dst = appendBool(dst, p.hasToken)
	if p.hasToken {
		for _, v := range p.token.LN {
			dst = appendUint(dst, v)
		}
		dst = appendInts(dst, p.token.Queue)
	}
	return dst
}
