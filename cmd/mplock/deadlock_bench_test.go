package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mplock/lockd"
)

// BenchmarkDetectorOverhead measures what the deadlock detector costs a lock
// server. A real `mplock serve` process serves 4 clients that lock and
// unlock as fast as they can (each its own name, or all one name, handed
// over through the queue); meanwhile a detector session asks it for all its
// holders and waiters (STATUS, as mplock deadlock's detector does every
// --detect-every) every 10ms (the default) or every 1ms, in windows that
// alternate with windows without it. Each iteration is one pair of 200ms
// windows, in alternating order, so that the load of the rest of the
// machine, which drifts, weighs on both alike. It reports the throughput
// with and without the detector and the overhead: one minus the median of
// the per-pair ratios.
//
//	go test ./cmd/mplock -run '^$' -bench DetectorOverhead -benchtime 25x
func BenchmarkDetectorOverhead(b *testing.B) {
	for _, load := range []string{"own-names", "one-name"} {
		for _, every := range []time.Duration{10 * time.Millisecond, time.Millisecond} {
			b.Run("load="+load+"/detect-every="+every.String(), func(b *testing.B) { benchDetector(b, load == "one-name", every) })
		}
	}
}

func benchDetector(b *testing.B, shared bool, every time.Duration) {
	const window = 200 * time.Millisecond
	addr := dlServe(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ops, looks atomic.Int64
	var polling atomic.Bool
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range 4 {
		c, err := lockd.Dial(ctx, addr, lockd.Options{Client: "load" + string(rune('1'+i))})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		name := "lock1"
		if !shared {
			name = "own" + string(rune('1'+i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l, err := c.Lock(ctx, name, lockd.Exclusive)
				if err != nil {
					return
				}
				if l.Unlock(ctx) == nil {
					ops.Add(1)
				}
			}
		}()
	}
	det, err := lockd.Dial(ctx, addr, lockd.Options{Client: "detector"})
	if err != nil {
		b.Fatal(err)
	}
	defer det.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if polling.Load() {
				if _, err := det.Status(ctx, ""); err == nil {
					looks.Add(1)
				}
			}
		}
	}()
	measure := func(on bool) float64 {
		polling.Store(on)
		n0, t0 := ops.Load(), time.Now()
		time.Sleep(window)
		return float64(ops.Load()-n0) / time.Since(t0).Seconds()
	}
	measure(false) // warm up
	var offs, ons, ratios []float64
	var lookTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		var off, on float64
		if i%2 == 0 {
			off, on = measure(false), measure(true)
		} else {
			on, off = measure(true), measure(false)
		}
		lookTime += window
		offs, ons, ratios = append(offs, off), append(ons, on), append(ratios, on/off)
	}
	b.StopTimer()
	polling.Store(false)
	b.ReportMetric(median(offs), "ops/s-without")
	b.ReportMetric(median(ons), "ops/s-with")
	b.ReportMetric(100*(1-median(ratios)), "overhead-%")
	b.ReportMetric(float64(looks.Load())/lookTime.Seconds(), "looks/s")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// dlServe starts a real `mplock serve` on a free port (startServe) and
// returns its address; the server is stopped when the test or benchmark
// ends.
func dlServe(tb testing.TB) string {
	tb.Helper()
	return startServe(tb).addr
}
