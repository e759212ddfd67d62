package lockbench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"mplock/lockd"
)

// A failover benchmark kills a cluster's leader and measures, from the
// kill, how long clients wait for their next successful LOCK: LockLoop is
// such a client, Watch notices the new leader.

// LockLoop locks and unlocks one name through a client again and again,
// and remembers when each LOCK was asked for and when it was granted.
type LockLoop struct {
	c      *lockd.Client
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	cond   *sync.Cond
	grants []span // LOCKs granted, in order
	err    error  // why the loop ended early
	ended  bool
}

type span struct{ asked, granted time.Time }

// StartLockLoop starts the loop on c, which it does not own.
func StartLockLoop(c *lockd.Client, name string) *LockLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &LockLoop{c: c, name: name, cancel: cancel, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	go l.run(ctx)
	return l
}

func (l *LockLoop) run(ctx context.Context) {
	defer close(l.done)
	var err error
	for ctx.Err() == nil {
		asked := time.Now()
		var lease *lockd.Lease
		lease, err = l.c.Lock(ctx, l.name, lockd.Exclusive)
		if err != nil {
			break
		}
		granted := time.Now()
		l.mu.Lock()
		l.grants = append(l.grants, span{asked, granted})
		l.cond.Broadcast()
		l.mu.Unlock()
		if err = lease.Unlock(ctx); err != nil {
			break
		}
	}
	l.mu.Lock()
	if ctx.Err() == nil {
		l.err = err
	}
	l.ended = true
	l.cond.Broadcast()
	l.mu.Unlock()
}

// Granted is how many LOCKs the loop has been granted.
func (l *LockLoop) Granted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.grants)
}

// FirstGrantAfter waits, until deadline, for the first LOCK asked for at
// or after t to be granted, and returns how long after t it was. A LOCK
// asked for before t and granted after it does not count: it may have been
// committed before t. So the figure can exceed the client's wait by one
// UNLOCK and LOCK, never fall short of it.
func (l *LockLoop) FirstGrantAfter(t, deadline time.Time) (time.Duration, error) {
	stop := time.AfterFunc(time.Until(deadline), func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for _, g := range l.grants {
			if !g.asked.Before(t) {
				return g.granted.Sub(t), nil
			}
		}
		switch {
		case l.ended && l.err != nil:
			return 0, fmt.Errorf("lockbench: the client locking %s ended: %w", l.name, l.err)
		case l.ended:
			return 0, fmt.Errorf("lockbench: the client locking %s was stopped", l.name)
		case !time.Now().Before(deadline):
			return 0, fmt.Errorf("lockbench: no LOCK of %s granted within %v", l.name, deadline.Sub(t).Round(time.Millisecond))
		}
		l.cond.Wait()
	}
}

// Stop ends the loop (an outstanding request is abandoned) and waits for
// it.
func (l *LockLoop) Stop() {
	l.cancel()
	<-l.done
}

// WatchLeader asks the members at addrs, each every interval over a
// connection of its own, whom they know as leader (CHECK name
// consistency=stale: a local read, no log entry), and returns a channel
// that yields the time at which one of them first named a leader other
// than old, then closes. It stops at ctx's end (the channel then closes
// without a value).
//
// secret, when set, is presented with AUTH on each connection.
func WatchLeader(ctx context.Context, addrs []string, secret, old, name string, interval time.Duration) <-chan time.Time {
	out := make(chan time.Time, 1)
	var once sync.Once
	found := func(t time.Time) { once.Do(func() { out <- t }) }
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watchOne(ctx, a, secret, old, name, interval, func(t time.Time) { found(t); cancel() })
		}()
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
	}()
	return out
}

func watchOne(ctx context.Context, addr, secret, old, name string, interval time.Duration, found func(time.Time)) {
	var d net.Dialer
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if conn == nil {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil && secret != "" {
				// Pipelined: askLeader skips its OK AUTH.
				_, err = fmt.Fprintf(c, "AUTH %s\n", secret)
			}
			if err == nil {
				conn, br = c, bufio.NewReader(c)
			} else if c != nil {
				c.Close()
			}
		}
		if conn != nil {
			leader, err := askLeader(conn, br, name)
			now := time.Now()
			switch {
			case err != nil:
				conn.Close()
				conn = nil
			case leader != "" && leader != old:
				found(now)
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// askLeader sends one stale CHECK and returns its leader= ("" while the
// member knows none, or refuses a stale read).
func askLeader(conn net.Conn, br *bufio.Reader, name string) (string, error) {
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(conn, "CHECK %s consistency=stale\n", name); err != nil {
		return "", err
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		switch {
		case strings.HasPrefix(line, "OK CHECK "):
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "leader="); ok && v != "-" {
					return v, nil
				}
			}
			return "", nil
		case strings.HasPrefix(line, "ERR "):
			return "", nil
		}
	}
}
