// Package lockbench measures lock services the same way: N clients, each on
// its own connection, acquire and release a lock as fast as they can, for a
// fixed time, on distinct names or all on one. It drives mplock's lockd,
// Redis (SET NX PX + DEL, retrying until the SET succeeds) and etcd (its
// lock service, which is concurrency.Mutex run on the server, through the
// JSON gateway), so that `mplock bench lockd` and scripts/lockd-compare.sh
// print comparable figures.
package lockbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Locker is one client's connection to a lock service. It is used by one
// goroutine at a time.
type Locker interface {
	// Acquire takes name, waiting as the service waits (queue or retry).
	// It returns how many times it had to retry (0 for a queueing service).
	Acquire(ctx context.Context, name string) (retries int, err error)
	Release(ctx context.Context, name string) error
	Close() error
}

// Dialer opens one client connection; client is its index.
type Dialer func(ctx context.Context, client int) (Locker, error)

// Scenario is how many clients and whether they share one name.
type Scenario struct {
	Clients int
	Shared  bool // all on one name; otherwise one name per client
}

func (s Scenario) String() string {
	switch {
	case s.Clients == 1:
		return "1 client"
	case s.Shared:
		return fmt.Sprintf("%d clients, one name", s.Clients)
	}
	return fmt.Sprintf("%d clients, distinct names", s.Clients)
}

// Standard are the three scenarios.
var Standard = []Scenario{{Clients: 1}, {Clients: 16}, {Clients: 16, Shared: true}}

// Result is one scenario's measurement. The JSON form is part of
// `mplock bench lockd --json`.
type Result struct {
	Target   string `json:"target"`
	Scenario string `json:"scenario"`
	// Entry, against a cluster, is where the clients' requests entered:
	// "leader" or "follower" (a follower forwards each change to the
	// leader and answers once it has applied it itself); Node is that
	// member's id. Both empty against a single server.
	Entry       string        `json:"entry,omitempty"`
	Node        string        `json:"node,omitempty"`
	Clients     int           `json:"clients"`
	Shared      bool          `json:"shared_name"`
	Pairs       int64         `json:"pairs"`
	Duration    time.Duration `json:"duration_ns"`
	PairsPerSec float64       `json:"pairs_per_second"`
	Retries     int64         `json:"retries"`
	// Acquire latency percentiles, from the request to holding the lock.
	P50 time.Duration `json:"acquire_p50_ns"`
	P99 time.Duration `json:"acquire_p99_ns"`
}

// Run measures sc for d (after a short warm-up that is not counted) and
// returns the pairs per second over all clients.
func Run(ctx context.Context, target string, dial Dialer, sc Scenario, d time.Duration, prefix string) (Result, error) {
	lockers := make([]Locker, sc.Clients)
	defer func() {
		for _, l := range lockers {
			if l != nil {
				l.Close()
			}
		}
	}()
	for i := range lockers {
		l, err := dial(ctx, i)
		if err != nil {
			return Result{}, fmt.Errorf("lockbench: %s: client %d: %w", target, i, err)
		}
		lockers[i] = l
	}
	type tally struct {
		pairs, retries int64
		lat            []time.Duration
		err            error
	}
	tallies := make([]tally, sc.Clients)
	var start, stop time.Time
	var done sync.WaitGroup
	begin := make(chan struct{})
	warm := d / 10
	for i, l := range lockers {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if sc.Shared {
			name = prefix + "-shared"
		}
		done.Add(1)
		go func() {
			defer done.Done()
			t := &tallies[i]
			<-begin
			for {
				now := time.Now()
				if now.After(stop) {
					return
				}
				r, err := l.Acquire(ctx, name)
				if err != nil {
					t.err = err
					return
				}
				got := time.Now()
				if err := l.Release(ctx, name); err != nil {
					t.err = err
					return
				}
				if now.After(start) && got.Before(stop) {
					t.pairs++
					t.retries += int64(r)
					if len(t.lat) < 1<<20 {
						t.lat = append(t.lat, got.Sub(now))
					}
				}
			}
		}()
	}
	start = time.Now().Add(warm)
	stop = start.Add(d)
	close(begin)
	done.Wait()
	res := Result{Target: target, Scenario: sc.String(), Clients: sc.Clients, Shared: sc.Shared, Duration: d}
	var lat []time.Duration
	var errs []error
	for _, t := range tallies {
		res.Pairs += t.pairs
		res.Retries += t.retries
		lat = append(lat, t.lat...)
		if t.err != nil {
			errs = append(errs, t.err)
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("lockbench: %s: %w", target, errors.Join(errs...))
	}
	res.PairsPerSec = float64(res.Pairs) / d.Seconds()
	res.P50, res.P99, _ = quantiles(lat)
	return res, nil
}

// quantiles sorts lat and returns its median, 99th percentile and
// maximum (zeros when lat is empty).
func quantiles(lat []time.Duration) (p50, p99, maximum time.Duration) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
}
