package dmutex

import (
	"errors"
	"testing"
)

// cluster is a hand-driven set of processes: tests deliver the messages one
// by one, in the order they choose.
type cluster struct {
	t      *testing.T
	procs  []Process
	server Node
	queue  []Message
	sent   []Message // every message ever sent
	events []Event
}

func newCluster(t *testing.T, a Algorithm, n int) *cluster {
	c := &cluster{t: t}
	send := TransportFunc(func(m Message) error {
		c.queue = append(c.queue, m)
		c.sent = append(c.sent, m)
		return nil
	})
	observe := func(e Event) { c.events = append(c.events, e) }
	for i := range n {
		p, err := New(a, Config{ID: i, N: n, Transport: send, Observe: observe})
		if err != nil {
			t.Fatal(err)
		}
		c.procs = append(c.procs, p)
	}
	if a.HasServer() {
		s, err := NewServer(Config{ID: ServerID, N: n, Transport: send, Observe: observe})
		if err != nil {
			t.Fatal(err)
		}
		c.server = s
	}
	return c
}

// take removes and returns the first queued message matching kind, from, to.
func (c *cluster) take(k Kind, from, to int) Message {
	c.t.Helper()
	for i, m := range c.queue {
		if m.Kind == k && m.From == from && m.To == to {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return m
		}
	}
	c.t.Fatalf("no %v from %s to %s in flight; in flight: %v", k, Name(from), Name(to), c.queue)
	return Message{}
}

func (c *cluster) deliver(m Message) {
	c.t.Helper()
	var err error
	if m.To == ServerID {
		err = c.server.Handle(m)
	} else {
		err = c.procs[m.To].Handle(m)
	}
	if err != nil {
		c.t.Fatalf("%s handling %v: %v", Name(m.To), m, err)
	}
}

func (c *cluster) pass(k Kind, from, to int) { c.t.Helper(); c.deliver(c.take(k, from, to)) }

// settle delivers the oldest message in flight until none is left: FIFO
// links, one message at a time.
func (c *cluster) settle() {
	c.t.Helper()
	for i := 0; len(c.queue) > 0; i++ {
		if i > 100000 {
			c.t.Fatalf("messages still in flight after %d deliveries: %v", i, c.queue)
		}
		m := c.queue[0]
		c.queue = c.queue[1:]
		c.deliver(m)
	}
}

func (c *cluster) log() []string {
	var out []string
	for _, e := range c.events {
		out = append(out, e.String())
	}
	return out
}

// TestRicartAgrawalaConcurrentRequests walks the textbook case: P0 and P1
// request at the same Lamport time; P0 wins the tie by id, P1 waits for P0's
// deferred reply.
func TestRicartAgrawalaConcurrentRequests(t *testing.T) {
	c := newCluster(t, RicartAgrawala, 3)
	p0, p1, p2 := c.procs[0], c.procs[1], c.procs[2]
	must(t, p0.Request())
	must(t, p1.Request())
	if p0.RequestTS() != 1 || p1.RequestTS() != 1 {
		t.Fatalf("request timestamps %d and %d, want 1 and 1", p0.RequestTS(), p1.RequestTS())
	}
	c.pass(Request, 1, 0) // P0 is ahead (ts 1, id 0 < id 1): defers P1
	c.pass(Request, 0, 1) // P1 is behind: replies to P0
	c.pass(Request, 0, 2)
	c.pass(Request, 1, 2)
	c.pass(Reply, 2, 0)
	if p0.State() != Wanted || !p0.Awaiting().Has(1) {
		t.Fatalf("P0 %v awaiting %v, want wanted awaiting P1", p0.State(), p0.Awaiting())
	}
	c.pass(Reply, 1, 0)
	if p0.State() != Held {
		t.Fatalf("P0 %v after every reply, want held", p0.State())
	}
	c.pass(Reply, 2, 1)
	if p1.State() != Wanted || p1.Awaiting() != setOf(0) {
		t.Fatalf("P1 %v awaiting %v, want wanted awaiting {P0}", p1.State(), p1.Awaiting())
	}
	must(t, p0.Release())
	c.pass(Reply, 0, 1)
	if p1.State() != Held {
		t.Fatalf("P1 %v after P0's deferred reply, want held", p1.State())
	}
	if len(c.queue) != 0 {
		t.Errorf("messages left over: %v", c.queue)
	}
	if p2.State() != Released {
		t.Errorf("P2 %v, want released", p2.State())
	}
	want := []string{
		"P0 requested the critical section at ts 1",
		"P1 requested the critical section at ts 1",
		"P0 deferred P1: P0's own request (ts 1, P0) is earlier",
		"P1 replied to P0",
		"P2 replied to P0",
		"P2 replied to P1",
		"P0 received a reply from P2",
		"P0 received a reply from P1",
		"P0 is in the critical section",
		"P1 received a reply from P2",
		"P0 released the critical section",
		"P0 sent its deferred reply to P1",
		"P1 received a reply from P0",
		"P1 is in the critical section",
	}
	got := c.log()
	if len(got) != len(want) {
		t.Fatalf("log:\n%q\nwant:\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// TestBrokenDoesNotDefer shows the broken variant's flaw in three messages:
// both processes end up inside.
func TestBrokenDoesNotDefer(t *testing.T) {
	c := newCluster(t, Broken, 2)
	must(t, c.procs[0].Request())
	must(t, c.procs[1].Request())
	c.pass(Request, 1, 0)
	c.pass(Request, 0, 1)
	c.pass(Reply, 0, 1)
	c.pass(Reply, 1, 0)
	if c.procs[0].State() != Held || c.procs[1].State() != Held {
		t.Fatalf("states %v and %v; the broken variant should let both in", c.procs[0].State(), c.procs[1].State())
	}
}

func TestCentralFIFO(t *testing.T) {
	c := newCluster(t, Central, 3)
	must(t, c.server.Start())
	must(t, c.procs[2].Request())
	must(t, c.procs[0].Request())
	c.pass(Request, 2, ServerID)
	c.pass(Request, 0, ServerID) // queued behind P2, although its timestamp ties and its id is lower
	c.pass(Grant, ServerID, 2)
	if c.procs[2].State() != Held {
		t.Fatalf("P2 %v, want held", c.procs[2].State())
	}
	must(t, c.procs[2].Release())
	c.pass(ReleaseLock, 2, ServerID)
	c.pass(Grant, ServerID, 0)
	if c.procs[0].State() != Held {
		t.Fatalf("P0 %v, want held", c.procs[0].State())
	}
}

func TestTokenRingPassesWhenNotWanted(t *testing.T) {
	c := newCluster(t, TokenRing, 3)
	for _, p := range c.procs {
		must(t, p.Start())
	}
	must(t, c.procs[2].Request())
	c.pass(Token, 0, 1)
	c.pass(Token, 1, 2)
	if c.procs[2].State() != Held {
		t.Fatalf("P2 %v, want held", c.procs[2].State())
	}
	if len(c.queue) != 0 {
		t.Fatalf("token moved on while held: %v", c.queue)
	}
	must(t, c.procs[2].Release())
	c.take(Token, 2, 0)
}

// TestRejectsUnexpected: messages a process cannot accept are refused with
// ErrUnexpected and change nothing.
func TestRejectsUnexpected(t *testing.T) {
	for _, tc := range []struct {
		a Algorithm
		m Message
	}{
		{RicartAgrawala, Message{Kind: Reply, From: 1, To: 0, TS: 3}},   // not requesting
		{RicartAgrawala, Message{Kind: Request, From: 0, To: 0, TS: 3}}, // from itself
		{RicartAgrawala, Message{Kind: Request, From: 7, To: 0, TS: 3}}, // not in the run
		{RicartAgrawala, Message{Kind: Token, From: 1, To: 0, TS: 3}},   // wrong algorithm
		{Central, Message{Kind: Grant, From: ServerID, To: 0, TS: 3}},   // not waiting
		{Central, Message{Kind: Grant, From: 1, To: 0, TS: 3}},          // not the server
		{TokenRing, Message{Kind: Token, From: 2, To: 0, TS: 3}},        // not from the previous one... P2 is P0's previous in 3
		{TokenRing, Message{Kind: Token, From: 1, To: 0, TS: 3}},        // wrong direction
	} {
		c := newCluster(t, tc.a, 3)
		p := c.procs[0]
		if tc.a == TokenRing && tc.m.From == 2 {
			must(t, p.Request()) // P0 wants the token, and holds it from the start
			must(t, p.Start())
		}
		before := p.Clock()
		err := p.Handle(tc.m)
		if !errors.Is(err, ErrUnexpected) {
			t.Errorf("%v: %v: got %v, want ErrUnexpected", tc.a, tc.m, err)
		}
		if p.Clock() != before || len(c.queue) != 0 {
			t.Errorf("%v: rejected %v changed the clock or sent %v", tc.a, tc.m, c.queue)
		}
	}
}

func TestWrongState(t *testing.T) {
	for _, a := range []Algorithm{RicartAgrawala, Central, TokenRing} {
		c := newCluster(t, a, 2)
		if err := c.procs[0].Release(); !errors.Is(err, ErrState) {
			t.Errorf("%v: Release before Request: %v, want ErrState", a, err)
		}
		must(t, c.procs[0].Request())
		if err := c.procs[0].Request(); !errors.Is(err, ErrState) {
			t.Errorf("%v: second Request: %v, want ErrState", a, err)
		}
	}
}

func setOf(ids ...int) Set {
	var s Set
	for _, id := range ids {
		s.Add(id)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRejectsUnexpectedNew: the newer algorithms refuse what they cannot
// accept, with ErrUnexpected, and change nothing.
func TestRejectsUnexpectedNew(t *testing.T) {
	tok := &TokenState{LN: []uint64{0, 0, 0, 0, 0}}
	for _, tc := range []struct {
		a    Algorithm
		want bool // P0 requests first
		m    Message
	}{
		{Lamport, false, Message{Kind: ReleaseLock, From: 1, To: 0, TS: 3}},           // nothing of P1's queued
		{Lamport, false, Message{Kind: Reply, From: 1, To: 0, TS: 3}},                 // not requesting
		{RoucairolCarvalho, false, Message{Kind: Reply, From: 1, To: 0, TS: 3}},       // not requesting
		{Maekawa, false, Message{Kind: Request, From: 4, To: 0, TS: 3}},               // P4 is not in P0's quorum on a 3x2 grid
		{Maekawa, false, Message{Kind: ReleaseLock, From: 1, To: 0, TS: 3}},           // the vote is not locked for it
		{Maekawa, false, Message{Kind: Relinquish, From: 1, To: 0, TS: 3}},            // the vote is not locked for it
		{Maekawa, true, Message{Kind: Locked, From: 1, To: 0, TS: 99}},                // not for the current request
		{Maekawa, true, Message{Kind: Failed, From: 1, To: 0, TS: 99}},                // not for the current request
		{MaekawaNaive, true, Message{Kind: Inquire, From: 1, To: 0, TS: 1}},           // the naive variant has none
		{SuzukiKasami, false, Message{Kind: Token, From: 1, To: 0, TS: 3}},            // no payload, and P0 holds the token
		{SuzukiKasami, true, Message{Kind: Request, From: 1, To: 0, TS: 0}},           // sequence numbers start at 1
		{Raymond, false, Message{Kind: Token, From: 1, To: 0, TS: 3}},                 // P0 holds the token
		{Raymond, false, Message{Kind: Request, From: 4, To: 0, TS: 3}},               // not a tree neighbour
		{TokenRing, false, Message{Kind: Token, From: 4, To: 0, TS: 3, Carried: tok}}, // the ring's token has no payload... and P0 has it
	} {
		c := newCluster(t, tc.a, 5)
		p := c.procs[0]
		if tc.a == TokenRing {
			must(t, p.Start())
			c.queue, c.sent = nil, nil
		}
		if tc.want {
			must(t, p.Request())
			c.queue = nil
		}
		before := p.AppendState(nil)
		err := p.Handle(tc.m)
		if !errors.Is(err, ErrUnexpected) {
			t.Errorf("%v: %v: got %v, want ErrUnexpected", tc.a, tc.m, err)
		}
		if after := p.AppendState(nil); string(after) != string(before) || len(c.queue) != 0 {
			t.Errorf("%v: rejected %v changed the state or sent %v", tc.a, tc.m, c.queue)
		}
	}
	// Suzuki-Kasami: a token must carry one number per process.
	c := newCluster(t, SuzukiKasami, 3)
	must(t, c.procs[1].Request())
	err := c.procs[1].Handle(Message{Kind: Token, From: 0, To: 1, TS: 4, Carried: &TokenState{LN: []uint64{0, 0}}})
	if !errors.Is(err, ErrUnexpected) {
		t.Errorf("suzuki-kasami: a token of 2 numbers for 3 processes: %v", err)
	}
}
