package lockd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// TableSnapshotVersion is the version of the TableSnapshot encoding that
// this code writes and reads. RestoreTable refuses any other.
const TableSnapshotVersion = 1

// TableSnapshot is the whole state of a Table in a canonical form: sessions
// in id order, locks in name order, each lock's holders in grant order and its
// queue in FIFO order, times as Unix nanoseconds (0 for none). Two tables in
// the same state give equal snapshots, and equal bytes from EncodeTableSnapshot,
// however each reached that state; a replicated table relies on that (the
// replicas of one log produce byte-identical snapshots).
//
// Deadlines are not stored: they follow from the holders' leases (Expires)
// and the waiters' wait bounds (Deadline), and RestoreTable rebuilds them.
type TableSnapshot struct {
	Version            int               `json:"version"`
	MaxLocksPerSession int               `json:"max_locks_per_session"`
	LastToken          Token             `json:"last_token"`
	Stats              TableStats        `json:"stats"`
	Sessions           []SessionSnapshot `json:"sessions"`
	Locks              []LockSnapshot    `json:"locks"`
}

// SessionSnapshot is one open session.
type SessionSnapshot struct {
	ID     SessionID `json:"id"`
	Client string    `json:"client"`
	PID    int       `json:"pid"`
	Addr   string    `json:"addr"`
	Since  int64     `json:"since"` // Unix ns
}

// LockSnapshot is one name with holders or waiters.
type LockSnapshot struct {
	Name    string           `json:"name"`
	Holders []HolderSnapshot `json:"holders"`
	Queue   []WaiterSnapshot `json:"queue"`
}

// HolderSnapshot is one holder of a name, as the table keeps it.
type HolderSnapshot struct {
	Session SessionID     `json:"session"`
	Mode    Mode          `json:"mode"`
	Token   Token         `json:"token"`
	Since   int64         `json:"since"`   // Unix ns
	TTL     time.Duration `json:"ttl"`     // ns; 0: no lease
	Expires int64         `json:"expires"` // Unix ns; 0 without a lease
}

// WaiterSnapshot is one queued request.
type WaiterSnapshot struct {
	Session  SessionID     `json:"session"`
	Mode     Mode          `json:"mode"`
	TTL      time.Duration `json:"ttl"`      // the lease it asked for, ns
	Since    int64         `json:"since"`    // Unix ns
	Deadline int64         `json:"deadline"` // Unix ns; 0: waits for ever
}

// Snapshot returns the table's whole state (see TableSnapshot). It does not
// change the table.
func (t *Table) Snapshot() TableSnapshot {
	snap := TableSnapshot{
		Version:            TableSnapshotVersion,
		MaxLocksPerSession: t.limits.MaxLocksPerSession,
		LastToken:          t.lastToken,
		Stats:              t.stats,
		Sessions:           make([]SessionSnapshot, 0, len(t.sessions)),
		Locks:              make([]LockSnapshot, 0, len(t.locks)),
	}
	ids := make([]SessionID, 0, len(t.sessions))
	for id := range t.sessions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		info := t.sessions[id].info
		snap.Sessions = append(snap.Sessions, SessionSnapshot{ID: id, Client: info.Client, PID: info.PID,
			Addr: info.Addr, Since: unixNano(info.Since)})
	}
	for _, name := range sortedKeys(t.locks) {
		l := t.locks[name]
		ls := LockSnapshot{Name: name, Holders: make([]HolderSnapshot, 0, len(l.holders)),
			Queue: make([]WaiterSnapshot, 0, len(l.queue))}
		for _, h := range l.holders {
			ls.Holders = append(ls.Holders, HolderSnapshot{Session: h.session, Mode: h.mode, Token: h.token,
				Since: unixNano(h.since), TTL: h.ttl, Expires: unixNano(h.expires)})
		}
		for _, w := range l.queue {
			ls.Queue = append(ls.Queue, WaiterSnapshot{Session: w.session, Mode: w.mode, TTL: w.ttl,
				Since: unixNano(w.since), Deadline: unixNano(w.deadline)})
		}
		snap.Locks = append(snap.Locks, ls)
	}
	return snap
}

// ErrBadSnapshot wraps every reason RestoreTable refuses a snapshot.
var ErrBadSnapshot = errors.New("lockd: bad table snapshot")

// RestoreTable rebuilds a table from a snapshot, deadlines included. It
// checks what the table relies on and refuses (ErrBadSnapshot, saying
// which rule failed) a snapshot of another version, one with unsorted or
// repeated sessions or names, an invalid name or mode, a holder or waiter of
// an unknown session, a session that holds or waits for one name twice,
// exclusive holders that are not alone, a token above LastToken, a lease
// without an expiry (or the reverse), or stats whose live counts disagree.
func RestoreTable(snap TableSnapshot) (*Table, error) {
	bad := func(format string, args ...any) (*Table, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
	}
	if snap.Version != TableSnapshotVersion {
		return bad("version %d, this build reads %d", snap.Version, TableSnapshotVersion)
	}
	t := NewTable(TableLimits{MaxLocksPerSession: snap.MaxLocksPerSession})
	t.lastToken = snap.LastToken
	for i, s := range snap.Sessions {
		if i > 0 && s.ID <= snap.Sessions[i-1].ID {
			return bad("session %d out of order", s.ID)
		}
		t.sessions[s.ID] = &sessionState{info: SessionInfo{Client: s.Client, PID: s.PID, Addr: s.Addr, Since: fromUnixNano(s.Since)},
			held: map[string]*holder{}, waiting: map[string]*waiter{}}
	}
	holders, waiters := 0, 0
	for i, ls := range snap.Locks {
		if i > 0 && ls.Name <= snap.Locks[i-1].Name {
			return bad("lock %q out of order", ls.Name)
		}
		if err := ValidName(ls.Name); err != nil {
			return bad("%v", err)
		}
		if len(ls.Holders) == 0 && len(ls.Queue) == 0 {
			return bad("lock %q has neither holders nor waiters", ls.Name)
		}
		l := &lockState{}
		for _, hs := range ls.Holders {
			s, ok := t.sessions[hs.Session]
			switch {
			case !ok:
				return bad("lock %q: holder of unknown session %d", ls.Name, hs.Session)
			case hs.Mode != Shared && hs.Mode != Exclusive:
				return bad("lock %q: mode %d", ls.Name, hs.Mode)
			case len(l.holders) > 0 && !compatible(l.holders[0].mode, hs.Mode):
				return bad("lock %q: %s holder beside a %s holder", ls.Name, hs.Mode, l.holders[0].mode)
			case hs.Token == 0 || hs.Token > snap.LastToken:
				return bad("lock %q: token %d (last token %d)", ls.Name, hs.Token, snap.LastToken)
			case (hs.TTL > 0) != (hs.Expires != 0) || hs.TTL < 0:
				return bad("lock %q: ttl %v with expiry %d", ls.Name, hs.TTL, hs.Expires)
			}
			if _, dup := s.held[ls.Name]; dup {
				return bad("lock %q: session %d holds it twice", ls.Name, hs.Session)
			}
			h := &holder{session: hs.Session, mode: hs.Mode, token: hs.Token, since: fromUnixNano(hs.Since),
				ttl: hs.TTL, expires: fromUnixNano(hs.Expires)}
			if h.ttl > 0 {
				h.dl = t.deadlines.add(h.expires, ls.Name, h.session, true)
			}
			l.holders = append(l.holders, h)
			s.held[ls.Name] = h
			holders++
		}
		for _, ws := range ls.Queue {
			s, ok := t.sessions[ws.Session]
			switch {
			case !ok:
				return bad("lock %q: waiter of unknown session %d", ls.Name, ws.Session)
			case ws.Mode != Shared && ws.Mode != Exclusive:
				return bad("lock %q: mode %d", ls.Name, ws.Mode)
			case ws.TTL < 0:
				return bad("lock %q: waiter ttl %v", ls.Name, ws.TTL)
			}
			if _, dup := s.held[ls.Name]; dup {
				return bad("lock %q: session %d holds and waits for it", ls.Name, ws.Session)
			}
			if _, dup := s.waiting[ls.Name]; dup {
				return bad("lock %q: session %d waits for it twice", ls.Name, ws.Session)
			}
			w := &waiter{session: ws.Session, mode: ws.Mode, ttl: ws.TTL, since: fromUnixNano(ws.Since),
				deadline: fromUnixNano(ws.Deadline)}
			if ws.Deadline != 0 {
				w.dl = t.deadlines.add(w.deadline, ls.Name, w.session, false)
			}
			l.queue = append(l.queue, w)
			s.waiting[ls.Name] = w
			waiters++
		}
		t.locks[ls.Name] = l
		t.names.ReplaceOrInsert(ls.Name)
	}
	if snap.Stats.Sessions != len(snap.Sessions) || snap.Stats.Holders != holders || snap.Stats.Waiters != waiters {
		return bad("stats count %d sessions, %d holders, %d waiters; the snapshot has %d, %d, %d",
			snap.Stats.Sessions, snap.Stats.Holders, snap.Stats.Waiters, len(snap.Sessions), holders, waiters)
	}
	t.stats = snap.Stats
	return t, nil
}

// EncodeTableSnapshot returns snap's canonical bytes: JSON with the fields in
// declaration order and no insignificant space, so equal snapshots give
// equal bytes.
func EncodeTableSnapshot(snap TableSnapshot) ([]byte, error) {
	return json.Marshal(snap)
}

// DecodeTableSnapshot parses what EncodeTableSnapshot wrote. It refuses
// unknown fields (a newer writer) and trailing data; RestoreTable checks the
// content.
func DecodeTableSnapshot(b []byte) (TableSnapshot, error) {
	var snap TableSnapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return TableSnapshot{}, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if dec.More() {
		return TableSnapshot{}, fmt.Errorf("%w: data after the snapshot", ErrBadSnapshot)
	}
	return snap, nil
}

// unixNano is t in Unix nanoseconds, 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano inverts unixNano, in UTC.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
