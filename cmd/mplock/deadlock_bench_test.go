package main

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mplock/lockd"
)

// BenchmarkDetectorOverhead measures what the deadlock detector costs a lock
// server: a real `mplock serve` process serves 4 clients that lock and
// unlock as fast as they can (each its own name, or all one name, handed
// over through the queue), while a detector session asks it for all its
// holders and waiters (STATUS, as mplock deadlock's detector does every
// --detect-every) at the default 10ms, at 1ms, or not at all. Compare the
// ns/op of the variants:
//
//	go test ./cmd/mplock -run '^$' -bench DetectorOverhead -count 10 -benchtime 2s | tee bench.txt
//	go run golang.org/x/perf/cmd/benchstat -col /detector bench.txt
func BenchmarkDetectorOverhead(b *testing.B) {
	for _, load := range []string{"own-names", "one-name"} {
		for _, every := range []time.Duration{0, 10 * time.Millisecond, time.Millisecond} {
			name := "load=" + load + "/detector=off"
			if every > 0 {
				name = "load=" + load + "/detector=" + every.String()
			}
			b.Run(name, func(b *testing.B) { benchDetector(b, load == "one-name", every) })
		}
	}
}

func benchDetector(b *testing.B, shared bool, every time.Duration) {
	addr := dlServe(b)
	ctx := context.Background()
	const clients = 4
	var cs []*lockd.Client
	for i := range clients {
		c, err := lockd.Dial(ctx, addr, lockd.Options{Client: "load" + string(rune('1'+i))})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cs = append(cs, c)
	}
	stop := make(chan struct{})
	var polled sync.WaitGroup
	var looks atomic.Int64
	if every > 0 {
		det, err := lockd.Dial(ctx, addr, lockd.Options{Client: "detector"})
		if err != nil {
			b.Fatal(err)
		}
		defer det.Close()
		polled.Add(1)
		go func() {
			defer polled.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if _, err := det.Status(ctx, ""); err == nil {
					looks.Add(1)
				}
			}
		}()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, c := range cs {
		name := "lock1"
		if !shared {
			name = "own" + string(rune('1'+i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				l, err := c.Lock(ctx, name, lockd.Exclusive)
				if err != nil {
					b.Error(err)
					return
				}
				if err := l.Unlock(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(stop)
	polled.Wait()
	if every > 0 {
		b.ReportMetric(float64(looks.Load())/time.Since(start).Seconds(), "looks/s")
	}
}

// dlServe starts a real `mplock serve` on a free port and returns its
// address; the server is stopped when the benchmark ends.
func dlServe(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command("/proc/self/exe", "serve", "--listen", "127.0.0.1:0", "--log-level", "error")
	cmd.Args[0] = "mplock" // TestMain runs the CLI under this name
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "Lock Server started on tcp://")
	if err != nil || !ok {
		tb.Fatalf("server said %q, %v", line, err)
	}
	return addr
}
