package dmutex

// tokenRing is a process of the token ring: one token travels from each
// process to the next (id+1 mod N). A process holding the token may enter;
// it passes the token on when it leaves, or at once when it does not want
// the critical section. Process 0 holds the token at the start.
//
// An entry costs between one message (every process wants the token) and
// any number (nobody does, and the token keeps travelling), and a waiting
// process waits for up to N-1 hops.
type tokenRing struct {
	node
	state    State
	reqTS    uint64
	hasToken bool
}

var _ Process = (*tokenRing)(nil)

func (p *tokenRing) ID() int           { return p.cfg.ID }
func (p *tokenRing) State() State      { return p.state }
func (p *tokenRing) RequestTS() uint64 { return p.reqTS }

func (p *tokenRing) next() int { return (p.cfg.ID + 1) % p.cfg.N }
func (p *tokenRing) prev() int { return (p.cfg.ID + p.cfg.N - 1) % p.cfg.N }

// HasToken reports whether the token is here.
func (p *tokenRing) HasToken() bool { return p.hasToken }

func (p *tokenRing) Awaiting() Set {
	var s Set
	if p.state == Wanted {
		s.Add(p.prev())
	}
	return s
}

func (p *tokenRing) Start() error {
	if p.cfg.ID != 0 {
		return nil
	}
	p.hasToken = true
	if p.state == Wanted {
		p.enter()
		return nil
	}
	if p.state == Released {
		p.pass()
	}
	return p.flush()
}

func (p *tokenRing) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	p.observe(Requested, -1, p.reqTS)
	if p.hasToken {
		p.enter()
	}
	return nil
}

func (p *tokenRing) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	p.pass()
	return p.flush()
}

func (p *tokenRing) Handle(m Message) error {
	if m.Kind != Token || m.Carried != nil {
		return unexpected(m, "the token ring passes only a plain TOKEN")
	}
	if m.From != p.prev() {
		return unexpected(m, "the token comes only from the previous process")
	}
	if p.hasToken {
		return unexpected(m, "a second token")
	}
	p.clock.See(m.TS)
	p.hasToken = true
	p.observe(ReceivedToken, m.From, p.clock.Now())
	if p.state == Wanted {
		p.enter()
		return nil
	}
	p.pass()
	return p.flush()
}

func (p *tokenRing) enter() {
	p.state = Held
	p.observe(Entered, -1, p.clock.Now())
}

func (p *tokenRing) pass() {
	p.hasToken = false
	ts := p.clock.Now()
	p.observe(PassedToken, p.next(), ts)
	p.send(Token, p.next(), ts)
}

func (p *tokenRing) Clone() Node { c := *p; return &c }

// AppendState leaves the clock out: the ring decides nothing on it.
func (p *tokenRing) AppendState(dst []byte) []byte {
	return appendBool(append(dst, byte(p.state)), p.hasToken)
}
