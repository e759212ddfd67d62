package lockbench

import (
	"context"
	"fmt"
	"time"

	"mplock/lockd"
)

// Read is one kind of read a benchmark repeats: CHECK at a consistency, or
// STATUS of one name.
type Read struct {
	Verb        lockd.Verb        // lockd.VerbCheck or lockd.VerbStatus
	Consistency lockd.Consistency // for CHECK; "" is the server's default
}

func (r Read) String() string {
	if r.Verb == lockd.VerbCheck && r.Consistency != "" {
		return fmt.Sprintf("%s consistency=%s", r.Verb, r.Consistency)
	}
	return r.Verb.String()
}

// ReadResult is one read benchmark: one client asking again and again, as
// soon as it has its answer, for the state of a name another client holds.
// The JSON form is part of `mplock bench lockd --reads --json`.
type ReadResult struct {
	Target string `json:"target"`
	Read   string `json:"read"` // "CHECK consistency=stale", "STATUS", ...
	// Entry and Node: the member that answered, as in Result.
	Entry       string        `json:"entry,omitempty"`
	Node        string        `json:"node,omitempty"`
	Reads       int64         `json:"reads"`
	Duration    time.Duration `json:"duration_ns"`
	ReadsPerSec float64       `json:"reads_per_second"`
	// Latency of one read, request to answer.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// RunRead measures r for d (after a warm-up of a tenth of it that is not
// counted) with one client of mplock's lock server at addrs (a single
// server, or a cluster's members with the one to ask first: the client
// must reach node, unless node is ""), while another client holds the
// name read, so that every answer carries a holder. Should no read be
// measured within d (one read longer than the window, as a consistent
// read stalled on a busy machine can be), it reads on until one is, and
// the rate is taken over the time measured.
func RunRead(ctx context.Context, target, addrs, node string, r Read, d time.Duration, name, secret string) (ReadResult, error) {
	res := ReadResult{Target: target, Read: r.String(), Node: node, Duration: d}
	dial := func(client string) (*lockd.Client, error) {
		return dialAt(ctx, addrs, node, lockd.Options{Client: client, Secret: secret})
	}
	holder, err := dial("bench-holder")
	if err != nil {
		return res, fmt.Errorf("lockbench: %s: %w", target, err)
	}
	defer holder.Close()
	lease, err := holder.Lock(ctx, name, lockd.Exclusive)
	if err != nil {
		return res, fmt.Errorf("lockbench: %s: holder: %w", target, err)
	}
	defer lease.Unlock(context.WithoutCancel(ctx))
	c, err := dial("bench-reader")
	if err != nil {
		return res, fmt.Errorf("lockbench: %s: %w", target, err)
	}
	defer c.Close()
	read := func() error {
		if r.Verb == lockd.VerbStatus {
			st, err := c.Status(ctx, name)
			if err == nil && (len(st.Locks) != 1 || len(st.Locks[0].Holders) != 1) {
				err = fmt.Errorf("STATUS %s: %d locks, want the one held", name, len(st.Locks))
			}
			return err
		}
		cr, err := c.Check(ctx, name, r.Consistency)
		if err == nil && len(cr.Holders) != 1 {
			err = fmt.Errorf("CHECK %s: %d holders, want 1", name, len(cr.Holders))
		}
		return err
	}
	var lat []time.Duration
	var n int64
	start := time.Now().Add(d / 10)
	stop := start.Add(d)
	end := stop
	for {
		t0 := time.Now()
		if !t0.Before(stop) && n > 0 {
			break
		}
		if err := read(); err != nil {
			return res, fmt.Errorf("lockbench: %s: %s: %w", target, r, err)
		}
		if t0.After(start) {
			n++
			t1 := time.Now()
			if len(lat) < 1<<20 {
				lat = append(lat, t1.Sub(t0))
			}
			if t1.After(end) {
				end = t1
			}
		}
	}
	res.Reads = n
	res.ReadsPerSec = float64(res.Reads) / end.Sub(start).Seconds()
	res.P50, res.P99, res.Max = quantiles(lat)
	return res, nil
}
