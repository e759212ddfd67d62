package lockd

import (
	"sort"
	"time"
)

// Status is a snapshot of the table: what `STATUS` returns on the wire and
// Client.Status parses back. The JSON form is `mplock status --json`'s.
type Status struct {
	Now      time.Time       `json:"now"`
	Locks    []LockStatus    `json:"locks"`
	Sessions []SessionStatus `json:"sessions,omitempty"`
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
	names := []string{name}
	if name == "" {
		names = sortedKeys(t.locks)
	}
	for _, n := range names {
		l, ok := t.locks[n]
		if !ok {
			continue
		}
		ls := LockStatus{Name: n}
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
		st.Locks = append(st.Locks, ls)
	}
	if name == "" {
		ids := make([]SessionID, 0, len(t.sessions))
		for id := range t.sessions {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			s := t.sessions[id]
			st.Sessions = append(st.Sessions, SessionStatus{ID: id, Client: s.info.Client, PID: s.info.PID,
				Addr: s.info.Addr, Since: s.info.Since, Held: len(s.held), Waiting: len(s.waiting)})
		}
	}
	return st
}
