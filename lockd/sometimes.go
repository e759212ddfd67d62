package lockd

import (
	"sync"
	"time"
)

// logEvery is the most often a log line about a flood of connections
// (wrong secrets, refusals) is written.
const logEvery = time.Second

// sometimes rate-limits a log line: allow says yes at most once per
// logEvery, and how many times it said no since, so the line can count
// what it stands for. Its zero value is ready to use.
type sometimes struct {
	mu      sync.Mutex
	last    time.Time
	skipped int
}

func (s *sometimes) allow(now time.Time) (ok bool, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() && now.Sub(s.last) < logEvery {
		s.skipped++
		return false, 0
	}
	s.last, skipped, s.skipped = now, s.skipped, 0
	return true, skipped
}
