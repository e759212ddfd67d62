package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Locker is one process's handle on a lock shared between processes. A Locker
// is used by one goroutine at a time; the processes sharing the lock each open
// their own.
type Locker interface {
	// Lock blocks until this process holds the lock. ctx is honoured before
	// the wait and, for the kinds that wait in user space (sem, spin), while
	// waiting; a wait inside the kernel (flock, fcntl, sysv) ends only with
	// the grant, a signal, or the process's death.
	Lock(ctx context.Context) error
	// TryLock takes the lock if it is free now and reports whether it did.
	TryLock() (bool, error)
	// Unlock releases a lock this process holds.
	Unlock() error
	// Close releases the handle's resources (an open lock file). It does not
	// remove shared resources; the process that prepared them does.
	Close() error
}

// ErrNotHeld is returned by Unlock when this process does not hold the lock,
// where the kind can tell (sem, spin).
var ErrNotHeld = errors.New("lock: not held by this process")

// Config describes the lock that processes share and how this one uses it.
type Config struct {
	// Path is the lock file (flock, fcntl). It is created mode 0600 when
	// missing; it is never removed by a Locker. A symbolic link there is
	// refused, dangling or not (give the path it points to).
	Path string
	// SemID is the System V semaphore set (sysv), made by CreateSysV.
	SemID int
	// Word is the 32-bit word in shared memory (sem, spin), zero when free.
	Word *atomic.Uint32
	// Pid identifies this process in the lock word (sem, spin); 0 means
	// os.Getpid().
	Pid int
	// OnRecover, when set, is called by a sem or spin waiter that took the
	// lock over from a holder that died, with the dead holder's pid.
	OnRecover func(deadPid int)
	// CheckEvery is how long a sem or spin waiter waits without progress
	// before it checks whether the holder is alive; 0 means 20ms.
	CheckEvery time.Duration
}

// Open returns this process's Locker of the given kind.
func Open(kind Kind, cfg Config) (Locker, error) {
	if cfg.Pid == 0 {
		cfg.Pid = os.Getpid()
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 20 * time.Millisecond
	}
	switch kind {
	case None, Atomic:
		return noLock{}, nil
	case Flock:
		return openFlock(cfg)
	case Fcntl:
		return openFcntl(cfg)
	case Sem:
		return openSem(cfg)
	case SysV:
		return openSysV(cfg)
	case Spin:
		return openSpin(cfg)
	}
	return nil, fmt.Errorf("lock: unknown kind %v", kind)
}

// noLock is the Locker of the kinds that take no lock (none, atomic): every
// call succeeds at once.
type noLock struct{}

var _ Locker = noLock{}

func (noLock) Lock(context.Context) error { return nil }
func (noLock) TryLock() (bool, error)     { return true, nil }
func (noLock) Unlock() error              { return nil }
func (noLock) Close() error               { return nil }
