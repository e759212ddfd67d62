package lockd

import (
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// forcedGCs counts the garbage collections this process has forced
// (runtime.GC), which reading does not cause.
func forcedGCs() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/forced:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestDebugCollectsAtMostOnceASecond is the attack's low finding: DEBUG
// ran a garbage collection per request, and two clients sending it back
// to back raised everyone's latency. Four clients pipeline three DEBUGs
// each: every one is answered, and the server forces at most one
// collection per debugGCEvery of the time they took (plus the first).
func TestDebugCollectsAtMostOnceASecond(t *testing.T) {
	const clients, each = 4, 2
	_, addr := startServer(t, Config{Debug: true})
	conns := make([]*rawConn, clients)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
	}
	before, start := forcedGCs(), time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			if _, err := c.c.Write([]byte(strings.Repeat("DEBUG\n", each))); err != nil {
				t.Error(err)
				return
			}
			c.c.SetReadDeadline(time.Now().Add(safety))
			for range each {
				line, err := c.br.ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "OK DEBUG heap-live=") {
					t.Errorf("DEBUG answered %q, %v", line, err)
					return
				}
			}
		})
	}
	wg.Wait()
	took, forced := time.Since(start), forcedGCs()-before
	allowed := uint64(took/debugGCEvery) + 1
	t.Logf("%d DEBUG requests answered in %v with %d forced collections (allowed %d)", clients*each, took.Round(time.Millisecond), forced, allowed)
	if forced > allowed {
		t.Errorf("%d DEBUG requests in %v forced %d collections, over %d (one per %v)", clients*each, took, forced, allowed, debugGCEvery)
	}
}

// TestDebugGCWaitEndsOnStop: a DEBUG waiting for its turn to collect
// gives up when the server stops.
func TestDebugGCWaitEndsOnStop(t *testing.T) {
	var g debugGC
	stop := make(chan struct{})
	calls := 0
	if !g.collect(time.Now(), stop, func() { calls++ }) {
		t.Fatal("the first collection did not run")
	}
	if !g.collect(time.Now().Add(-time.Hour), stop, func() { calls++ }) {
		t.Fatal("a request that arrived before the last collection did not share it")
	}
	close(stop)
	if g.collect(time.Now(), stop, func() { calls++ }) {
		t.Fatal("a request within debugGCEvery of the last collection collected after stop")
	}
	if calls != 2 {
		t.Fatalf("sizes called %d times, want 2 (not when given up)", calls)
	}
}
