package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"mplock/lockd"
)

// dialTimeout bounds connecting to a lock server and its HELLO.
const dialTimeout = 10 * time.Second

// RunHolder is one holder process of `mplock deadlock`: it connects to the
// servers of its locks (one session each, named spec.Name), says ready, and
// on HolderGo takes spec.Locks in order through the servers' real queues,
// noting every step on notes. It returns nil when it has taken and released
// every lock, and also when it is stopped: ctx cancelled or control ended
// (the coordinator closes it), after withdrawing any wait. A lock server
// lost mid-run is an error.
func RunHolder(ctx context.Context, spec HolderSpec, control io.Reader, notes io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := &holder{spec: spec, notes: &holderNotes{w: notes}, start: make(chan struct{}), next: make(chan struct{}),
		clients: map[string]*lockd.Client{}}
	go h.readControl(control, cancel)
	defer h.closeAll()

	for _, l := range spec.Locks {
		if h.clients[l.Addr] != nil {
			continue
		}
		dctx, dcancel := context.WithTimeout(ctx, dialTimeout)
		c, err := lockd.Dial(dctx, l.Addr, lockd.Options{Client: spec.Name})
		dcancel()
		if err != nil {
			return h.fail(ctx, "connecting", err)
		}
		h.clients[l.Addr] = c
	}
	h.notes.write(HolderNote{Kind: HolderReady})
	select {
	case <-h.start:
	case <-ctx.Done():
		h.stopped("before the start")
		return nil
	}
	return h.run(ctx)
}

type holder struct {
	spec    HolderSpec
	notes   *holderNotes
	clients map[string]*lockd.Client
	start   chan struct{}
	next    chan struct{}
	held    []*lockd.Lease
	retries int
	doing   string // for a stop note: "waiting for lock2", "holding lock1"
}

// readControl closes start and next as their lines come, and cancels the
// run when the coordinator closes the pipe.
func (h *holder) readControl(r io.Reader, cancel func()) {
	var once [2]sync.Once
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case HolderGo:
			once[0].Do(func() { close(h.start) })
		case HolderNext:
			once[1].Do(func() { close(h.next) })
		}
	}
	cancel()
}

func (h *holder) closeAll() {
	for _, c := range h.clients {
		c.Close()
	}
}

func (h *holder) run(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(h.spec.Seed, h.spec.Seed^0x9e3779b97f4a7c15))
	for {
		gaveUp, err := h.attempt(ctx)
		switch {
		case ctx.Err() != nil:
			h.stopped(h.doing)
			return nil
		case err != nil:
			return h.fail(ctx, h.doing, err)
		case !gaveUp:
			for i := len(h.held) - 1; i >= 0; i-- {
				if err := h.release(ctx, i); err != nil {
					return h.fail(ctx, "releasing "+h.held[i].Name, err)
				}
			}
			h.notes.write(HolderNote{Kind: HolderDone, Retries: h.retries})
			return nil
		}
		// Gave up: release everything, back off, start over.
		for i := len(h.held) - 1; i >= 0; i-- {
			if err := h.release(ctx, i); err != nil {
				return h.fail(ctx, "releasing "+h.held[i].Name, err)
			}
		}
		h.held = h.held[:0]
		h.retries++
		limit := h.spec.Backoff << min(h.retries, 6)
		wait := time.Duration(rng.Int64N(int64(limit) + 1))
		h.notes.write(HolderNote{Kind: HolderBackoff, Backoff: wait})
		h.doing = "backing off"
		if !sleep(ctx, wait) {
			h.stopped(h.doing)
			return nil
		}
	}
}

// attempt takes every lock in order, holding each for Hold. It returns
// gaveUp when a timed acquire ran out (the locks taken so far are still in
// h.held), and an error naming the lock if one it holds is lost meanwhile.
func (h *holder) attempt(ctx context.Context) (gaveUp bool, err error) {
	for i, l := range h.spec.Locks {
		gaveUp, err := h.step(ctx, i, l)
		if gaveUp || err != nil {
			return gaveUp, err
		}
	}
	return false, nil
}

// step takes lock i and holds it for Hold, while watching the locks
// already held: each lease's Done closes, by the client's own clock, when
// the server may have given that lock to someone else, and a holder must
// not go on as if it held it.
func (h *holder) step(ctx context.Context, i int, l HolderLock) (gaveUp bool, err error) {
	hctx, stop := h.whileHeld(ctx)
	defer stop()
	lost := func(err error) error {
		if ctx.Err() == nil && hctx.Err() != nil {
			return context.Cause(hctx)
		}
		return err
	}
	timed := i > 0 && h.spec.TryTimeout > 0
	h.doing = "waiting for " + l.Name
	lease, err := h.acquire(hctx, l, timed)
	if timed && errors.Is(err, lockd.ErrTimeout) {
		return true, nil
	}
	if err != nil {
		return false, lost(err)
	}
	h.held = append(h.held, lease)
	h.doing = "holding " + heldNames(h.held)
	stop()
	hctx, stop = h.whileHeld(ctx)
	defer stop()
	if i == 0 && h.spec.Sync && h.retries == 0 {
		select {
		case <-h.next:
		case <-hctx.Done():
			return false, lost(ctx.Err())
		}
	}
	if !sleep(hctx, h.spec.Hold) {
		return false, lost(ctx.Err())
	}
	return false, nil
}

// whileHeld returns a context that ends with ctx, or when a lock in h.held
// is lost, with that loss as its cause.
func (h *holder) whileHeld(ctx context.Context) (context.Context, context.CancelFunc) {
	hctx, cancel := context.WithCancelCause(ctx)
	for _, l := range h.held {
		go func() {
			select {
			case <-l.Done():
				cancel(fmt.Errorf("lost %s while holding it: %w", l.Name, l.Err()))
			case <-hctx.Done():
			}
		}()
	}
	return hctx, func() { cancel(nil) }
}

// acquire takes one lock through the server's queue. When the request has to
// queue, it asks the same server who holds the lock, for its note; the note
// of the grant waits for that one, so that a holder's notes are in order.
func (h *holder) acquire(ctx context.Context, l HolderLock, timed bool) (*lockd.Lease, error) {
	c := h.clients[l.Addr]
	var asked sync.WaitGroup
	onQueued := func(pos int) {
		at := time.Now().UnixNano()
		asked.Add(1)
		go func() {
			defer asked.Done()
			n := HolderNote{Kind: HolderWaiting, At: at, Lock: l.Name, Position: pos}
			sctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			st, err := c.Status(sctx, l.Name)
			cancel()
			if err == nil {
				for _, ls := range st.Locks {
					for _, ho := range ls.Holders {
						if ho.Session != c.Session() {
							n.Holder, n.HolderPID = ho.Client, ho.PID
						}
					}
				}
			}
			h.notes.write(n)
		}()
	}
	opts := []lockd.LockOption{lockd.OnQueued(onQueued)}
	if timed {
		// Bounded by the server, which then shows the wait's deadline to
		// the detector: a timed wait is never part of a deadlock.
		opts = append(opts, lockd.WithWait(h.spec.TryTimeout))
	}
	began := time.Now()
	lease, err := c.Lock(ctx, l.Name, lockd.Exclusive, opts...)
	asked.Wait()
	if err != nil {
		if timed && errors.Is(err, lockd.ErrTimeout) {
			h.notes.write(HolderNote{Kind: HolderGaveUp, Lock: l.Name, Waited: time.Since(began)})
		}
		return nil, err
	}
	h.notes.write(HolderNote{Kind: HolderGot, Lock: l.Name, Token: uint64(lease.Token), Waited: lease.Waited})
	return lease, nil
}

// release unlocks h.held[i]. Its note carries the time the release was
// asked for, so that it comes before the grant it lets through on the
// timeline.
func (h *holder) release(ctx context.Context, i int) error {
	l := h.held[i]
	at := time.Now().UnixNano()
	if err := l.Unlock(ctx); err != nil {
		return err
	}
	h.notes.write(HolderNote{Kind: HolderReleased, At: at, Lock: l.Name})
	return nil
}

func (h *holder) stopped(doing string) {
	h.notes.write(HolderNote{Kind: HolderStopped, Text: doing})
}

// fail notes err and returns it, unless the run was stopped meanwhile (a
// stop cancels the calls in flight, which then fail).
func (h *holder) fail(ctx context.Context, doing string, err error) error {
	if ctx.Err() != nil {
		h.stopped(doing)
		return nil
	}
	err = fmt.Errorf("%s: %w", doing, err)
	h.notes.write(HolderNote{Kind: HolderFailed, Text: err.Error()})
	return err
}

func heldNames(ls []*lockd.Lease) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.Name
	}
	return strings.Join(names, " and ")
}

// sleep waits for d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
