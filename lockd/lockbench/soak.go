package lockbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Soak runs sc's clients as Run does, for d, and calls sample every
// interval (and once at the end) with the time since the start and the
// pairs completed so far, so that a caller can watch the server's memory
// while it works (`mplock bench lockd --soak`). sample runs in Soak's
// goroutine; the clients go on meanwhile.
func Soak(ctx context.Context, target string, dial Dialer, sc Scenario, d, every time.Duration, prefix string,
	sample func(elapsed time.Duration, pairs int64)) error {
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
			return fmt.Errorf("lockbench: %s: client %d: %w", target, i, err)
		}
		lockers[i] = l
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pairs atomic.Int64
	errs := make([]error, len(lockers))
	var wg sync.WaitGroup
	for i, l := range lockers {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if sc.Shared {
			name = prefix + "-shared"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := l.Acquire(ctx, name); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
						cancel()
					}
					return
				}
				if err := l.Release(ctx, name); err != nil {
					if ctx.Err() == nil {
						errs[i] = err
						cancel()
					}
					return
				}
				pairs.Add(1)
			}
		}()
	}
	start := time.Now()
	t := time.NewTicker(every)
	defer t.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
loop:
	for {
		select {
		case <-t.C:
			sample(time.Since(start), pairs.Load())
		case <-end.C:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	sample(time.Since(start), pairs.Load())
	cancel()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lockbench: %s: %w", target, err)
	}
	return nil
}
