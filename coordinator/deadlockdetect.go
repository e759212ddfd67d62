package coordinator

import (
	"context"
	"errors"
	"sync"
	"time"

	"mplock/lockd"
	"mplock/waitfor"
)

// detector polls every lock server for its holders and waiters, merges the
// answers into one wait-for graph, and reports each deadlock it confirms
// on a second look (see package waitfor for why a second look is needed and
// enough). It runs in its own goroutine; the fields below the line are its
// own until run returns.
type detector struct {
	servers []detectorServer
	every   time.Duration
	found   chan detection

	mu   sync.Mutex
	gone map[waitfor.Proc]bool // processes killed or ended: their locks are on their way back

	// Owned by run.
	looks     int
	shown     waitfor.Graph // the look with the most waits, for the report
	shownAt   time.Time
	transient map[string]bool // keys of confirmed cycles through timed waits
	reported  map[string]bool // keys of deadlocks already sent
}

type detectorServer struct {
	addr string
	c    *lockd.Client
}

// detection is a confirmed deadlock: the cycle, the look that confirmed it
// and when.
type detection struct {
	cycle waitfor.Cycle
	graph waitfor.Graph
	at    time.Time // wall clock, as the servers' times
	look  int
}

// dialDetector connects to every server, as "detector".
func dialDetector(ctx context.Context, addrs []string) (*detector, error) {
	d := &detector{gone: map[waitfor.Proc]bool{}, transient: map[string]bool{}, reported: map[string]bool{},
		found: make(chan detection, 4)}
	for _, a := range addrs {
		c, err := lockd.Dial(ctx, a, lockd.Options{Client: "detector"})
		if err != nil {
			d.close()
			return nil, err
		}
		d.servers = append(d.servers, detectorServer{addr: a, c: c})
	}
	return d, nil
}

func (d *detector) close() {
	for _, s := range d.servers {
		s.c.Close()
	}
}

// forget leaves p out of every later look: it was killed or has ended, and
// the servers are releasing what it held.
func (d *detector) forget(p waitfor.Proc) {
	d.mu.Lock()
	d.gone[p] = true
	d.mu.Unlock()
}

func (d *detector) isGone(p waitfor.Proc) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gone[p]
}

// run looks every d.every until ctx ends. A look that finds a cycle is
// followed at once by a second; a deadlock in both, edge for edge, is sent
// on d.found, once. Cycles through timed waits confirmed the same way are
// counted as transient.
func (d *detector) run(ctx context.Context) {
	t := time.NewTicker(d.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		first, err := d.look(ctx)
		if err != nil {
			continue // a server going away: the supervisor sees its exit
		}
		if len(first.Cycles()) == 0 {
			continue
		}
		second, err := d.look(ctx)
		if err != nil {
			continue
		}
		for _, c := range waitfor.Confirm(first, second.Cycles()) {
			if c.Bounded() {
				d.transient[c.Key()] = true
			}
		}
		for _, c := range waitfor.Confirm(first, second.Deadlocks()) {
			if d.reported[c.Key()] {
				continue
			}
			d.reported[c.Key()] = true
			select {
			case d.found <- detection{cycle: c, graph: second, at: time.Now().Round(0), look: d.looks}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// look asks every server at once and merges the answers. It returns only
// after every answer is in, so that the next look begins after this one
// ended, as waitfor.Confirm requires.
func (d *detector) look(ctx context.Context) (waitfor.Graph, error) {
	states := make([][]waitfor.LockState, len(d.servers))
	errs := make([]error, len(d.servers))
	var wg sync.WaitGroup
	for i, s := range d.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.c.Status(ctx, "")
			states[i], errs[i] = waitfor.FromStatus(s.addr, st), err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return waitfor.Graph{}, err
	}
	var all []waitfor.LockState
	for _, ls := range states {
		all = append(all, ls...)
	}
	d.looks++
	g := waitfor.New(all).Without(d.isGone)
	if len(g.Edges) > 0 && len(g.Edges) >= len(d.shown.Edges) {
		d.shown, d.shownAt = g, time.Now().Round(0)
	}
	return g, nil
}
