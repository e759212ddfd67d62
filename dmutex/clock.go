package dmutex

// Clock is a process's logical clock, kept by Lamport's rules applied to
// requests: a new request gets a timestamp one above the highest this
// process has seen (Next), and every message carries its sender's clock,
// which the receiver takes in (See). So a request made after another is
// known of, through any chain of messages, gets a later timestamp, which
// is all the algorithms' order needs (L. Lamport, CACM 21(7), 1978, the
// clock condition restricted to request events; Ricart and Agrawala's
// "sequence numbers" are the same clock). Because only requests advance
// it, the clock stays small and a state's clocks are few, which is what
// lets the explorer enumerate every state.
//
// The zero value reads 0, before any request.
type Clock struct{ t uint64 }

// Next counts a new request and returns its timestamp.
func (c *Clock) Next() uint64 {
	c.t++
	return c.t
}

// See takes in the clock ts a message carried.
func (c *Clock) See(ts uint64) {
	c.t = max(c.t, ts)
}

// Now returns the clock.
func (c *Clock) Now() uint64 { return c.t }

// before reports whether request (ts1, id1) precedes (ts2, id2) in Lamport's
// total order: earlier timestamp first, lower id on a tie.
func before(ts1 uint64, id1 int, ts2 uint64, id2 int) bool {
	return ts1 < ts2 || ts1 == ts2 && id1 < id2
}
