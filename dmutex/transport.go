package dmutex

// Transport carries one node's messages to the others.
//
// Send is called only from the goroutine that drives the node, and must not
// call back into any node: delivery happens later, when the receiver's own
// goroutine calls its Handle. Messages may arrive in any order and after any
// delay; none of the algorithms here needs first-in first-out links. A Send
// that fails (the receiver is gone) returns an error; the node does not
// retry, since a lost message in these algorithms can only be made good by
// the receiver's recovery, which none of them has.
type Transport interface {
	Send(m Message) error
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(Message) error

// Send calls f(m).
func (f TransportFunc) Send(m Message) error { return f(m) }
