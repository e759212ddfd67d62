package coordinator

import (
	"slices"
	"sync"
	"time"

	"mplock/dmutex"
	"mplock/worker"
)

// MutexLogEntry is one line of a run's live log: an algorithm event of one
// process, or a problem (a refused message, a broken link).
type MutexLogEntry struct {
	At      time.Duration // since the start barrier; negative before it
	Event   *dmutex.Event // nil for a problem
	Problem *Problem      // nil for an event
}

// logLag is how long the live log holds an entry before passing it on: the
// processes report on their own pipes, each flushing every 20ms, so an
// entry is only known to be the next in time order once every process had
// its chance to report what came before it.
const logLag = 100 * time.Millisecond

// liveLog passes entries from every process's note reader to one callback,
// in time order, at most about logLag plus a tick after they happened. The
// readers call add from their goroutines; the callback runs on the log's
// own goroutine, or on the one that calls close.
type liveLog struct {
	emit    func(MutexLogEntry)
	mu      sync.Mutex
	pending []stampedEntry
	started bool  // the start barrier's time is known
	startNs int64 // the start barrier on the shared monotonic clock
	stop    chan struct{}
	done    chan struct{}
}

type stampedEntry struct {
	at int64 // shared monotonic clock, ns
	e  MutexLogEntry
}

func newLiveLog(emit func(MutexLogEntry)) *liveLog {
	l := &liveLog{emit: emit, stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// start sets the time entries are measured from; entries wait until it is
// known.
func (l *liveLog) start(ns int64) {
	l.mu.Lock()
	l.started, l.startNs = true, ns
	l.mu.Unlock()
}

func (l *liveLog) add(at int64, e MutexLogEntry) {
	l.mu.Lock()
	l.pending = append(l.pending, stampedEntry{at: at, e: e})
	l.mu.Unlock()
}

// run passes on, every tick, the entries older than the lag.
func (l *liveLog) run() {
	defer close(l.done)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush(worker.Now() - int64(logLag))
		case <-l.stop:
			return
		}
	}
}

// flush passes on, in time order, every entry before cutoff (all of them
// when cutoff is the largest int64).
func (l *liveLog) flush(cutoff int64) {
	l.mu.Lock()
	if !l.started {
		l.mu.Unlock()
		return
	}
	slices.SortStableFunc(l.pending, func(a, b stampedEntry) int { return cmpNs(a.at, b.at) })
	n := 0
	for n < len(l.pending) && l.pending[n].at < cutoff {
		n++
	}
	out := slices.Clone(l.pending[:n])
	l.pending = slices.Delete(l.pending, 0, n)
	start := l.startNs
	l.mu.Unlock()
	for _, p := range out {
		p.e.At = time.Duration(p.at - start)
		l.emit(p.e)
	}
}

// close stops the ticker and passes on everything left; call it once every
// reader is done.
func (l *liveLog) close() {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	l.started = true
	l.mu.Unlock()
	l.flush(1<<63 - 1)
}

func cmpNs(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
