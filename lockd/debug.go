package lockd

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"time"
)

// debug answers DEBUG (only with Config.Debug): it collects garbage, then
// reports what the server holds, so that a test or a soak run can check
// that memory follows the live locks and sessions:
//
//	OK DEBUG heap-live=B heap-total=B rss=B goroutines=N sessions=N
//	    connections=N locks=N holders=N waiters=N deadlines=N
//
// heap-live is the heap in use after a collection that began after the
// request arrived (runtime/metrics /gc/heap/live:bytes), heap-total all
// the memory the Go runtime has mapped (/memory/classes/total:bytes), rss
// the resident set from /proc/self/statm (0 where there is none). The
// collections are shared and spaced (debugGC): a client that sends DEBUG
// after DEBUG waits for its answers, and costs the others at most one
// collection a second.
func (ss *session) debug() []byte {
	s := ss.srv
	if !s.cfg.Debug {
		return appendErr(nil, CodeUnknown, "DEBUG is not enabled on this server (mplock serve --debug)")
	}
	var st TableStats
	var conns, goroutines int
	// The sizes just before the collection: whatever they count as gone
	// is garbage by then.
	sizes := func() {
		st = s.Stats()
		s.mu.Lock()
		conns = len(s.conns)
		s.mu.Unlock()
		goroutines = runtime.NumGoroutine()
	}
	if !s.debugGC.collect(time.Now(), s.stop, sizes) {
		return appendErr(nil, CodeShutdown, "server shutting down")
	}
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/total:bytes"}}
	metrics.Read(samples)
	b := appendOK(nil, "DEBUG")
	b = appendKU(b, "heap-live", sampleUint(samples[0]))
	b = appendKU(b, "heap-total", sampleUint(samples[1]))
	b = appendKU(b, "rss", residentBytes())
	b = appendKU(b, "goroutines", uint64(goroutines))
	b = appendKU(b, "sessions", uint64(st.Sessions))
	b = appendKU(b, "connections", uint64(conns))
	b = appendKU(b, "locks", uint64(st.Locks))
	b = appendKU(b, "holders", uint64(st.Holders))
	b = appendKU(b, "waiters", uint64(st.Waiters))
	b = appendKU(b, "deadlines", uint64(st.Deadlines))
	return append(b, '\n')
}

// debugGCEvery is the least time between two of DEBUG's garbage
// collections. A collection per request let two clients sending DEBUG
// back to back raise others' p99 latency to 29 ms.
const debugGCEvery = time.Second

// debugGC runs DEBUG's garbage collections (runtime.GC, which waits for a
// whole cycle): at most one every debugGCEvery, shared by every request
// that arrived before it began. Its zero value is ready to use.
type debugGC struct {
	mu   sync.Mutex // held while one request waits for its turn and collects
	last time.Time  // when the last collection began
}

// collect returns true once a collection that began after arrived has
// ended: one run by another request, or else one it runs itself, no
// sooner than debugGCEvery after the last, calling sizes just before it.
// When it shares another's collection it calls sizes after. It returns
// false, without collecting, if stop is closed while it waits.
func (g *debugGC) collect(arrived time.Time, stop <-chan struct{}, sizes func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last.After(arrived) {
		sizes()
		return true
	}
	if wait := time.Until(g.last.Add(debugGCEvery)); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-stop:
			return false
		}
	}
	sizes()
	g.last = time.Now()
	runtime.GC()
	return true
}

func sampleUint(s metrics.Sample) uint64 {
	if s.Value.Kind() == metrics.KindUint64 {
		return s.Value.Uint64()
	}
	return 0
}

// residentBytes reads this process's resident set size from
// /proc/self/statm (its second field, in pages).
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return pages * uint64(os.Getpagesize())
}
