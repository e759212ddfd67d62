package dmutex

import (
	"errors"
	"slices"
)

// maekawa is one process of Maekawa's algorithm: M. Maekawa, "A sqrt(N)
// Algorithm for Mutual Exclusion in Decentralized Systems", ACM
// Transactions on Computer Systems 3(2):145-159, 1985.
//
// Every process has a quorum (its row and column on a Grid, itself
// included), and any two quorums share a member. Every process is also a
// voter with one vote, which it locks for one request at a time. To enter,
// a process sends REQUEST to its quorum and enters once every member
// answered LOCKED; on leaving it sends RELEASE, and each member locks its
// vote for the earliest request it has queued.
//
// Votes alone can deadlock: two requesters each hold a vote the other
// needs (see MaekawaNaive). Maekawa's remedy, as here: a voter whose vote
// is locked answers a later request with FAILED, and an earlier one by
// asking the holder of its vote to give it back (INQUIRE, once per vote).
// A requester that got a FAILED (or gave a vote back) cannot win yet and
// gives the vote back (RELINQUISH) at once; one that may still win keeps
// the INQUIRE until a FAILED comes (then gives the vote) or until it
// enters (then its RELEASE answers). A voter also sends FAILED to a queued
// request that an earlier arrival pushed out of the head of its queue
// (B. Sanders, "The Information Structure of Distributed Mutual Exclusion
// Algorithms", ACM TOCS 5(3):284-299, 1987, shows what goes wrong without
// it), so every requester that cannot win is told.
//
// Messages to itself (it is in its own quorum) are handled at once and not
// sent. An entry costs 3(K-1) messages for K quorum members when nobody
// else asks, and up to about 5(K-1) under contention (FAILED, INQUIRE,
// RELINQUISH and a second LOCKED). The links must be FIFO: a voter's
// INQUIRE must not overtake the LOCKED it is about. Every message's number
// is the timestamp of the request it is about, so that an INQUIRE that
// crossed the requester's RELEASE is recognised as stale and dropped.
//
// With naive set (MaekawaNaive), a voter only queues the requests it
// cannot vote for, and nobody gives a vote back.
type maekawa struct {
	node
	naive  bool
	quorum []int // shared, never modified
	local  []Message

	// As a requester.
	state     State
	reqTS     uint64
	votes     Set // members whose vote is locked for the current request
	failed    Set // members that said FAILED, or got their vote back, since they last voted for it
	inquiries Set // members whose INQUIRE waits for the outcome

	// As a voter.
	locked    bool
	lockedFor Stamp
	inquired  bool    // an INQUIRE went to the holder of the vote
	queue     []Stamp // requests waiting for the vote, in (ts, id) order
	toldFail  Set     // queued requesters told FAILED
}

var _ Process = (*maekawa)(nil)

func newMaekawa(nd node, full bool) *maekawa {
	return &maekawa{node: nd, naive: !full, quorum: NewGrid(nd.cfg.N).Quorum(nd.cfg.ID)}
}

func (p *maekawa) ID() int           { return p.cfg.ID }
func (p *maekawa) State() State      { return p.state }
func (p *maekawa) RequestTS() uint64 { return p.reqTS }
func (p *maekawa) Start() error      { return nil }

// Awaiting is the quorum members whose vote is missing; for its own vote,
// the process it is locked for.
func (p *maekawa) Awaiting() Set {
	var s Set
	if p.state != Wanted {
		return s
	}
	for _, m := range p.quorum {
		switch {
		case p.votes.Has(m):
		case m == p.cfg.ID && p.locked:
			s.Add(p.lockedFor.ID)
		default:
			s.Add(m)
		}
	}
	return s
}

// post sends m, or queues it for this process itself.
func (p *maekawa) post(k Kind, to int, ts uint64) {
	if to == p.cfg.ID {
		p.local = append(p.local, Message{Kind: k, From: to, To: to, TS: ts})
		return
	}
	p.send(k, to, ts)
}

// drain handles the messages this process sent itself, and collects the
// send errors.
func (p *maekawa) drain() error {
	var errs error
	for len(p.local) > 0 {
		m := p.local[0]
		p.local = p.local[1:]
		if err := p.handle(m); err != nil {
			errs = errors.Join(errs, err)
		}
	}
	p.local = p.local[:0]
	return errors.Join(errs, p.flush())
}

func (p *maekawa) Request() error {
	if p.state != Released {
		return ErrState
	}
	p.state = Wanted
	p.reqTS = p.clock.Next()
	p.votes, p.failed, p.inquiries = Set{}, Set{}, Set{}
	p.observe(Requested, -1, p.reqTS)
	for _, m := range p.quorum {
		p.post(Request, m, p.reqTS)
	}
	return p.drain()
}

func (p *maekawa) Release() error {
	if p.state != Held {
		return ErrState
	}
	p.state = Released
	p.observe(Exited, -1, p.clock.Now())
	p.votes, p.failed, p.inquiries = Set{}, Set{}, Set{}
	for _, m := range p.quorum {
		p.post(ReleaseLock, m, p.reqTS)
	}
	return p.drain()
}

func (p *maekawa) Handle(m Message) error {
	if m.From < 0 || m.From >= p.cfg.N || m.From == p.cfg.ID || !slices.Contains(p.quorum, m.From) {
		return unexpected(m, "not a member of this process's quorum")
	}
	if err := p.check(m); err != nil {
		return err
	}
	return errors.Join(p.handle(m), p.drain())
}

// check refuses, before anything changes, a message this process cannot
// accept in its state.
func (p *maekawa) check(m Message) error {
	current := p.state == Wanted && m.TS == p.reqTS
	switch m.Kind {
	case Request:
		if p.locked && p.lockedFor.ID == m.From || slices.ContainsFunc(p.queue, func(s Stamp) bool { return s.ID == m.From }) {
			return unexpected(m, "a second request before the first was released")
		}
	case Locked:
		if !current || p.votes.Has(m.From) {
			return unexpected(m, "no request of ours waits for this vote")
		}
	case Failed, Inquire, Relinquish:
		if p.naive {
			return unexpected(m, "the naive variant has no "+m.Kind.String())
		}
		switch {
		case m.Kind == Failed && (!current || p.votes.Has(m.From)):
			return unexpected(m, "no request of ours waits for this voter")
		case m.Kind == Inquire && current && !p.votes.Has(m.From):
			return unexpected(m, "an INQUIRE about a vote we do not hold")
		case m.Kind == Relinquish && (!p.locked || p.lockedFor != Stamp{TS: m.TS, ID: m.From}):
			return unexpected(m, "our vote is not locked for that request")
		}
	case ReleaseLock:
		if !p.locked || p.lockedFor != (Stamp{TS: m.TS, ID: m.From}) {
			return unexpected(m, "our vote is not locked for that request")
		}
	default:
		return unexpected(m, "not a Maekawa message")
	}
	return nil
}

// handle takes a checked message, from another process or from itself.
func (p *maekawa) handle(m Message) error {
	switch m.Kind {
	// As a voter.
	case Request:
		p.clock.See(m.TS)
		p.onRequest(Stamp{TS: m.TS, ID: m.From})
	case Relinquish:
		p.insert(p.lockedFor)
		p.toldFail.Add(p.lockedFor.ID) // it knows it cannot win: it said so
		p.locked = false
		p.voteNext()
	case ReleaseLock:
		if m.From != p.cfg.ID {
			p.observe(ReceivedRelease, m.From, p.clock.Now())
		}
		p.locked = false
		p.voteNext()

	// As a requester.
	case Locked:
		p.votes.Add(m.From)
		p.failed.Remove(m.From)
		if p.observing() && m.From != p.cfg.ID {
			p.emit(Event{Kind: ReceivedVote, Peer: m.From, TS: p.clock.Now(), Count: p.votes.Len()})
		}
		if p.votes.Len() == len(p.quorum) {
			p.state = Held
			p.inquiries = Set{} // the RELEASE answers them
			p.observe(Entered, -1, p.clock.Now())
		}
	case Failed:
		p.failed.Add(m.From)
		if m.From != p.cfg.ID {
			p.observe(ReceivedFailed, m.From, p.clock.Now())
		}
		for _, v := range p.inquiries.IDs() {
			p.relinquish(v)
		}
	case Inquire:
		if p.state != Wanted || m.TS != p.reqTS {
			return nil // about a request already released (crossed our RELEASE), or we are inside: the RELEASE answers
		}
		if !p.failed.Empty() {
			p.relinquish(m.From)
			return nil
		}
		p.inquiries.Add(m.From)
		p.observe(KeptVote, m.From, p.clock.Now())
	}
	return nil
}

func (p *maekawa) onRequest(r Stamp) {
	if !p.locked {
		p.vote(r)
		return
	}
	p.insert(r)
	if p.naive {
		p.observe(Queued, r.ID, p.clock.Now())
		return
	}
	head := p.queue[0]
	if p.lockedFor.Less(r) || head != r {
		// Something earlier holds or waits for the vote.
		earlier := p.lockedFor
		if head.Less(earlier) {
			earlier = head
		}
		p.fail(r, earlier)
		return
	}
	// r is the earliest of all: whoever headed the queue before cannot
	// win here now, and the holder is asked for the vote back.
	if len(p.queue) > 1 && !p.toldFail.Has(p.queue[1].ID) {
		p.fail(p.queue[1], r)
	}
	if !p.inquired {
		p.inquired = true
		if p.observing() && p.lockedFor.ID != p.cfg.ID {
			p.emit(Event{Kind: Inquired, Peer: p.lockedFor.ID, TS: p.clock.Now(), Other: r})
		}
		p.post(Inquire, p.lockedFor.ID, p.lockedFor.TS)
	}
}

func (p *maekawa) fail(r, earlier Stamp) {
	p.toldFail.Add(r.ID)
	if p.observing() && r.ID != p.cfg.ID {
		p.emit(Event{Kind: SentFailed, Peer: r.ID, TS: p.clock.Now(), Other: earlier})
	}
	p.post(Failed, r.ID, r.TS)
}

// voteNext locks the free vote for the earliest queued request.
func (p *maekawa) voteNext() {
	p.inquired = false
	if len(p.queue) == 0 {
		return
	}
	r := p.queue[0]
	p.queue = slices.Delete(p.queue, 0, 1)
	p.vote(r)
}

func (p *maekawa) vote(r Stamp) {
	p.locked, p.lockedFor, p.inquired = true, r, false
	p.toldFail.Remove(r.ID)
	if p.observing() {
		p.emit(Event{Kind: Voted, Peer: r.ID, TS: p.clock.Now(), Other: r})
	}
	p.post(Locked, r.ID, r.TS)
}

func (p *maekawa) relinquish(v int) {
	p.votes.Remove(v)
	p.failed.Add(v)
	p.inquiries.Remove(v)
	if v != p.cfg.ID {
		p.observe(Relinquished, v, p.clock.Now())
	}
	p.post(Relinquish, v, p.reqTS)
}

func (p *maekawa) insert(s Stamp) {
	i, _ := slices.BinarySearchFunc(p.queue, s, cmpStamp)
	p.queue = slices.Insert(p.queue, i, s)
}

func (p *maekawa) Clone() Node {
	c := *p
	c.local = nil
	c.queue = slices.Clone(p.queue)
	return &c
}

func (p *maekawa) AppendState(dst []byte) []byte {
	dst = appendUint(dst, p.clock.Now())
	dst = append(dst, byte(p.state))
	dst = appendUint(dst, p.reqTS)
	dst = appendSet(dst, p.votes)
	dst = appendSet(dst, p.failed)
	dst = appendSet(dst, p.inquiries)
	dst = appendBool(dst, p.locked)
	dst = appendInt(appendUint(dst, p.lockedFor.TS), p.lockedFor.ID)
	dst = appendBool(dst, p.inquired)
	dst = appendUint(dst, uint64(len(p.queue)))
	for _, s := range p.queue {
		dst = appendInt(appendUint(dst, s.TS), s.ID)
	}
	return appendSet(dst, p.toldFail)
}
