package worker

import (
	"context"
	"errors"
	"fmt"

	"mplock/lockd"
)

// DialLockd is the ClusterDialer of mplock's own lock service: a
// session with one `mplock serve` through the Go client.
//
// This is the service as it is before cluster mode: one server, whose
// session is its connection (a lost connection is a lost session: the
// server releases its locks), preempt as a LOCK that does not wait,
// release as UNLOCK, check as STATUS of one name (linearizable on a
// single server, whatever the consistency asked). The request goes to the
// session's server whichever one was chosen.
func DialLockd(ctx context.Context, servers []string, client string, note func(ClusterNote)) (ClusterService, error) {
	var errs []error
	for _, addr := range servers {
		c, err := lockd.Dial(ctx, addr, lockd.Options{Client: client})
		if err == nil {
			return &lockdService{c: c, addr: addr, leases: map[string]*lockd.Lease{}}, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("worker: no server answered: %w", errors.Join(errs...))
}

type lockdService struct {
	c      *lockd.Client
	addr   string
	leases map[string]*lockd.Lease
}

var _ ClusterService = (*lockdService)(nil)

func (s *lockdService) reply() Reply { return Reply{Node: s.addr, Role: "leader", Leader: s.addr} }

// classify maps a client error: the session's end loses it; a server's
// refusal before the log (busy, shutting down) applied nothing; anything
// else leaves the outcome unknown.
func (s *lockdService) classify(err error) error {
	switch {
	case errors.Is(err, lockd.ErrConnLost), errors.Is(err, lockd.ErrServerClosed), errors.Is(err, lockd.ErrClosed):
		return fmt.Errorf("%w: %v", ErrSessionLost, err)
	case errors.Is(err, lockd.ErrBusy), errors.Is(err, lockd.ErrShutdown), errors.Is(err, lockd.ErrBadName):
		return fmt.Errorf("%w: %v", ErrNotApplied, err)
	}
	return err
}

func (s *lockdService) Preempt(ctx context.Context, name, _ string) (Reply, error) {
	r := s.reply()
	l, err := s.c.TryLock(ctx, name, lockd.Exclusive)
	switch {
	case errors.Is(err, lockd.ErrLocked):
		return r, nil
	case err != nil:
		return r, s.classify(err)
	}
	s.leases[name] = l
	r.OK, r.Token = true, uint64(l.Token)
	return r, nil
}

func (s *lockdService) Release(ctx context.Context, name, _ string) (Reply, error) {
	r := s.reply()
	l := s.leases[name]
	if l == nil {
		// Nothing was sent: the client holds no lease of the name.
		return r, fmt.Errorf("%w: no lease of %s", ErrNotApplied, name)
	}
	err := l.Unlock(ctx)
	switch {
	case err == nil:
		delete(s.leases, name)
		r.OK = true
		return r, nil
	case errors.Is(err, lockd.ErrNotHolder), errors.Is(err, lockd.ErrLeaseExpired), errors.Is(err, lockd.ErrUnlocked):
		delete(s.leases, name)
		return r, nil
	}
	return r, s.classify(err)
}

func (s *lockdService) Check(ctx context.Context, name, _ string, c Consistency) (Reply, error) {
	r := s.reply()
	r.Consistency = c
	st, err := s.c.Status(ctx, name)
	if err != nil {
		if errors.Is(s.classify(err), ErrSessionLost) {
			return r, s.classify(err)
		}
		return r, fmt.Errorf("%w: %v", ErrNotApplied, err) // a failed read changed nothing
	}
	for _, l := range st.Locks {
		if l.Name == name && len(l.Holders) > 0 {
			r.Owner = l.Holders[0].Client
		}
	}
	return r, nil
}

func (s *lockdService) Close() error { return s.c.Close() }
