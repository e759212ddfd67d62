package dmutex

import (
	"container/heap"
	"fmt"
)

// SimConfig is one simulated run: N processes of one algorithm over an
// in-memory network that delays and reorders messages.
type SimConfig struct {
	Algorithm Algorithm
	N         int
	Entries   int    // critical-section entries each process asks for
	Seed      uint64 // delays, think and hold times
	FIFO      bool   // keep links first-in first-out
	MaxDelay  int64  // ticks; see NetConfig
	MaxThink  int64  // longest pause before a request, in ticks (0: none)
	MaxHold   int64  // longest stay in the critical section, in ticks (0: none)
	// MaxSteps bounds the run (the token of an idle ring travels forever);
	// 0 means 2,000,000.
	MaxSteps int
	// Observe, when set, sees every event.
	Observe func(Event)
}

// SimResult is what a simulated run did.
type SimResult struct {
	Entries    int   // entries into the critical section
	Messages   int   // algorithm messages (Ping, Pong, Hello excluded)
	Violations int   // entries made while another process was inside
	Inversions int64 // pairs of entries out of (timestamp, id) order
	// Unserved lists the processes that did not make all their entries: a
	// deadlock or starvation. Empty for a correct algorithm.
	Unserved []int
	Order    []Stamp // the entries, in the order they happened
	Steps    int
}

// Simulate runs cfg to the end: until every process made its entries, or
// nothing more can happen (a deadlock), or MaxSteps. It checks safety with
// its own count of processes inside, independent of the algorithm.
// It returns an error only when a process reports one: a message it did not
// expect, or a call in the wrong state.
func Simulate(cfg SimConfig) (SimResult, error) {
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = 2_000_000
	}
	s := &sim{cfg: cfg, net: NewNet(NetConfig{Seed: cfg.Seed, MaxDelay: cfg.MaxDelay, FIFO: cfg.FIFO})}
	if err := s.build(); err != nil {
		return SimResult{}, err
	}
	err := s.run()
	res := s.res
	res.Messages = 0
	for k := Request; k < maxKind; k++ {
		if k.Algorithmic() {
			res.Messages += s.net.Sent(k)
		}
	}
	res.Inversions = Inversions(res.Order)
	for i := range s.procs {
		if s.left[i] > 0 {
			res.Unserved = append(res.Unserved, i)
		}
	}
	return res, err
}

type sim struct {
	cfg    SimConfig
	net    *Net
	procs  []Process
	server Node
	left   []int // entries still to make
	timers timerHeap
	seq    uint64
	inside int
	res    SimResult
}

type timerKind uint8

const (
	wantTimer timerKind = iota
	leaveTimer
)

type timer struct {
	at   int64
	seq  uint64
	kind timerKind
	proc int
}

func (s *sim) build() error {
	n := s.cfg.N
	s.left = make([]int, n)
	for i := range n {
		p, err := New(s.cfg.Algorithm, Config{ID: i, N: n, Transport: s.net.Transport(i), Observe: s.observe})
		if err != nil {
			return err
		}
		s.procs = append(s.procs, p)
		s.left[i] = s.cfg.Entries
	}
	if s.cfg.Algorithm.HasServer() {
		srv, err := NewServer(Config{ID: ServerID, N: n, Transport: s.net.Transport(ServerID), Observe: s.cfg.Observe})
		if err != nil {
			return err
		}
		s.server = srv
		if err := srv.Start(); err != nil {
			return err
		}
	}
	for i, p := range s.procs {
		if err := p.Start(); err != nil {
			return err
		}
		if s.left[i] > 0 {
			s.schedule(wantTimer, i, s.cfg.MaxThink)
		}
	}
	return nil
}

func (s *sim) observe(e Event) {
	switch e.Kind {
	case Entered:
		if s.inside > 0 {
			s.res.Violations++
		}
		s.inside++
		s.res.Entries++
		s.res.Order = append(s.res.Order, Stamp{TS: s.procs[e.Process].RequestTS(), ID: e.Process})
		s.schedule(leaveTimer, e.Process, s.cfg.MaxHold)
	case Exited:
		s.inside--
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(e)
	}
}

func (s *sim) schedule(k timerKind, proc int, maxWait int64) {
	d := int64(0)
	if maxWait > 0 {
		d = s.net.Rand().Int64N(maxWait + 1)
	}
	s.seq++
	heap.Push(&s.timers, timer{at: s.net.Now() + d, seq: s.seq, kind: k, proc: proc})
}

func (s *sim) done() bool {
	for i := range s.procs {
		if s.left[i] > 0 {
			return false
		}
	}
	return true
}

func (s *sim) run() error {
	for ; s.res.Steps < s.cfg.MaxSteps && !s.done(); s.res.Steps++ {
		msgAt, haveMsg := s.net.NextAt()
		if len(s.timers) > 0 && (!haveMsg || s.timers[0].at <= msgAt) {
			t := heap.Pop(&s.timers).(timer)
			s.net.AdvanceTo(t.at)
			if err := s.fire(t); err != nil {
				return err
			}
			continue
		}
		m, ok := s.net.Deliver()
		if !ok {
			return nil // nothing in flight, nothing scheduled: stuck
		}
		var err error
		if m.To == ServerID {
			err = s.server.Handle(m)
		} else {
			err = s.procs[m.To].Handle(m)
		}
		if err != nil {
			return fmt.Errorf("step %d: %s handling %v: %w", s.res.Steps, Name(m.To), m, err)
		}
	}
	return nil
}

func (s *sim) fire(t timer) error {
	p := s.procs[t.proc]
	switch t.kind {
	case wantTimer:
		if err := p.Request(); err != nil {
			return fmt.Errorf("%s request: %w", Name(t.proc), err)
		}
	case leaveTimer:
		if err := p.Release(); err != nil {
			return fmt.Errorf("%s release: %w", Name(t.proc), err)
		}
		s.left[t.proc]--
		if s.left[t.proc] > 0 {
			s.schedule(wantTimer, t.proc, s.cfg.MaxThink)
		}
	}
	return nil
}

type timerHeap []timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	return h[i].at < h[j].at || h[i].at == h[j].at && h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)   { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
