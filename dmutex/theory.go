package dmutex

import (
	"fmt"
	"math"
)

// Range is a span of values; Hi may be +Inf (unbounded).
type Range struct{ Lo, Hi float64 }

// Contains reports whether v lies in r, allowing a relative slack for
// rounding.
func (r Range) Contains(v float64) bool {
	const eps = 1e-9
	return v >= r.Lo-eps*math.Max(1, r.Lo) && v <= r.Hi+eps*math.Max(1, r.Hi)
}

// Exact reports whether the range is one value.
func (r Range) Exact() bool { return r.Lo == r.Hi }

// String formats the range: "8", "0 to 8", "3 to unbounded".
func (r Range) String() string {
	if r.Exact() {
		return num(r.Lo)
	}
	hi := num(r.Hi)
	if math.IsInf(r.Hi, 1) {
		hi = "unbounded"
	}
	return num(r.Lo) + " to " + hi
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// Cost is what an algorithm's analysis says about one entry into the
// critical section in a run of N peers. Messages count the algorithm's
// messages (not the runtime's pings); times are in T, one message's
// delivery time, and leave out E, the time spent inside.
type Cost struct {
	N       int
	Formula string // messages per entry as the literature writes it: "2(N-1)"
	// Light is the messages per entry when requests never overlap; Heavy
	// when every process is always waiting.
	Light, Heavy Range
	// Bounds is what the average over any run must stay within, whatever
	// the load: a run outside it is a bug. Hi is +Inf when the analysis
	// gives no upper bound.
	Bounds Range
	// Sync is the synchronization delay: from one process's exit to the
	// next one's entry, when that one is already waiting, in T.
	Sync Range
	// Response is the response time at light load minus E: from request to
	// entry when nobody else wants the critical section, in T.
	Response Range
	// Basis says what the numbers rest on ("quorums of K = 5 on a 3x3
	// grid"); empty when N says it all.
	Basis string
}

// Exact reports whether every entry costs the same number of messages.
func (c Cost) Exact() bool { return c.Bounds.Exact() }

// Cost is the theory of algorithm a for n peers.
//
// Sources: each algorithm's paper (see Source); the light- and heavy-load
// figures and the response times are the comparison in M. Singhal and
// N. G. Shivaratri, Advanced Concepts in Operating Systems, McGraw-Hill
// 1994, chapter 6 (Table 6.1), restated for the quorums and the tree used
// here.
func (a Algorithm) Cost(n int) Cost {
	N := float64(n)
	inf := math.Inf(1)
	one := func(v float64) Range { return Range{v, v} }
	c := Cost{N: n}
	switch a {
	case RicartAgrawala, Broken:
		c.Formula = "2(N-1)"
		c.Light, c.Heavy, c.Bounds = one(2*(N-1)), one(2*(N-1)), one(2*(N-1))
		c.Sync, c.Response = one(1), one(2)
	case Lamport:
		c.Formula = "3(N-1)"
		c.Light, c.Heavy, c.Bounds = one(3*(N-1)), one(3*(N-1)), one(3*(N-1))
		c.Sync, c.Response = one(1), one(2)
	case RoucairolCarvalho:
		// A process that still holds every permission enters at once;
		// otherwise it asks (and is answered by) those it gave its
		// permission to since its last entry.
		c.Formula = "0 to 2(N-1)"
		c.Light, c.Heavy, c.Bounds = Range{0, 2 * (N - 1)}, one(2*(N-1)), Range{0, 2 * (N - 1)}
		c.Sync, c.Response = one(1), Range{0, 2}
	case Maekawa, MaekawaNaive:
		g := NewGrid(n)
		lo, mean, _ := g.Others()
		c.Formula = "3(K-1) to 5(K-1)"
		if a == MaekawaNaive {
			c.Formula = "3(K-1)"
		}
		c.Basis = fmt.Sprintf("K = %s voters per quorum, on average: a process's row and column on a %s (Maekawa's own quorums have K ~ sqrt(N): 3sqrt(N) to 5sqrt(N))",
			num(mean+1), g)
		// REQUEST, LOCKED and RELEASE to each other member is the least;
		// under contention FAILED, INQUIRE, RELINQUISH and the second
		// LOCKED come on top. The analysis gives no hard upper bound:
		// a vote can be inquired about and given back more than once.
		c.Light, c.Heavy = one(3*mean), Range{3 * mean, 5 * mean}
		c.Bounds = Range{3 * lo, inf}
		if a == MaekawaNaive {
			c.Heavy, c.Bounds = one(3*mean), Range{3 * lo, inf}
		}
		c.Sync, c.Response = one(2), one(2)
	case SuzukiKasami:
		c.Formula = "0 or N"
		c.Light, c.Heavy, c.Bounds = Range{0, N}, one(N), Range{0, N}
		c.Sync, c.Response = one(1), Range{0, 2}
	case Raymond:
		t := NewTree(n)
		d := float64(t.Diameter())
		c.Formula = "0 to 2D, about 4 under load"
		c.Basis = fmt.Sprintf("D = %d: the tree's diameter (a binary heap of depth %d, so D <= 2 log2 N)", t.Diameter(), t.Depth())
		// A request climbs at most D edges towards the token, and the
		// token comes down at most D; under saturation each hop of the
		// token serves a request (Raymond: about 4 messages).
		c.Light, c.Heavy, c.Bounds = Range{0, 2 * d}, Range{0, 4}, Range{0, 2 * d}
		c.Sync, c.Response = Range{1, d}, Range{0, 2 * d}
	case Central:
		c.Formula = "3"
		c.Light, c.Heavy, c.Bounds = one(3), one(3), one(3)
		c.Sync, c.Response = one(2), one(2)
	case TokenRing:
		c.Formula = "1 to unbounded"
		c.Light, c.Heavy, c.Bounds = Range{1, inf}, one(1), Range{0, inf}
		c.Sync, c.Response = Range{1, N - 1}, Range{0, N}
	}
	return c
}

// MessagesPerEntry is the theory's cost of one entry in a run of n peers:
// the heavy-load figure (the upper end when it is a range); exact is false
// when the cost varies with the load or the schedule.
func (a Algorithm) MessagesPerEntry(n int) (perEntry float64, exact bool) {
	c := a.Cost(n)
	return c.Heavy.Hi, c.Exact()
}

// Theory is the message cost per entry as a formula, for reports.
func (a Algorithm) Theory() string {
	if f := a.Cost(4).Formula; f != "" {
		return f
	}
	return "?"
}

// SyncDelay is the theory's synchronization delay (from one process's exit
// to the next one's entry, when that one is waiting) in one-message
// delivery times: min and max.
func (a Algorithm) SyncDelay(n int) (lo, hi float64) {
	s := a.Cost(n).Sync
	return s.Lo, s.Hi
}
