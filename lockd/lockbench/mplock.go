package lockbench

import (
	"context"
	"fmt"

	"mplock/lockd"
)

// Mplock dials mplock's lock server at addr.
func Mplock(addr string) Dialer {
	return func(ctx context.Context, i int) (Locker, error) {
		c, err := lockd.Dial(ctx, addr, lockd.Options{Client: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			return nil, err
		}
		return &mplockLocker{c: c}, nil
	}
}

type mplockLocker struct {
	c     *lockd.Client
	lease *lockd.Lease
}

func (m *mplockLocker) Acquire(ctx context.Context, name string) (int, error) {
	l, err := m.c.Lock(ctx, name, lockd.Exclusive)
	m.lease = l
	return 0, err
}

func (m *mplockLocker) Release(ctx context.Context, name string) error {
	return m.lease.Unlock(ctx)
}

func (m *mplockLocker) Close() error { return m.c.Close() }
