package lockd

import (
	"container/heap"
	"fmt"
	"sort"
	"time"

	"github.com/google/btree"
)

// SessionID names one client connection for as long as the server lives.
type SessionID uint64

// Token is a fencing token: every grant of every name takes the next value
// of one counter, so a later holder of a name always has a larger token than
// an earlier one, and no two grants share a token (across restarts too:
// the server starts the counter from its TokenStore). A resource that
// remembers the largest token it has seen can refuse a stale holder (one
// whose lease expired while it was paused) even if the stale holder still
// believes it holds the lock.
type Token uint64

// LockRequest asks the table for a lock.
type LockRequest struct {
	Name string
	Mode Mode
	// TTL, when positive, is the lease: the holder must Renew within TTL of
	// the grant (and of each renewal) or lose the lock. Zero: no lease; the
	// lock lasts as long as the session.
	TTL time.Duration
	// Wait bounds how long the request may queue: negative waits for ever,
	// zero is a try-lock (ErrLocked rather than queueing), positive times out.
	Wait time.Duration
}

// Grant is a lock held.
type Grant struct {
	Name    string
	Mode    Mode
	Token   Token
	TTL     time.Duration
	Expires time.Time // zero without a lease
}

// LockResult is the outcome of Table.Lock: either Granted, or queued at
// Position (1 is next in line).
type LockResult struct {
	Granted  bool
	Grant    Grant
	Position int
}

// EventKind says what happened to a session's lock or wait without it
// asking at that moment; the server turns each into an asynchronous line.
type EventKind uint8

const (
	// EventGranted: a queued request was granted (Token, TTL, Waited).
	EventGranted EventKind = iota + 1
	// EventLost: a held lock was taken away (Reason: expired, shutdown).
	EventLost
	// EventTimedOut: a queued request's Wait ran out; it is no longer queued.
	EventTimedOut
	// EventCancelled: a queued request was dropped by the server (shutdown).
	EventCancelled
)

func (k EventKind) String() string {
	switch k {
	case EventGranted:
		return "GRANTED"
	case EventLost:
		return "LOST"
	case EventTimedOut:
		return "TIMEOUT"
	case EventCancelled:
		return "CANCELLED"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Reason says why a lock was lost or a wait cancelled.
type Reason string

const (
	ReasonExpired  Reason = "expired"  // the lease was not renewed in time
	ReasonShutdown Reason = "shutdown" // the server is stopping
)

// Event is addressed to one session.
type Event struct {
	Kind    EventKind
	Session SessionID
	Name    string
	Mode    Mode
	Token   Token
	TTL     time.Duration
	Waited  time.Duration // how long the request queued (Granted, TimedOut)
	Reason  Reason        // Lost, Cancelled
}

// SessionInfo describes a session for status listings.
type SessionInfo struct {
	Client string // the name it gave in HELLO ("" before)
	PID    int    // the pid it gave in HELLO (0 before)
	Addr   string // its remote address
	Since  time.Time
}

// TableLimits bound what one session may ask of the table.
type TableLimits struct {
	// MaxLocksPerSession bounds a session's held locks plus queued
	// requests; zero means DefaultMaxLocksPerSession.
	MaxLocksPerSession int
}

// DefaultMaxLocksPerSession is the default TableLimits.MaxLocksPerSession.
const DefaultMaxLocksPerSession = 256

type holder struct {
	session SessionID
	mode    Mode
	token   Token
	since   time.Time
	ttl     time.Duration
	expires time.Time
	dl      *deadline // the lease's expiry; nil without a lease
}

type waiter struct {
	session  SessionID
	mode     Mode
	ttl      time.Duration
	since    time.Time
	deadline time.Time // zero: waits for ever
	dl       *deadline // the wait's timeout; nil when it waits for ever
}

type lockState struct {
	holders []*holder // all Shared, or one Exclusive
	queue   []*waiter // FIFO
}

type sessionState struct {
	info    SessionInfo
	held    map[string]*holder
	waiting map[string]*waiter
	peaks   [2]int // of held and waiting, for shrink
}

// TableStats are running totals, for metrics.
type TableStats struct {
	Sessions, Holders, Waiters int
	Grants                     [3]uint64 // by Mode
	Expired, TimedOut          uint64
	// Locks counts names held or waited for, Deadlines the lease expiries
	// and wait timeouts scheduled: both follow the live locks and waits.
	Locks, Deadlines int
}

// Table is the lock table. It is a pure state machine: no I/O, no
// goroutines, no clock; the caller passes the time to every call that needs
// it, so leases and wait timeouts are tested deterministically. A Table is
// not safe for concurrent use. The zero value is not usable; use NewTable.
type Table struct {
	limits    TableLimits
	locks     map[string]*lockState
	names     *btree.BTreeG[string] // the keys of locks, in order: STATUS pages
	sessions  map[SessionID]*sessionState
	lastToken Token
	deadlines deadlineHeap // live lease expiries and wait timeouts only
	stats     TableStats
	peaks     [2]int // of locks and sessions, for shrink
}

// NewTable returns an empty table.
func NewTable(limits TableLimits) *Table {
	if limits.MaxLocksPerSession <= 0 {
		limits.MaxLocksPerSession = DefaultMaxLocksPerSession
	}
	return &Table{
		limits:   limits,
		locks:    make(map[string]*lockState),
		names:    newNameIndex(),
		sessions: make(map[SessionID]*sessionState),
	}
}

// newNameIndex returns an empty ordered index of names. A B-tree of
// degree 32 (as etcd's key index): a name added or removed costs
// O(log n) comparisons, and a STATUS page O(log n + its length) instead
// of a pass over every name.
func newNameIndex() *btree.BTreeG[string] { return btree.NewOrderedG[string](32) }

// Open registers a session. Opening an open session only updates its info.
func (t *Table) Open(id SessionID, info SessionInfo) {
	if s, ok := t.sessions[id]; ok {
		s.info = info
		return
	}
	t.sessions[id] = &sessionState{info: info, held: map[string]*holder{}, waiting: map[string]*waiter{}}
	t.stats.Sessions++
}

// Hello records the name and pid a session gave for itself.
func (t *Table) Hello(id SessionID, client string, pid int) {
	if s, ok := t.sessions[id]; ok {
		s.info.Client, s.info.PID = client, pid
	}
}

// Lock grants r to session id at once, queues it, or refuses it: ErrBadName,
// ErrHeld (the session already holds or waits for the name: locks are not
// re-entrant), ErrLimit, ErrLocked (r.Wait == 0 and the lock is not free for
// r.Mode). A request is granted at once only when no one is queued and it
// is compatible with the holders, so no request overtakes an earlier one.
func (t *Table) Lock(now time.Time, id SessionID, r LockRequest) (LockResult, error) {
	if err := ValidName(r.Name); err != nil {
		return LockResult{}, err
	}
	s, ok := t.sessions[id]
	if !ok {
		return LockResult{}, fmt.Errorf("lockd: unknown session %d", id)
	}
	if r.Mode != Shared {
		r.Mode = Exclusive
	}
	if _, ok := s.held[r.Name]; ok {
		return LockResult{}, ErrHeld
	}
	if _, ok := s.waiting[r.Name]; ok {
		return LockResult{}, ErrHeld
	}
	if len(s.held)+len(s.waiting) >= t.limits.MaxLocksPerSession {
		return LockResult{}, fmt.Errorf("%w (%d)", ErrLimit, t.limits.MaxLocksPerSession)
	}
	l := t.locks[r.Name]
	if l == nil {
		l = &lockState{}
		t.locks[r.Name] = l
		t.names.ReplaceOrInsert(r.Name)
	}
	if len(l.queue) == 0 && grantable(l, r.Mode) {
		h := t.grant(now, id, s, r.Name, l, r.Mode, r.TTL)
		return LockResult{Granted: true, Grant: h.grantOf(r.Name)}, nil
	}
	if r.Wait == 0 {
		t.dropIfIdle(r.Name, l)
		return LockResult{}, ErrLocked
	}
	w := &waiter{session: id, mode: r.Mode, ttl: r.TTL, since: now}
	if r.Wait > 0 {
		w.deadline = now.Add(r.Wait)
		w.dl = t.deadlines.add(w.deadline, r.Name, id, false)
	}
	l.queue = append(l.queue, w)
	s.waiting[r.Name] = w
	t.stats.Waiters++
	return LockResult{Position: len(l.queue)}, nil
}

// grantable reports whether a request in mode m may join l's holders now.
func grantable(l *lockState, m Mode) bool {
	return len(l.holders) == 0 || compatible(l.holders[0].mode, m)
}

func (t *Table) grant(now time.Time, id SessionID, s *sessionState, name string, l *lockState, m Mode, ttl time.Duration) *holder {
	t.lastToken++
	h := &holder{session: id, mode: m, token: t.lastToken, since: now, ttl: ttl}
	if ttl > 0 {
		h.expires = now.Add(ttl)
		h.dl = t.deadlines.add(h.expires, name, id, true)
	}
	l.holders = append(l.holders, h)
	s.held[name] = h
	t.stats.Holders++
	t.stats.Grants[m]++
	return h
}

func (h *holder) grantOf(name string) Grant {
	return Grant{Name: name, Mode: h.mode, Token: h.token, TTL: h.ttl, Expires: h.expires}
}

// Unlock releases session id's lock on name. A non-zero token must be the
// one of the grant, so that a release meant for an earlier grant cannot
// release a later one. Anyone but the holder gets ErrNotHolder. The events
// are the grants this release lets through.
func (t *Table) Unlock(now time.Time, id SessionID, name string, token Token) ([]Event, error) {
	_, h, err := t.holding(id, name, token)
	if err != nil {
		return nil, err
	}
	return t.release(now, name, h, nil), nil
}

func (t *Table) holding(id SessionID, name string, token Token) (*sessionState, *holder, error) {
	s, ok := t.sessions[id]
	if !ok {
		return nil, nil, ErrNotHolder
	}
	h, ok := s.held[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotHolder, name)
	}
	if token != 0 && h.token != token {
		return nil, nil, fmt.Errorf("%w: %s with token %d (this session holds token %d)", ErrNotHolder, name, token, h.token)
	}
	return s, h, nil
}

// release removes h from name's holders and grants what can follow,
// appending the events to evs.
func (t *Table) release(now time.Time, name string, h *holder, evs []Event) []Event {
	l := t.locks[name]
	for i, x := range l.holders {
		if x == h {
			l.holders = append(l.holders[:i], l.holders[i+1:]...)
			break
		}
	}
	s := t.sessions[h.session]
	delete(s.held, name)
	s.held = shrink(s.held, &s.peaks[0])
	t.deadlines.remove(h.dl)
	t.stats.Holders--
	evs = t.promote(now, name, l, evs)
	t.dropIfIdle(name, l)
	return evs
}

// promote grants queued requests from the head of l's queue for as long as
// the head is compatible with the holders: one writer, or a run of readers.
func (t *Table) promote(now time.Time, name string, l *lockState, evs []Event) []Event {
	for len(l.queue) > 0 && grantable(l, l.queue[0].mode) {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		t.deadlines.remove(w.dl)
		s := t.sessions[w.session]
		delete(s.waiting, name)
		s.waiting = shrink(s.waiting, &s.peaks[1])
		t.stats.Waiters--
		h := t.grant(now, w.session, s, name, l, w.mode, w.ttl)
		evs = append(evs, Event{Kind: EventGranted, Session: w.session, Name: name, Mode: w.mode,
			Token: h.token, TTL: h.ttl, Waited: now.Sub(w.since)})
	}
	return evs
}

func (t *Table) dropIfIdle(name string, l *lockState) {
	if len(l.holders) == 0 && len(l.queue) == 0 {
		delete(t.locks, name)
		t.names.Delete(name)
		t.locks = shrink(t.locks, &t.peaks[0])
	}
}

// shrink returns m, or a copy of it once it has fallen to a quarter of the
// largest size seen (*peak, which it keeps): Go's maps never give back the
// memory of deleted entries, so a table that once held 100,000 locks
// would keep their buckets for ever. Each copy costs a quarter of the
// deletions that led to it.
func shrink[K comparable, V any](m map[K]V, peak *int) map[K]V {
	n := len(m)
	*peak = max(*peak, n+1) // m had one more before the delete that calls this
	if *peak < 1024 || n > *peak/4 {
		return m
	}
	c := make(map[K]V, n)
	for k, v := range m {
		c[k] = v
	}
	*peak = n
	return c
}

// Renew extends session id's lease on name to now+ttl (ttl zero: the
// lease's own TTL). Renewing a lock without a lease with a positive ttl
// gives it one. Anyone but the holder gets ErrNotHolder, as does a holder
// whose lease has already expired: a renewal that comes too late does not
// revive the lease, even if Advance has not yet applied its expiry. Renew
// then applies it as Advance would (the holder's EventLost, then the grants
// it lets through), so the events are the expiry's.
func (t *Table) Renew(now time.Time, id SessionID, name string, token Token, ttl time.Duration) (Grant, []Event, error) {
	_, h, err := t.holding(id, name, token)
	if err != nil {
		return Grant{}, nil, err
	}
	if h.ttl > 0 && !now.Before(h.expires) {
		evs := t.expire(now, name, h, nil)
		return Grant{}, evs, fmt.Errorf("%w: %s: its lease expired %v ago", ErrNotHolder, name, now.Sub(h.expires))
	}
	if ttl > 0 {
		h.ttl = ttl
	}
	if h.ttl > 0 {
		h.expires = now.Add(h.ttl)
		if h.dl != nil {
			t.deadlines.move(h.dl, h.expires)
		} else {
			h.dl = t.deadlines.add(h.expires, name, id, true)
		}
	}
	return h.grantOf(name), nil, nil
}

// expire takes name from h, whose lease ran out: h's session is told, and
// the lock passes to whoever is next in line.
func (t *Table) expire(now time.Time, name string, h *holder, evs []Event) []Event {
	evs = append(evs, Event{Kind: EventLost, Session: h.session, Name: name, Mode: h.mode, Token: h.token, Reason: ReasonExpired})
	t.stats.Expired++
	return t.release(now, name, h, evs)
}

// Cancel withdraws session id's queued request for name (ErrNotWaiting if
// there is none, for example because it was granted meanwhile). The events
// are the grants its departure lets through: readers queued behind a
// cancelled writer may join the current readers.
func (t *Table) Cancel(now time.Time, id SessionID, name string) ([]Event, error) {
	s, ok := t.sessions[id]
	if !ok {
		return nil, ErrNotWaiting
	}
	w, ok := s.waiting[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotWaiting, name)
	}
	return t.unqueue(now, name, w, nil), nil
}

func (t *Table) unqueue(now time.Time, name string, w *waiter, evs []Event) []Event {
	l := t.locks[name]
	for i, x := range l.queue {
		if x == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			break
		}
	}
	s := t.sessions[w.session]
	delete(s.waiting, name)
	s.waiting = shrink(s.waiting, &s.peaks[1])
	t.deadlines.remove(w.dl)
	t.stats.Waiters--
	evs = t.promote(now, name, l, evs)
	t.dropIfIdle(name, l)
	return evs
}

// Close ends a session: its locks are released and its waits cancelled. The
// events are for other sessions (grants); the closed one is told nothing.
func (t *Table) Close(now time.Time, id SessionID) []Event {
	s, ok := t.sessions[id]
	if !ok {
		return nil
	}
	var evs []Event
	// Withdraw the waits first, so that a release below cannot grant this
	// session a lock it will never see.
	for _, name := range sortedKeys(s.waiting) {
		evs = t.unqueue(now, name, s.waiting[name], evs)
	}
	for _, name := range sortedKeys(s.held) {
		evs = t.release(now, name, s.held[name], evs)
	}
	delete(t.sessions, id)
	t.sessions = shrink(t.sessions, &t.peaks[1])
	t.stats.Sessions--
	return evs
}

// Drain empties the table for a shutdown: every holder is told its lock is
// lost and every waiter that its wait is cancelled, with reason shutdown,
// and nothing is granted. Sessions stay open (Close them as they go).
func (t *Table) Drain(now time.Time) []Event {
	var evs []Event
	for _, name := range sortedKeys(t.locks) {
		l := t.locks[name]
		for _, h := range l.holders {
			evs = append(evs, Event{Kind: EventLost, Session: h.session, Name: name, Mode: h.mode, Token: h.token, Reason: ReasonShutdown})
			delete(t.sessions[h.session].held, name)
		}
		for _, w := range l.queue {
			evs = append(evs, Event{Kind: EventCancelled, Session: w.session, Name: name, Mode: w.mode, Waited: now.Sub(w.since), Reason: ReasonShutdown})
			delete(t.sessions[w.session].waiting, name)
		}
		delete(t.locks, name)
	}
	t.names.Clear(false)
	t.stats.Holders, t.stats.Waiters = 0, 0
	t.deadlines = nil
	return evs
}

// NextDeadline returns the earliest time at which Advance will have something
// to do, and false when nothing is pending.
func (t *Table) NextDeadline() (time.Time, bool) {
	if len(t.deadlines) == 0 {
		return time.Time{}, false
	}
	return t.deadlines[0].at, true
}

// Advance applies every lease expiry and wait timeout due at or before now:
// an expired holder gets EventLost (reason expired) and loses the lock, a
// timed-out waiter gets EventTimedOut and leaves the queue, and what they
// let through is granted.
func (t *Table) Advance(now time.Time) []Event {
	var evs []Event
	for len(t.deadlines) > 0 && !t.deadlines[0].at.After(now) {
		d := heap.Pop(&t.deadlines).(*deadline)
		s := t.sessions[d.session]
		if d.lease {
			evs = t.expire(now, d.name, s.held[d.name], evs)
			continue
		}
		w := s.waiting[d.name]
		evs = append(evs, Event{Kind: EventTimedOut, Session: d.session, Name: d.name, Mode: w.mode, Waited: now.Sub(w.since)})
		t.stats.TimedOut++
		evs = t.unqueue(now, d.name, w, evs)
	}
	return evs
}

// ExtendLeases gives every lease at least its full TTL from now, and
// returns how many it moved. A server calls it when it finds that it was
// itself not running (stopped, paused, starved) for longer than its timers
// allow: its holders could not renew while it stood still, so their leases
// are extended rather than expired, as etcd's lessor does for every lease
// when a new leader is elected (Promote). A holder that then fails to renew
// within its TTL loses the lock as usual.
func (t *Table) ExtendLeases(now time.Time) int {
	n := 0
	for _, d := range t.deadlines {
		if !d.lease {
			continue
		}
		h := t.sessions[d.session].held[d.name]
		if at := now.Add(h.ttl); h.expires.Before(at) {
			h.expires, d.at = at, at
			n++
		}
	}
	heap.Init(&t.deadlines)
	return n
}

// Stats returns the running totals.
func (t *Table) Stats() TableStats {
	st := t.stats
	st.Locks, st.Deadlines = len(t.locks), len(t.deadlines)
	return st
}

// Holding reports the grant session id holds on name, if any.
func (t *Table) Holding(id SessionID, name string) (Grant, bool) {
	s, ok := t.sessions[id]
	if !ok {
		return Grant{}, false
	}
	h, ok := s.held[name]
	if !ok {
		return Grant{}, false
	}
	return h.grantOf(name), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
