package lockbench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"mplock/lockd"
)

// Mplock dials mplock's lock server at addr (one without a secret).
func Mplock(addr string) Dialer { return MplockTTL(addr, 0, "") }

// MplockTTL dials mplock's lock server at addr, presenting secret ("":
// none), and takes every lock with a lease of ttl (renewed by the client
// while it is held); 0 asks for none.
func MplockTTL(addr string, ttl time.Duration, secret string) Dialer {
	return func(ctx context.Context, i int) (Locker, error) {
		c, err := lockd.Dial(ctx, addr, lockd.Options{Client: fmt.Sprintf("bench-%d", i), Secret: secret})
		if err != nil {
			return nil, err
		}
		return newMplockLocker(c, ttl), nil
	}
}

func newMplockLocker(c *lockd.Client, ttl time.Duration) *mplockLocker {
	m := &mplockLocker{c: c}
	if ttl > 0 {
		m.opts = []lockd.LockOption{lockd.WithTTL(ttl)}
	}
	return m
}

type mplockLocker struct {
	c     *lockd.Client
	opts  []lockd.LockOption
	lease *lockd.Lease
}

func (m *mplockLocker) Acquire(ctx context.Context, name string) (int, error) {
	l, err := m.c.Lock(ctx, name, lockd.Exclusive, m.opts...)
	m.lease = l
	return 0, err
}

func (m *mplockLocker) Release(ctx context.Context, name string) error {
	return m.lease.Unlock(ctx)
}

func (m *mplockLocker) Close() error { return m.c.Close() }

// MplockRaw speaks the line protocol directly, reading each reply in the
// calling goroutine, as the Redis driver does: it measures the server the
// way the Redis figures measure Redis. Mplock measures the Go client, which
// also runs a reader goroutine for events (lost leases) and keepalives.
// secret, when set, is presented with AUTH first.
func MplockRaw(addr, secret string) Dialer {
	return func(ctx context.Context, i int) (Locker, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		r := &rawLocker{c: c, br: bufio.NewReader(c)}
		if secret != "" {
			if _, err := r.roundTrip("AUTH "+secret+"\n", "OK AUTH"); err != nil {
				c.Close()
				return nil, err
			}
		}
		if _, err := r.roundTrip(fmt.Sprintf("HELLO bench-%d pid=%d\n", i, os.Getpid()), "OK HELLO"); err != nil {
			c.Close()
			return nil, err
		}
		return r, nil
	}
}

type rawLocker struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

func (r *rawLocker) roundTrip(req, want string) (string, error) {
	if _, err := io.WriteString(r.c, req); err != nil {
		return "", err
	}
	return r.expect(want)
}

func (r *rawLocker) expect(want string) (string, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(line, []byte(want)) {
		return "", fmt.Errorf("lockd: got %q, want %q", line, want)
	}
	return string(line), nil
}

func (r *rawLocker) Acquire(ctx context.Context, name string) (int, error) {
	r.buf = append(append(append(r.buf[:0], "LOCK "...), name...), '\n')
	if _, err := r.c.Write(r.buf); err != nil {
		return 0, err
	}
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	switch {
	case bytes.HasPrefix(line, []byte("OK LOCKED ")):
		return 0, nil
	case bytes.HasPrefix(line, []byte("OK QUEUED ")):
		_, err := r.expect("* GRANTED ")
		return 0, err
	}
	return 0, fmt.Errorf("lockd: LOCK %s: %q", name, line)
}

func (r *rawLocker) Release(ctx context.Context, name string) error {
	r.buf = append(append(append(r.buf[:0], "UNLOCK "...), name...), '\n')
	if _, err := r.c.Write(r.buf); err != nil {
		return err
	}
	_, err := r.expect("OK UNLOCKED ")
	return err
}

func (r *rawLocker) Close() error { return r.c.Close() }
