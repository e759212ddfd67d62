package coordinator

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"mplock/shm"
)

// waitReady waits until the futex word ready (incremented and woken by each
// process as it registers) counts every process in procs. It fails when one
// of them ends first (naming it and how it ended), when ctx ends, or after
// barrierTimeout. what names the processes in the timeout's message
// ("workers", "processes").
func waitReady(ctx context.Context, ready *atomic.Uint32, procs []*child, what string) error {
	want := uint32(len(procs))
	deadline := time.Now().Add(barrierTimeout)
	for {
		n := ready.Load()
		if n == want {
			return nil
		}
		if err := endedEarly(procs); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("coordinator: only %d of %d %s were ready after %v", n, want, what, barrierTimeout)
		}
		if err := shm.Wait(ready, n, 50*time.Millisecond); err != nil && !errors.Is(err, shm.ErrTimeout) {
			return err
		}
	}
}

// endedEarly returns an error naming the first of procs that has already
// ended, and how, or nil.
func endedEarly(procs []*child) error {
	for _, c := range procs {
		select {
		case <-c.done:
			return fmt.Errorf("coordinator: %s (pid %d) ended before the start: %s", c.name, c.pid(), c.describe())
		default:
		}
	}
	return nil
}
