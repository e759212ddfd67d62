package lock

import (
	"context"
	"fmt"
	"os"

	"github.com/gofrs/flock"
)

// flockLock is a BSD flock(2) lock on a file, through github.com/gofrs/flock.
// The lock belongs to the open file description, so each process opens the
// file itself; util-linux flock(1) on the same file takes the same lock.
type flockLock struct {
	f *flock.Flock
}

var _ Locker = (*flockLock)(nil)

func openFlock(cfg Config) (Locker, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("lock: flock needs a lock file path")
	}
	f := flock.New(cfg.Path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	// Open the file now, so that a bad path fails here and not in the loop.
	if ok, err := f.TryLock(); err != nil {
		return nil, &os.PathError{Op: "flock", Path: cfg.Path, Err: err}
	} else if ok {
		if err := f.Unlock(); err != nil {
			return nil, &os.PathError{Op: "flock", Path: cfg.Path, Err: err}
		}
	}
	return &flockLock{f: f}, nil
}

// Lock tries a non-blocking flock first (the uncontended fast path) and falls
// back to the blocking call.
func (l *flockLock) Lock(ctx context.Context) error {
	if ok, err := l.f.TryLock(); err != nil || ok {
		return l.pathErr(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.pathErr(l.f.Lock())
}

func (l *flockLock) TryLock() (bool, error) {
	ok, err := l.f.TryLock()
	return ok, l.pathErr(err)
}

func (l *flockLock) Unlock() error { return l.pathErr(l.f.Unlock()) }

func (l *flockLock) Close() error { return l.pathErr(l.f.Close()) }

func (l *flockLock) pathErr(err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: "flock", Path: l.f.Path(), Err: err}
}
