package lockd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The local backend's clock. Its timer goroutine reads the clock at least
// every tick; a gap of more than stallAfter between two readings means the
// process itself did not run meanwhile (SIGSTOP, a paused VM, a starved
// machine), so its holders could not renew: it extends their leases.
const (
	tick       = 250 * time.Millisecond
	stallAfter = time.Second
)

// local is the backend of one server process: the Table in memory, the
// mutex around it (held for microseconds per change, never across I/O or
// a wait), the outboxes of the sessions connected here, the goroutine that
// applies lease expiries and wait timeouts when they fall due, and the
// token store.
type local struct {
	log   *slog.Logger
	wait  prometheus.Histogram // nil without metrics; set and read under mu
	store TokenStore
	above Token         // every token of this run is above it
	ttl   time.Duration // the lease of a LOCK that names no ttl=

	mu        sync.Mutex
	table     *Table
	outs      map[SessionID]*outbox
	draining  bool
	seen      time.Time // the latest reading of the clock under mu; see observe
	ceiling   Token     // the store has reserved every token up to here
	reserving bool      // a Reserve ahead of need is under way
	armed     time.Time // when the timer goroutine will next wake
	scratch   []byte    // for formatting lines under mu; pushes copy them
	logq      []logLine // to log once mu is released
	kicks     []*outbox // pushed to under mu: to kick once it is released
	stalls    uint64
	extended  uint64
	failErr   error

	wake     chan struct{} // a deadline came earlier than armed
	quit     chan struct{}
	fail     chan struct{} // closed when failErr is set
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// logLine is a log record made under mu and written after it is released,
// so that a slow log destination never holds up the table.
type logLine struct {
	level slog.Level
	msg   string
	args  []any
}

func newLocal(limits TableLimits, defaultTTL time.Duration, store TokenStore, log *slog.Logger) (*local, error) {
	above, err := store.Start()
	if err != nil {
		return nil, err
	}
	b := &local{
		log:   log,
		store: store,
		above: above,
		ttl:   defaultTTL,
		table: NewTable(limits),
		outs:  make(map[SessionID]*outbox),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		fail:  make(chan struct{}),
	}
	b.table.RaiseLastToken(above)
	if b.ceiling, err = store.Reserve(above + 1); err != nil {
		return nil, err
	}
	b.seen = time.Now()
	b.armed = b.seen.Add(tick)
	b.wg.Add(1)
	go b.timers()
	return b, nil
}

// lock reads the clock, takes mu, and extends the leases if the clock
// jumped. The clock is read before the lock, to keep the critical section
// short; so a reading may be a little older than one already seen (it is
// then no stall).
func (b *local) lock() time.Time {
	now := time.Now()
	b.mu.Lock()
	b.observe(now)
	return now
}

// unlock releases mu, then gets the output pushed under it on its way
// (outbox.kick: a non-blocking write, or the session's writer) and writes
// the log lines made under it.
func (b *local) unlock() {
	q := b.logq
	b.logq = nil
	var kick [8]*outbox
	ks := append(kick[:0], b.kicks...)
	for _, o := range b.kicks {
		o.kicked = false
	}
	clear(b.kicks)
	b.kicks = b.kicks[:0]
	b.mu.Unlock()
	for _, o := range ks {
		o.kick()
	}
	for _, l := range q {
		b.log.Log(context.Background(), l.level, l.msg, l.args...)
	}
}

// observe notices that the clock moved further since its last reading than
// the timer's tick allows: the server was not running. Its holders could
// not renew while it stood still, so every lease gets its full TTL from
// now (Table.ExtendLeases; etcd's lessor does the same for every lease
// when a new leader takes over). A holder that then fails to renew within
// its TTL, while the server runs, loses its lock as usual.
func (b *local) observe(now time.Time) {
	if gap := now.Sub(b.seen); gap > stallAfter {
		n := b.table.ExtendLeases(now)
		b.stalls++
		b.extended += uint64(n)
		b.logq = append(b.logq, logLine{slog.LevelWarn, "server did not run for a while (stopped, paused or starved): leases extended rather than expired",
			[]any{"gap", gap.Round(time.Millisecond), "leases", n}})
	}
	if now.After(b.seen) {
		b.seen = now
	}
}

// reserveAhead: when fewer tokens than this are left below a store's
// ceiling, the next ceiling is reserved in the background.
const reserveAhead = 1 << 15

// reserve makes sure that the store has reserved every token the next
// change can hand out (one per waiter, one for a LOCK), reserving the next
// block ahead of need in the background. It reports false, having failed
// the backend, when the store cannot.
func (b *local) reserve() bool {
	need := b.table.LastToken() + Token(b.table.stats.Waiters) + 1
	if need <= b.ceiling {
		if !b.reserving && b.ceiling-need < reserveAhead {
			b.reserving = true
			ahead := b.ceiling + 1
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				c, err := b.store.Reserve(ahead)
				b.mu.Lock()
				b.reserving = false
				if err == nil && c > b.ceiling {
					b.ceiling = c
				}
				b.mu.Unlock()
			}()
		}
		return true
	}
	c, err := b.store.Reserve(need)
	if err != nil {
		b.failLocked(err)
		return false
	}
	b.ceiling = c
	return true
}

// failLocked stops the backend for good: no token may be handed out that
// the store has not reserved, so every lock is taken back and every wait
// cancelled, and the server is told (failed) to shut down.
func (b *local) failLocked(err error) {
	if b.failErr != nil {
		return
	}
	b.failErr = err
	close(b.fail)
	b.logq = append(b.logq, logLine{slog.LevelError, "token store failed: taking every lock back and stopping, so that no fencing token can repeat", []any{"err", err}})
	b.drainLocked()
}

func (b *local) failed() <-chan struct{} { return b.fail }

func (b *local) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failErr
}

func (b *local) open(id SessionID, info SessionInfo, out *outbox) error {
	b.lock()
	defer b.unlock()
	if b.draining {
		return ErrShutdown
	}
	b.table.Open(id, info)
	b.outs[id] = out
	return nil
}

func (b *local) hello(id SessionID, client string, pid int) {
	b.mu.Lock()
	b.table.Hello(id, client, pid)
	b.mu.Unlock()
}

func (b *local) close(id SessionID) {
	now := b.lock()
	if _, ok := b.outs[id]; ok {
		if b.reserve() {
			b.deliver(b.table.Close(now, id), id)
		} else {
			b.table.Close(now, id) // drained: grants nothing
		}
		delete(b.outs, id)
	}
	b.unlock()
}

func (b *local) status(q StatusQuery) Status {
	now := b.lock()
	defer b.unlock()
	return b.table.StatusPage(now, q)
}

// check returns the holders of name, as CHECK lists them.
func (b *local) check(name string) []HolderStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.table.Owners(name)
}

func (b *local) stats() TableStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.table.Stats()
}

func (b *local) tokens() (string, Token) { return b.store.Kind(), b.above }

func (b *local) drain() {
	b.lock()
	b.drainLocked()
	b.unlock()
}

func (b *local) drainLocked() {
	if !b.draining {
		b.draining = true
		b.deliver(b.table.Drain(b.seen), 0)
	}
}

func (b *local) stop() {
	b.stopOnce.Do(func() { close(b.quit) })
	b.wg.Wait()
}

// apply runs one LOCK, UNLOCK, RENEW or CANCEL of session id and pushes its
// reply to id's outbox, and the events it causes to theirs.
func (b *local) apply(id SessionID, req Request) {
	now := b.lock()
	defer b.unlock()
	out := b.outs[id]
	if out == nil {
		return // the session ended meanwhile
	}
	if b.draining || !b.reserve() {
		out.push(appendErr(b.scratch[:0], CodeShutdown, "server shutting down"))
		return
	}
	t := b.table
	switch req.Verb {
	case VerbLock:
		r := LockRequest{Name: req.Name, Mode: req.Mode, TTL: b.ttl, Wait: -1}
		if req.HasTTL {
			r.TTL = req.TTL
		}
		if req.HasWait {
			r.Wait = req.Wait
		}
		res, err := t.Lock(now, id, r)
		switch {
		case err != nil:
			b.scratch = appendErr(b.scratch[:0], codeOf(err), lockErrText(t, req.Name, err))
		case res.Granted:
			b.scratch = appendLocked(b.scratch[:0], res.Grant)
			if b.wait != nil {
				b.wait.Observe(0)
			}
		default:
			if r.Mode == 0 {
				r.Mode = Exclusive
			}
			b.scratch = appendQueued(b.scratch[:0], req.Name, r.Mode, res.Position)
		}
		out.push(b.scratch)
		b.rearm()
	case VerbUnlock:
		g, _ := t.Holding(id, req.Name)
		evs, err := t.Unlock(now, id, req.Name, req.Token)
		if err != nil {
			out.push(appendErr(b.scratch[:0], codeOf(err), clipErr(err)))
			return
		}
		b.scratch = append(appendKU(append(append(appendOK(b.scratch[:0], "UNLOCKED"), ' '), req.Name...), "token", uint64(g.Token)), '\n')
		out.push(b.scratch)
		b.deliver(evs, id)
	case VerbRenew:
		ttl := time.Duration(0)
		if req.HasTTL {
			ttl = req.TTL
		}
		g, evs, err := t.Renew(now, id, req.Name, req.Token, ttl)
		// A renewal that came too late applied the expiry: the holder's
		// LOST comes before the ERR, as if the timer had run first, and
		// the next holder's grant (and lease) take effect.
		b.deliver(evs, id)
		b.rearm()
		if err != nil {
			out.push(appendErr(b.scratch[:0], codeOf(err), clipErr(err)))
			return
		}
		out.push(append(appendGrant(appendOK(b.scratch[:0], "RENEWED"), g), '\n'))
	case VerbCancel:
		evs, err := t.Cancel(now, id, req.Name)
		if err != nil {
			out.push(appendErr(b.scratch[:0], codeOf(err), clipErr(err)))
			return
		}
		out.push(append(append(append(appendOK(b.scratch[:0], "CANCELLED"), ' '), req.Name...), '\n'))
		b.deliver(evs, id)
	default:
		out.push(appendErr(b.scratch[:0], CodeSyntax, fmt.Sprintf("%s does not change the table", req.Verb)))
	}
}

// deliver pushes each event to its session's outbox. The requester's own
// events are written with its reply by its reader; others are kicked once
// mu is released (unlock). Called with mu held: events reach each session in the
// order the table produced them, after the reply that queued them.
func (b *local) deliver(evs []Event, requester SessionID) {
	for _, ev := range evs {
		if ev.Kind == EventGranted && b.wait != nil {
			b.wait.Observe(ev.Waited.Seconds())
		}
		if ev.Kind == EventLost || ev.Kind == EventTimedOut {
			client := ""
			if s, ok := b.table.sessions[ev.Session]; ok {
				client = s.info.Client
			}
			b.logq = append(b.logq, logLine{slog.LevelInfo, "lock event", []any{"event", ev.Kind.String(), "name", ev.Name,
				"session", ev.Session, "client", client, "token", ev.Token, "reason", ev.Reason}})
		}
		out := b.outs[ev.Session]
		if out == nil {
			continue
		}
		b.scratch = appendEvent(b.scratch[:0], ev)
		if out.push(b.scratch) && ev.Session != requester && !out.kicked {
			out.kicked = true
			b.kicks = append(b.kicks, out)
		}
	}
}

// rearm wakes the timer goroutine if the table's next deadline is earlier
// than the time it sleeps until. Called with mu held.
func (b *local) rearm() {
	if next, ok := b.table.NextDeadline(); ok && next.Before(b.armed) {
		b.armed = next
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// timers applies lease expiries and wait timeouts when they fall due, and
// reads the clock at least every tick so that observe can tell a stall.
func (b *local) timers() {
	defer b.wg.Done()
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-b.wake:
		case <-t.C:
		}
		now := b.lock()
		if b.reserve() {
			b.deliver(b.table.Advance(now), 0)
		}
		next := now.Add(tick)
		if d, ok := b.table.NextDeadline(); ok && d.Before(next) {
			next = d
		}
		b.armed = next
		b.unlock()
		t.Reset(time.Until(next))
	}
}

// stallStats are the stalls observe found and the leases they extended.
func (b *local) stallStats() (stalls, extended uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stalls, b.extended
}
