package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// DefaultSessionTTL is a session's TTL when OpOpenSession names none.
const DefaultSessionTTL = 10 * time.Second

// recentReplies is how many results of each session the FSM keeps for
// de-duplication: lockd.RequestWindow, the most changes a client keeps
// unanswered, so that every retry it can send finds its result.
const recentReplies = lockd.RequestWindow

// resultRingSize is how many recent results the FSM keeps by log index, for
// a follower that forwarded a command to collect its local result once the
// entry is applied here.
const resultRingSize = 4096

// Applied is what the Observer is told after each entry is applied: its
// index, the command and its result. Restored instead says that the FSM was
// replaced by a snapshot (a follower far behind, or a restart): Command and
// Result are then zero, Index is the snapshot's, and a server re-reads the
// state of the sessions attached to it.
type Applied struct {
	Index    uint64
	Command  Command
	Result   *Result
	Restored bool
}

// NodeInfo is a node's addresses, as recorded by OpNodeInfo.
type NodeInfo struct {
	ID         string `json:"id"`
	ClientAddr string `json:"client_addr"`
	RaftAddr   string `json:"raft_addr"`
}

// sessionMeta is what the FSM keeps of a session besides the table's own
// record: its credential, its TTL, where it is attached, and its recent
// results for de-duplication.
type sessionMeta struct {
	secretHash  string
	ttl         time.Duration
	node        string
	opened      int64 // Unix ns, table time
	lastRequest uint64
	recent      []reply // the last recentReplies, oldest first
}

// sessionWatcher is told of session and deadline changes as they are
// applied, under the FSM's write lock: the leader's lessor keeps its
// in-memory deadlines in step. Its methods must not block or call the FSM.
type sessionWatcher interface {
	sessionOpened(id lockd.SessionID, ttl time.Duration)
	sessionTouched(id lockd.SessionID)
	sessionEnded(id lockd.SessionID)
	tableChanged()
	restored()
}

// FSM is the replicated lock table: a raft.FSM whose Apply is a thin,
// deterministic adapter from log commands to a lockd.Table (one apply
// function per command, unknown types refused, as Consul's FSM does).
//
// Apply reads no clock, no map order and nothing local: the table is given
// max(entry stamp, last applied stamp), so table time never runs back across
// leader changes; session ids are the log indexes of their OpOpenSession
// entries; the token counter of a fresh table starts at the first entry's
// stamp in microseconds (the single-node server's epoch rule), so tokens
// rise even across a wiped and rebuilt cluster. Replicas fed one log
// therefore hold equal state and write byte-identical snapshots.
//
// Concurrency: raft calls Apply, Snapshot and Restore from one goroutine;
// Apply and Restore take the write lock, reads (Node.Read's views) the read
// lock. The observer is called after each apply, in log order, from the
// apply goroutine, without the lock held; it must not block.
type FSM struct {
	mu         sync.RWMutex
	limits     lockd.TableLimits
	table      *lockd.Table
	sessions   map[lockd.SessionID]*sessionMeta
	bySecret   map[string]lockd.SessionID
	nodes      map[string]NodeInfo
	lastStamp  int64 // Unix ns: table time
	applied    uint64
	observed   uint64 // the last applied index whose observer call has returned; waitResult answers up to it
	results    map[uint64]*Result
	ring       []uint64 // indexes in results, oldest first, circular from ringHead
	ringHead   int
	waiters    map[uint64][]chan *Result
	changed    chan struct{} // closed and replaced after every apply and restore
	appliedIdx atomic.Uint64
	next       atomic.Int64 // the table's next deadline, Unix ns; 0 for none

	observer func(Applied)
	watcher  sessionWatcher
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns an empty replicated table. observer, when not nil, is
// called after every entry (see Applied).
func NewFSM(limits lockd.TableLimits, observer func(Applied)) *FSM {
	f := &FSM{limits: limits, observer: observer, changed: make(chan struct{}), waiters: map[uint64][]chan *Result{}}
	f.reset()
	return f
}

func (f *FSM) reset() {
	f.table = lockd.NewTable(f.limits)
	f.sessions = map[lockd.SessionID]*sessionMeta{}
	f.bySecret = map[string]lockd.SessionID{}
	f.nodes = map[string]NodeInfo{}
	f.results = map[uint64]*Result{}
	f.ring = f.ring[:0]
	f.ringHead = 0
}

// Applied returns the index of the last entry this FSM applied (or of the
// snapshot it was restored from).
func (f *FSM) Applied() uint64 { return f.appliedIdx.Load() }

// Apply applies one committed entry (raft calls it). An entry this build
// cannot apply (unknown type or version, not flagged ignorable; a body that
// does not parse) panics: a replica that skipped it would diverge from the
// others, so the node must stop and be upgraded or repaired, as Consul's FSM
// does.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	return f.applyEntry(l.Index, l.Data)
}

func (f *FSM) applyEntry(index uint64, data []byte) *Result {
	cmd, err := decodeCommand(data)
	if err != nil && !errors.Is(err, errIgnored) {
		panic(fmt.Sprintf("replica: cannot apply log entry %d: %v; stopping rather than diverge from the other replicas", index, err))
	}
	f.mu.Lock()
	var res *Result
	if err == nil {
		res = f.apply(index, cmd)
	}
	f.applied = index
	f.appliedIdx.Store(index)
	if res != nil {
		f.keepResult(res)
	}
	if nd, ok := f.table.NextDeadline(); ok {
		f.next.Store(nd.UnixNano())
	} else {
		f.next.Store(0)
	}
	if f.watcher != nil {
		f.watcher.tableChanged()
	}
	changed := f.changed
	f.changed = make(chan struct{})
	f.mu.Unlock()
	close(changed)
	// The observer first, then the callers waiting for this result: a
	// server that replies from Apply's return has already queued the
	// events of this entry (a RENEW's LOST comes before its refusal).
	// waitResult answers from observed, not applied, so that a caller
	// arriving between the two waits for the observer too.
	if f.observer != nil && res != nil {
		f.observer(Applied{Index: index, Command: cmd, Result: res})
	}
	type wake struct {
		ws []chan *Result
		r  *Result
	}
	var wakes []wake
	f.mu.Lock()
	f.observed = index
	for i, ws := range f.waiters {
		if i <= index {
			r := res
			if i != index {
				r = nil
			}
			wakes = append(wakes, wake{ws, r})
			delete(f.waiters, i)
		}
	}
	f.mu.Unlock()
	for _, w := range wakes {
		for _, ch := range w.ws {
			ch <- w.r
		}
	}
	return res
}

// apply runs one command against the state; f.mu is held.
func (f *FSM) apply(index uint64, cmd Command) *Result {
	stamp := max(cmd.Stamp, f.lastStamp)
	f.lastStamp = stamp
	now := time.Unix(0, stamp).UTC()
	if f.table.LastToken() == 0 {
		f.table.RaiseLastToken(lockd.Token(stamp / 1000))
	}
	res := &Result{Index: index, Time: now, Op: cmd.Op, Session: cmd.Session, Request: cmd.Request}
	switch cmd.Op {
	case OpOpenSession:
		f.openSession(index, now, cmd, res)
	case OpResumeSession:
		f.resumeSession(cmd, res)
	case OpCloseSession:
		f.sessionCommand(cmd, res, func() { f.endSession(now, cmd.Session, res) })
	case OpExpireSession:
		if _, ok := f.sessions[cmd.Session]; !ok {
			res.Err = noSession(cmd.Session)
			break
		}
		f.endSession(now, cmd.Session, res)
	case OpLock:
		f.sessionCommand(cmd, res, func() {
			r, err := f.table.Lock(now, cmd.Session, lockd.LockRequest{Name: cmd.Name, Mode: cmd.Mode, TTL: cmd.LockTTL, Wait: cmd.Wait})
			if errors.Is(err, lockd.ErrLocked) {
				// As a single server says it; deterministic (the table only).
				err = &TableError{Code: lockd.CodeLocked, Text: f.table.LockedText(cmd.Name)}
			}
			res.Lock, res.Err = r, errOrNil(err)
		})
	case OpUnlock:
		f.sessionCommand(cmd, res, func() {
			g, _ := f.table.Holding(cmd.Session, cmd.Name)
			evs, err := f.table.Unlock(now, cmd.Session, cmd.Name, cmd.Token)
			if err == nil {
				res.Grant = g
			}
			res.Events, res.Err = evs, errOrNil(err)
		})
	case OpRenew:
		f.sessionCommand(cmd, res, func() {
			g, evs, err := f.table.Renew(now, cmd.Session, cmd.Name, cmd.Token, cmd.LockTTL)
			res.Grant, res.Events, res.Err = g, evs, errOrNil(err)
		})
	case OpCancel:
		f.sessionCommand(cmd, res, func() {
			evs, err := f.table.Cancel(now, cmd.Session, cmd.Name)
			res.Events, res.Err = evs, errOrNil(err)
		})
	case OpAdvance:
		res.Events = f.table.Advance(now)
	case OpExtendLeases:
		res.Extended = f.table.ExtendLeases(now)
	case OpNodeInfo:
		f.nodes[cmd.Node] = NodeInfo{ID: cmd.Node, ClientAddr: cmd.ClientAddr, RaftAddr: cmd.RaftAddr}
	}
	return res
}

// errOrNil records a table error as a *TableError (nil stays nil).
func errOrNil(err error) error {
	if err == nil {
		return nil
	}
	return tableError(err)
}

func noSession(id lockd.SessionID) error {
	return &TableError{Code: CodeNoSession, Text: fmt.Sprintf("replica: no session %d (never opened, closed or expired)", id)}
}

// sessionCommand runs do for a command of an existing session, unless its
// request id was already applied: then the recorded result is returned and
// nothing changes. A result is recorded only for a non-zero request id.
func (f *FSM) sessionCommand(cmd Command, res *Result, do func()) {
	m, ok := f.sessions[cmd.Session]
	if !ok {
		res.Err = noSession(cmd.Session)
		return
	}
	if cmd.Request != 0 && cmd.Request <= m.lastRequest {
		for _, rep := range m.recent {
			if rep.Request == cmd.Request {
				if rep.Sum != 0 && rep.Sum != cmd.fingerprint() {
					// The id of another request: answering with that one's
					// result would tell the client something untrue.
					res.Err = &TableError{Code: CodeRequestOrder, Text: fmt.Sprintf(
						"replica: session %d request %d was another request than this %s %s: a reused req= is refused, not applied (a retry must repeat its request unchanged)",
						cmd.Session, cmd.Request, cmd.Op, cmd.Name)}
					return
				}
				rep.restore(res)
				if cmd.Op == OpLock {
					res.Current = f.standing(cmd.Session, cmd.Name)
				}
				return
			}
		}
		res.Err = &TableError{Code: CodeRequestOrder, Text: fmt.Sprintf(
			"replica: session %d request %d: at or below its last request %d, and not among its last %d results",
			cmd.Session, cmd.Request, m.lastRequest, recentReplies)}
		return
	}
	do()
	if cmd.Request != 0 {
		m.lastRequest = cmd.Request
		if len(m.recent) == recentReplies {
			copy(m.recent, m.recent[1:])
			m.recent = m.recent[:recentReplies-1]
		}
		rep := recordReply(res)
		rep.Sum = cmd.fingerprint()
		m.recent = append(m.recent, rep)
	}
}

func (f *FSM) openSession(index uint64, now time.Time, cmd Command, res *Result) {
	if id, ok := f.bySecret[cmd.SecretHash]; ok {
		// A retried open: the session this secret already opened.
		res.Session, res.Duplicate, res.State = id, true, f.sessionState(id)
		return
	}
	id := lockd.SessionID(index)
	ttl := cmd.TTL
	if ttl <= 0 {
		ttl = DefaultSessionTTL
	}
	f.table.Open(id, lockd.SessionInfo{Client: cmd.Client, PID: cmd.PID, Addr: cmd.Addr, Since: now})
	f.sessions[id] = &sessionMeta{secretHash: cmd.SecretHash, ttl: ttl, node: cmd.Node, opened: now.UnixNano()}
	f.bySecret[cmd.SecretHash] = id
	res.Session, res.State = id, f.sessionState(id)
	if f.watcher != nil {
		f.watcher.sessionOpened(id, ttl)
	}
}

func (f *FSM) resumeSession(cmd Command, res *Result) {
	m, ok := f.sessions[cmd.Session]
	switch {
	case !ok:
		res.Err = noSession(cmd.Session)
		return
	case m.secretHash != cmd.SecretHash:
		res.Err = &TableError{Code: lockd.CodeAuth, Text: fmt.Sprintf("replica: session %d: wrong secret", cmd.Session)}
		return
	}
	m.node = cmd.Node
	res.State = f.sessionState(cmd.Session)
	if f.watcher != nil {
		f.watcher.sessionTouched(cmd.Session)
	}
}

// endSession closes a session in the table (releasing its locks and
// withdrawing its waits) and forgets it.
func (f *FSM) endSession(now time.Time, id lockd.SessionID, res *Result) {
	res.Events = f.table.Close(now, id)
	delete(f.bySecret, f.sessions[id].secretHash)
	delete(f.sessions, id)
	if f.watcher != nil {
		f.watcher.sessionEnded(id)
	}
}

func (f *FSM) sessionState(id lockd.SessionID) *SessionState {
	m := f.sessions[id]
	held, waiting, _ := f.table.SessionLocks(id)
	// The session's own holds and waits only: the other holders of the
	// same names are not the resuming client's business, and listing them
	// made a RESUME cost the holders of every name it holds.
	return &SessionState{ID: id, TTL: m.ttl, Node: m.node, Held: held, Waiting: waiting,
		Locks: f.table.SessionLockStatus(id), LastRequest: m.lastRequest}
}

// standing is where session id stands on name now.
func (f *FSM) standing(id lockd.SessionID, name string) *Standing {
	if g, ok := f.table.Holding(id, name); ok {
		return &Standing{Held: true, Grant: g}
	}
	_, waiting, _ := f.table.SessionLocks(id)
	for _, w := range waiting {
		if w.Name == name {
			return &Standing{Position: w.Position}
		}
	}
	return &Standing{}
}

// keepResult remembers res by index for waitResult, forgetting the oldest
// beyond resultRingSize.
func (f *FSM) keepResult(res *Result) {
	if len(f.ring) < resultRingSize {
		f.ring = append(f.ring, res.Index)
	} else {
		delete(f.results, f.ring[f.ringHead])
		f.ring[f.ringHead] = res.Index
		f.ringHead = (f.ringHead + 1) % resultRingSize
	}
	f.results[res.Index] = res
}

// errResultGone: the entry was applied here, but its result is no longer
// kept (more than resultRingSize entries ago, or it came in a snapshot).
var errResultGone = errors.New("replica: applied, but its result is no longer kept here")

// waitResult waits until this FSM has applied entry index and returns its
// result. The context bounds the wait.
func (f *FSM) waitResult(ctx context.Context, index uint64) (*Result, error) {
	f.mu.Lock()
	if f.observed >= index {
		r := f.results[index]
		f.mu.Unlock()
		if r == nil {
			return nil, errResultGone
		}
		return r, nil
	}
	ch := make(chan *Result, 1)
	f.waiters[index] = append(f.waiters[index], ch)
	f.mu.Unlock()
	select {
	case r := <-ch:
		if r == nil {
			return nil, errResultGone
		}
		return r, nil
	case <-ctx.Done():
		f.mu.Lock()
		ws := f.waiters[index]
		for i, w := range ws {
			if w == ch {
				f.waiters[index] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(f.waiters[index]) == 0 {
			delete(f.waiters, index)
		}
		f.mu.Unlock()
		return nil, ctx.Err()
	}
}

// appliedState returns the applied index and a channel closed at the next
// apply or restore.
func (f *FSM) appliedState() (uint64, <-chan struct{}) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied, f.changed
}

// nextDeadline returns the table's next lease expiry or wait timeout.
func (f *FSM) nextDeadline() (time.Time, bool) {
	ns := f.next.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// applyLocal applies cmd to this replica's table alone, outside the log:
// the deliberately broken mode (Config.UnsafeLocalGrants) that a
// linearizability checker must catch. Never use it otherwise.
func (f *FSM) applyLocal(cmd Command) *Result {
	cmd.Stamp = time.Now().UnixNano()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.apply(0, cmd)
}
