package dmutex

import (
	"errors"
	"fmt"
)

// Errors of the state machines. A message error means the message is to be
// rejected and logged; the process's state is unchanged by it.
var (
	// ErrUnexpected marks a message a process cannot accept in its state: a
	// reply it did not ask for, a grant to a process that is not waiting,
	// a release from a process that does not hold the lock.
	ErrUnexpected = errors.New("dmutex: unexpected message")
	// ErrState marks a call in the wrong state: Request when not released,
	// Release when not holding the critical section.
	ErrState = errors.New("dmutex: wrong state")
)

// Config is what a process is built from.
type Config struct {
	ID        int       // this process: 0 to N-1, or ServerID for the lock server
	N         int       // peers competing for the critical section, 2 to MaxProcs
	Transport Transport // where this process's messages go
	// Observe, when set, is called with every event, on the goroutine
	// that drives the process, before the call that caused it returns; an
	// event that sends a message is observed just before the send, so a
	// log ordered by time shows causes before effects.
	Observe func(Event)
}

func (c Config) check() error {
	switch {
	case c.N < 2 || c.N > MaxProcs:
		return fmt.Errorf("dmutex: %d processes, want 2 to %d", c.N, MaxProcs)
	case c.ID < 0 || c.ID >= c.N:
		return fmt.Errorf("dmutex: process id %d outside 0 to %d", c.ID, c.N-1)
	case c.Transport == nil:
		return errors.New("dmutex: no transport")
	}
	return nil
}

// Node is anything that takes part in a protocol: a process, or the central
// algorithm's lock server. A node is not safe for concurrent use: one
// goroutine drives it.
type Node interface {
	// Start is called once, when every node is connected and the run
	// begins (the token ring's first holder starts the token moving).
	Start() error
	// Handle takes one message addressed to this node. It returns an error
	// wrapping ErrUnexpected, and changes nothing, for a message the node
	// cannot accept in its state. Send errors are returned too (joined),
	// after the state has changed as if the messages had been sent.
	Handle(m Message) error
	// Clock is the node's Lamport clock.
	Clock() uint64
}

// Process is a peer that competes for the critical section.
//
// Request asks for the critical section; the process may enter at once (then
// State is Held when Request returns) or later, inside a call to Handle.
// Release leaves it. Both return ErrState when called in the wrong state.
type Process interface {
	Node
	ID() int
	State() State
	Request() error
	Release() error
	// RequestTS is the Lamport timestamp of the current or last request.
	RequestTS() uint64
	// Awaiting is the set of nodes this process needs a message from before
	// it can enter: empty unless it is Wanted.
	Awaiting() Set
}

// node holds what every algorithm's node has: its configuration, its Lamport
// clock, and the helpers to send and to observe.
type node struct {
	cfg     Config
	clock   Clock
	sendErr error
}

func (n *node) Clock() uint64 { return n.clock.Now() }

func (n *node) observe(k EventKind, peer int, ts uint64) {
	if n.cfg.Observe != nil {
		n.cfg.Observe(Event{Kind: k, Process: n.cfg.ID, Peer: peer, TS: ts})
	}
}

// send sends one message and remembers the first error; callers collect it
// with flush once their state change is complete.
func (n *node) send(k Kind, to int, ts uint64) {
	if err := n.cfg.Transport.Send(Message{Kind: k, From: n.cfg.ID, To: to, TS: ts}); err != nil {
		n.sendErr = errors.Join(n.sendErr, err)
	}
}

func (n *node) flush() error {
	err := n.sendErr
	n.sendErr = nil
	return err
}

func unexpected(m Message, why string) error {
	return fmt.Errorf("%w: %v from %s: %s", ErrUnexpected, m.Kind, Name(m.From), why)
}
