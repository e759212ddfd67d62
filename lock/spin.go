package lock

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// spinPauses is how many CPU pauses a waiter spends between looks before it
// starts yielding the CPU: on a machine with fewer cores than waiters, pure
// spinning burns the time slice the holder needs to finish.
const spinPauses = 200

// spinLock is a test-and-test-and-set spinlock on a word in shared memory:
// 0 when free, else the holder's pid. Waiters spin with a CPU pause, then
// call sched_yield between looks, and check the holder's liveness every
// Config.CheckEvery, taking the lock over from a dead holder like sem does.
type spinLock struct {
	w   *atomic.Uint32
	me  uint32
	cfg Config
}

var _ Locker = (*spinLock)(nil)

func openSpin(cfg Config) (Locker, error) {
	if cfg.Word == nil {
		return nil, errors.New("lock: spin needs a word in shared memory")
	}
	if cfg.Pid <= 0 {
		return nil, fmt.Errorf("lock: spin: pid %d out of range", cfg.Pid)
	}
	return &spinLock{w: cfg.Word, me: uint32(cfg.Pid), cfg: cfg}, nil
}

func (l *spinLock) TryLock() (bool, error) { return l.w.CompareAndSwap(0, l.me), nil }

func (l *spinLock) Lock(ctx context.Context) error {
	if l.w.CompareAndSwap(0, l.me) {
		return nil
	}
	for range spinPauses {
		cpuRelax()
		if l.w.Load() == 0 && l.w.CompareAndSwap(0, l.me) {
			return nil
		}
	}
	check := time.Now().Add(l.cfg.CheckEvery)
	for yields := 1; ; yields++ {
		yield()
		v := l.w.Load()
		if v == 0 {
			if l.w.CompareAndSwap(0, l.me) {
				return nil
			}
			continue
		}
		if yields%64 != 0 || time.Now().Before(check) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !alive(int(v)) && l.w.CompareAndSwap(v, l.me) {
			if l.cfg.OnRecover != nil {
				l.cfg.OnRecover(int(v))
			}
			return nil
		}
		check = time.Now().Add(l.cfg.CheckEvery)
	}
}

// Unlock checks that this process holds the lock, then releases it with a
// release store: only the holder writes a held word (a waiter replaces it
// only after finding the holder dead), so the check cannot go stale.
func (l *spinLock) Unlock() error {
	if l.w.Load() != l.me {
		return ErrNotHeld
	}
	storeRelease(l.w, 0)
	return nil
}

func (l *spinLock) Close() error { return nil }
