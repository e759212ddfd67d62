package lockd

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
)

// debug answers DEBUG (only with Config.Debug): it collects garbage, then
// reports what the server holds, so that a test or a soak run can check
// that memory follows the live locks and sessions:
//
//	OK DEBUG heap-live=B heap-total=B rss=B goroutines=N sessions=N
//	    connections=N locks=N holders=N waiters=N deadlines=N
//
// heap-live is the heap in use after the collection (runtime/metrics
// /gc/heap/live:bytes), heap-total all the memory the Go runtime has
// mapped (/memory/classes/total:bytes), rss the resident set from
// /proc/self/statm (0 where there is none).
func (ss *session) debug() []byte {
	s := ss.srv
	if !s.cfg.Debug {
		return appendErr(nil, CodeUnknown, "DEBUG is not enabled on this server (mplock serve --debug)")
	}
	// The sizes first: whatever they count as gone is garbage by the
	// collection that follows.
	st := s.Stats()
	s.mu.Lock()
	conns := len(s.conns)
	s.mu.Unlock()
	goroutines := runtime.NumGoroutine()
	runtime.GC()
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
