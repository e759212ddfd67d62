package dmutex

import (
	"encoding/binary"
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
	// Clone returns an independent copy of the node in the same state,
	// with the same configuration (transport, observer): the explorer's
	// way to try two continuations from one state.
	Clone() Node
	// AppendState appends to dst a canonical encoding of everything that
	// decides the node's future behaviour: two nodes with equal encodings
	// answer every call and message alike. The Lamport clock is part of
	// it only when the algorithm decides on timestamps (Clocked).
	AppendState(dst []byte) []byte
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

// observing reports whether anyone listens to events: callers skip
// building an event's details when nobody does.
func (n *node) observing() bool { return n.cfg.Observe != nil }

// emit reports a fully built event.
func (n *node) emit(e Event) {
	if n.cfg.Observe != nil {
		e.Process = n.cfg.ID
		n.cfg.Observe(e)
	}
}

func (n *node) observe(k EventKind, peer int, ts uint64) {
	if n.cfg.Observe != nil {
		n.cfg.Observe(Event{Kind: k, Process: n.cfg.ID, Peer: peer, TS: ts})
	}
}

// send sends one message and remembers the first error; callers collect it
// with flush once their state change is complete.
func (n *node) send(k Kind, to int, ts uint64) {
	n.sendMessage(Message{Kind: k, From: n.cfg.ID, To: to, TS: ts})
}

func (n *node) sendMessage(m Message) {
	if err := n.cfg.Transport.Send(m); err != nil {
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

// State encoding helpers: unsigned varints, sets as two words.
func appendUint(dst []byte, v uint64) []byte { return binary.AppendUvarint(dst, v) }

func appendInt(dst []byte, v int) []byte { return binary.AppendUvarint(dst, uint64(v+1)) } // -1 encodes as 0

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendSet(dst []byte, s Set) []byte { return appendUint(appendUint(dst, s.w[0]), s.w[1]) }

func appendInts(dst []byte, v []int) []byte {
	dst = appendUint(dst, uint64(len(v)))
	for _, x := range v {
		dst = appendInt(dst, x)
	}
	return dst
}
