package dmutex

// Clock is a Lamport clock. The zero value reads 0, before any event.
type Clock struct{ t uint64 }

// Tick counts a local event (a request, a send) and returns its timestamp.
func (c *Clock) Tick() uint64 {
	c.t++
	return c.t
}

// Witness counts the receipt of a message stamped ts: the clock moves past
// both its own value and ts, and returns the receipt's timestamp.
func (c *Clock) Witness(ts uint64) uint64 {
	c.t = max(c.t, ts) + 1
	return c.t
}

// Now returns the clock without counting an event.
func (c *Clock) Now() uint64 { return c.t }

// before reports whether request (ts1, id1) precedes (ts2, id2) in Lamport's
// total order: earlier timestamp first, lower id on a tie.
func before(ts1 uint64, id1 int, ts2 uint64, id2 int) bool {
	return ts1 < ts2 || ts1 == ts2 && id1 < id2
}
