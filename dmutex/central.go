package dmutex

// centralClient is a peer of the central algorithm: it sends REQUEST to the
// lock server, enters on GRANT, and sends RELEASE when it leaves. Three
// messages per entry, whatever the number of peers.
type centralClient struct {
	node
	state State
	reqTS uint64
}

var _ Process = (*centralClient)(nil)

func (p *centralClient) ID() int           { return p.cfg.ID }
func (p *centralClient) State() State      { return p.state }
func (p *centralClient) RequestTS() uint64 { return p.reqTS }
func (p *centralClient) Start() error      { return nil }

func (p *centralClient) Awaiting() Set {
	var s Set
	if p.state == Wanted {
		s.Add(ServerID)
	}
	return s
}

func (p *centralClient) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	p.observe(Requested, -1, p.reqTS)
	p.send(Request, ServerID, p.reqTS)
	return p.flush()
}

func (p *centralClient) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	p.send(ReleaseLock, ServerID, p.clock.Now())
	return p.flush()
}

func (p *centralClient) Handle(m Message) error {
	if m.Kind != Grant || m.From != ServerID {
		return unexpected(m, "a central client takes only GRANT from the server")
	}
	if p.state != Wanted {
		return unexpected(m, "this process is not waiting")
	}
	p.clock.See(m.TS)
	p.state = Held
	p.observe(Entered, -1, p.clock.Now())
	return nil
}

// centralServer is the central algorithm's lock server: it grants the
// critical section to one requester at a time, in the order the requests
// arrived.
type centralServer struct {
	node
	holder int // -1 when free
	queue  []int
	queued Set
}

var _ LockServer = (*centralServer)(nil)

func (s *centralServer) Start() error { return nil }

func (s *centralServer) Handle(m Message) error {
	if m.From < 0 || m.From >= s.cfg.N {
		return unexpected(m, "not a peer of this run")
	}
	switch m.Kind {
	case Request:
		// A request from the holder is its next one, overtaking its
		// RELEASE on a link that does not keep order: queue it.
		if s.queued.Has(m.From) {
			return unexpected(m, "this peer already waits for the lock")
		}
		s.clock.See(m.TS)
		if s.holder < 0 {
			s.grant(m.From)
		} else {
			s.queue = append(s.queue, m.From)
			s.queued.Add(m.From)
			s.observe(Queued, m.From, s.clock.Now())
		}
		return s.flush()
	case ReleaseLock:
		if m.From != s.holder {
			return unexpected(m, "this peer does not hold the lock")
		}
		s.clock.See(m.TS)
		s.holder = -1
		if len(s.queue) > 0 {
			next := s.queue[0]
			s.queue = s.queue[1:]
			s.queued.Remove(next)
			s.grant(next)
		}
		return s.flush()
	}
	return unexpected(m, "the server takes only REQUEST and RELEASE")
}

func (s *centralServer) grant(to int) {
	s.holder = to
	ts := s.clock.Now()
	s.observe(Granted, to, ts)
	s.send(Grant, to, ts)
}

func (s *centralServer) Holder() int { return s.holder }

func (s *centralServer) Clone() Node {
	c := *s
	c.queue = append([]int(nil), s.queue...)
	return &c
}

// AppendState leaves the clock out: the server decides on arrival order.
func (s *centralServer) AppendState(dst []byte) []byte {
	return appendInts(appendInt(dst, s.holder), s.queue)
}

func (p *centralClient) Clone() Node { c := *p; return &c }

func (p *centralClient) AppendState(dst []byte) []byte { return append(dst, byte(p.state)) }
