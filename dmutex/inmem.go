package dmutex

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
)

// NetConfig shapes an in-memory network.
type NetConfig struct {
	Seed uint64 // the random delays; the same seed gives the same run
	// MaxDelay is the usual longest delay of a message, in ticks of
	// simulated time; one message in 20 takes up to ten times longer.
	// 0 means 100.
	MaxDelay int64
	// FIFO keeps each link first-in first-out, as a stream socket is;
	// without it, a later message on a link can overtake an earlier one.
	FIFO bool
}

// Net is an in-memory network between the nodes of one simulated run: every
// message sent is delayed at random and delivered in order of arrival time,
// so messages overtake each other. Time is simulated (ticks); nothing waits.
// A Net is not safe for concurrent use: one goroutine drives a simulation.
type Net struct {
	cfg      NetConfig
	rng      *rand.Rand
	now      int64
	seq      uint64
	inflight flightHeap
	lastAt   map[[2]int]int64 // FIFO: arrival of the last message on each link
	sent     [maxKind]int
}

// NewNet returns an empty network at time 0.
func NewNet(cfg NetConfig) *Net {
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 100
	}
	return &Net{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), lastAt: map[[2]int]int64{}}
}

// Transport returns the transport of node id: it refuses messages that do
// not come from id, so a test cannot forge a sender by mistake.
func (n *Net) Transport(id int) Transport {
	return TransportFunc(func(m Message) error {
		if m.From != id {
			return fmt.Errorf("dmutex: node %s sent a message as %s", Name(id), Name(m.From))
		}
		if m.To < 0 || m.To >= MaxIDs || m.To == id {
			return fmt.Errorf("dmutex: node %s sent a message to %d", Name(id), m.To)
		}
		n.send(m)
		return nil
	})
}

func (n *Net) send(m Message) {
	d := 1 + n.rng.Int64N(n.cfg.MaxDelay)
	if n.rng.IntN(20) == 0 {
		d += n.rng.Int64N(9 * n.cfg.MaxDelay)
	}
	at := n.now + d
	if n.cfg.FIFO {
		link := [2]int{m.From, m.To}
		at = max(at, n.lastAt[link])
		n.lastAt[link] = at
	}
	n.seq++
	n.sent[m.Kind]++
	heap.Push(&n.inflight, flight{at: at, seq: n.seq, m: m})
}

// Now is the simulated time.
func (n *Net) Now() int64 { return n.now }

// Pending is the number of messages in flight.
func (n *Net) Pending() int { return len(n.inflight) }

// NextAt is the arrival time of the next message; ok is false when none is
// in flight.
func (n *Net) NextAt() (at int64, ok bool) {
	if len(n.inflight) == 0 {
		return 0, false
	}
	return n.inflight[0].at, true
}

// Deliver takes the next message off the network and advances the time to
// its arrival; ok is false when none is in flight.
func (n *Net) Deliver() (m Message, ok bool) {
	if len(n.inflight) == 0 {
		return Message{}, false
	}
	f := heap.Pop(&n.inflight).(flight)
	n.now = max(n.now, f.at)
	return f.m, true
}

// AdvanceTo moves the simulated time forward to t (never back).
func (n *Net) AdvanceTo(t int64) { n.now = max(n.now, t) }

// Sent returns how many messages of kind k were sent.
func (n *Net) Sent(k Kind) int { return n.sent[k] }

// Rand returns the network's random source, for a simulation to draw its
// think and hold times from the same seed.
func (n *Net) Rand() *rand.Rand { return n.rng }

type flight struct {
	at  int64
	seq uint64 // ties in arrival time go in sending order
	m   Message
}

type flightHeap []flight

func (h flightHeap) Len() int { return len(h) }
func (h flightHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h flightHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *flightHeap) Push(x any)   { *h = append(*h, x.(flight)) }
func (h *flightHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
}
