package lockd

import (
	"context"
	"sort"
	"strconv"
	"time"

	"mplock/internal/numfmt"
)

// Status is a snapshot of the table: what `STATUS` returns on the wire and
// Client.Status parses back. The JSON form is `mplock status --json`'s.
type Status struct {
	Now      time.Time       `json:"now"`
	Locks    []LockStatus    `json:"locks"`
	Sessions []SessionStatus `json:"sessions,omitempty"`
	// Next, in one page of a listing of every name, is the last name on
	// the page when more follow: ask again with After set to it. Empty on
	// the last page, and in a whole listing (Client.Status pages through).
	Next string `json:"next,omitempty"`
}

// LockStatus is one name's holders and its waiters in queue order.
type LockStatus struct {
	Name    string         `json:"name"`
	Holders []HolderStatus `json:"holders"`
	Waiters []WaiterStatus `json:"waiters"`
}

// HolderStatus is one holder of a name.
type HolderStatus struct {
	Session SessionID     `json:"session"`
	Client  string        `json:"client"`
	PID     int           `json:"pid"`
	Mode    Mode          `json:"mode"`
	Token   Token         `json:"token"`
	Since   time.Time     `json:"since"`
	TTL     time.Duration `json:"ttl_ns"`
	Expires time.Time     `json:"expires,omitzero"`
}

// WaiterStatus is one queued request; Position 1 is next in line.
type WaiterStatus struct {
	Session  SessionID `json:"session"`
	Client   string    `json:"client"`
	PID      int       `json:"pid"`
	Mode     Mode      `json:"mode"`
	Position int       `json:"position"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline,omitzero"`
}

// SessionStatus is one connected session.
type SessionStatus struct {
	ID      SessionID `json:"id"`
	Client  string    `json:"client"`
	PID     int       `json:"pid"`
	Addr    string    `json:"addr"`
	Since   time.Time `json:"since"`
	Held    int       `json:"held"`
	Waiting int       `json:"waiting"`
}

// MarshalText makes modes read as "READ"/"WRITE" in JSON.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses "READ"/"WRITE".
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Status lists holders and waiters (in queue order) of name, or of every
// name when name is "", in name order; with every session when name is "".
func (t *Table) Status(now time.Time, name string) Status {
	st := Status{Now: now}
	if name != "" {
		if _, ok := t.locks[name]; ok {
			st.Locks = append(st.Locks, t.lockStatus(name))
		}
		return st
	}
	t.names.Ascend(func(n string) bool {
		st.Locks = append(st.Locks, t.lockStatus(n))
		return true
	})
	st.Sessions = t.sessionStatus()
	return st
}

// lockStatus lists the holders and waiters of a name in the table.
func (t *Table) lockStatus(name string) LockStatus {
	l := t.locks[name]
	ls := LockStatus{Name: name}
	for _, h := range l.holders {
		info := t.sessions[h.session].info
		ls.Holders = append(ls.Holders, HolderStatus{Session: h.session, Client: info.Client, PID: info.PID,
			Mode: h.mode, Token: h.token, Since: h.since, TTL: h.ttl, Expires: h.expires})
	}
	for i, w := range l.queue {
		info := t.sessions[w.session].info
		ls.Waiters = append(ls.Waiters, WaiterStatus{Session: w.session, Client: info.Client, PID: info.PID,
			Mode: w.mode, Position: i + 1, Since: w.since, Deadline: w.deadline})
	}
	return ls
}

// lockedShown is how many holders a refused try-lock's text names; the
// others are counted, so that a refusal costs the same however many
// sessions share the lock.
const lockedShown = 3

// LockedText explains why name cannot be locked now, as a person at nc
// (or the seed's PREEMPT) wants to read it: "NAME is locked by session 4
// (P1) READ, session 9 (-) READ, session 12 (P3) READ and 2,107 more, 3
// waiting". It names at most three holders, in grant order, and counts
// the rest and the waiters: its cost and length do not grow with the
// number of holders (a name's client is at most MaxClientLen bytes, so
// the text stays under 600 bytes). It reads only the table, so a
// replicated table gives the same text on every replica.
func (t *Table) LockedText(name string) string {
	l := t.locks[name]
	b := make([]byte, 0, 128)
	b = append(append(b, name...), " is locked"...)
	if l == nil {
		return string(b)
	}
	for i, h := range l.holders {
		if i == lockedShown {
			b = numfmt.AppendGrouped(append(b, " and "...), int64(len(l.holders)-lockedShown))
			b = append(b, " more"...)
			break
		}
		if i == 0 {
			b = append(b, " by"...)
		} else {
			b = append(b, ',')
		}
		b = strconv.AppendUint(append(b, " session "...), uint64(h.session), 10)
		b = append(append(append(b, " ("...), clientOrDash(t.sessions[h.session].info.Client)...), ") "...)
		b = append(b, h.mode.String()...)
	}
	if n := len(l.queue); n > 0 {
		b = append(numfmt.AppendGrouped(append(b, ", "...), int64(n)), " waiting"...)
	}
	return string(b)
}

// SessionLockStatus lists the names session id holds or waits for, in
// name order, each with this session's hold or wait only (its place in
// line counted from the head): what a session that resumes elsewhere
// needs, at a cost that follows its own locks, not the other holders of
// the same names. Nil for an unknown session or one with no locks.
func (t *Table) SessionLockStatus(id SessionID) []LockStatus {
	s, ok := t.sessions[id]
	if !ok || len(s.held)+len(s.waiting) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.held)+len(s.waiting))
	for name := range s.held {
		names = append(names, name)
	}
	for name := range s.waiting {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]LockStatus, 0, len(names))
	for _, name := range names {
		ls := LockStatus{Name: name}
		if h, ok := s.held[name]; ok {
			ls.Holders = []HolderStatus{{Session: id, Client: s.info.Client, PID: s.info.PID,
				Mode: h.mode, Token: h.token, Since: h.since, TTL: h.ttl, Expires: h.expires}}
		}
		if w, ok := s.waiting[name]; ok {
			pos := 0
			for i, x := range t.locks[name].queue {
				if x == w {
					pos = i + 1
					break
				}
			}
			ls.Waiters = []WaiterStatus{{Session: id, Client: s.info.Client, PID: s.info.PID,
				Mode: w.mode, Position: pos, Since: w.since, Deadline: w.deadline}}
		}
		out = append(out, ls)
	}
	return out
}

// sessionStatus lists every session, in id order.
func (t *Table) sessionStatus() []SessionStatus {
	ids := make([]SessionID, 0, len(t.sessions))
	for id := range t.sessions {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]SessionStatus, 0, len(ids))
	for _, id := range ids {
		s := t.sessions[id]
		out = append(out, SessionStatus{ID: id, Client: s.info.Client, PID: s.info.PID,
			Addr: s.info.Addr, Since: s.info.Since, Held: len(s.held), Waiting: len(s.waiting)})
	}
	return out
}

// Paging of STATUS (docs/protocol.md).
const (
	// DefaultStatusLimit is how many names a STATUS page holds when the
	// request gives no limit=.
	DefaultStatusLimit = 1000
	// MaxStatusLimit is the largest limit= a STATUS may ask for.
	MaxStatusLimit = 10000
	// MaxStatusPageBytes bounds a STATUS page of every name as sent, its
	// SESSION lines and final line included: a page ends, at the end of a
	// name, before the name that would take it past this many bytes. So a
	// client that asks for a page and does not read it parks at most about
	// this much output in the server (beside the kernel's share), and not
	// a page of 10,000 names, megabytes; a page's first name is listed
	// whatever its size, and the sessions whatever theirs, so a page can
	// exceed it only by one name's lines or a first page's SESSION lines.
	MaxStatusPageBytes = 256 << 10
)

// StatusQuery selects what STATUS lists: one name, or a page of every
// name in name order.
type StatusQuery struct {
	Name  string // one name; "" for every name, paged
	After string // the page starts after this name ("": the first page)
	Limit int    // names per page; 0: DefaultStatusLimit
}

// StatusPage lists one name as Status does, or one page of every name:
// the names after q.After, in name order, with their holders and waiters,
// and every session on the first page (q.After empty). A page ends after
// q.Limit names, or earlier, at the end of a name, once it lists q.Limit
// holders and waiters, or before a name whose lines would take it past
// MaxStatusPageBytes (counted as it goes, at least what appendStatus
// writes; see lockStatusBytes); so a page has at most q.Limit names and
// q.Limit lines plus those of its last name (one per session at most),
// and, past its first name, at most MaxStatusPageBytes. Next is set when
// more names follow. A page walks the ordered index of names from
// q.After: its work is O(log n + the page, and the name after it when the
// page ends by bytes), whatever the number n of names, and its memory the
// size of the page.
func (t *Table) StatusPage(now time.Time, q StatusQuery) Status {
	if q.Name != "" {
		return t.Status(now, q.Name)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultStatusLimit
	}
	st := Status{Now: now}
	if q.After == "" {
		st.Sessions = t.sessionStatus()
	}
	// size is the page's bytes so far, its final line included but for
	// the name after next=, which is the last name's.
	lines, size := 0, statusFinalMax+sessionStatusBytes(st.Sessions)
	t.names.AscendGreaterOrEqual(q.After, func(name string) bool {
		if name == q.After {
			return true
		}
		if len(st.Locks) >= limit || lines >= limit {
			st.Next = st.Locks[len(st.Locks)-1].Name
			return false
		}
		ls := t.lockStatus(name)
		n := lockStatusBytes(ls)
		if len(st.Locks) > 0 && size+n+len(name) > MaxStatusPageBytes {
			st.Next = st.Locks[len(st.Locks)-1].Name
			return false
		}
		lines += len(ls.Holders) + len(ls.Waiters)
		size += n
		st.Locks = append(st.Locks, ls)
		return true
	})
	return st
}

// statusAll lists every name, page after page (each page a STATUS of its
// own, so the server never holds more than a page for this client), and
// every session from the first page. The pages are not one snapshot: a
// lock taken or released between two pages may be missed or listed in
// its new state; each name's holders and waiters are consistent.
func (c *Client) statusAll(ctx context.Context) (Status, error) {
	// The first page asks for no limit=, so that a server older than
	// paging answers it whole (with no next=).
	req := Request{Verb: VerbStatus}
	var all Status
	for {
		st, err := c.statusPage(ctx, req)
		if err != nil {
			return Status{}, err
		}
		if req.After == "" {
			all.Now, all.Sessions = st.Now, st.Sessions
		}
		all.Locks = append(all.Locks, st.Locks...)
		if st.Next == "" || st.Next <= req.After {
			return all, nil
		}
		req.After, req.Limit = st.Next, MaxStatusLimit
	}
}
