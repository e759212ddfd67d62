package lockd

import "time"

// The accessors below serve a table that is replicated (package
// lockd/replica): a fresh replicated table starts its token counter from an
// epoch, and a session that resumes at another server is given its whole
// state at once instead of the events it missed.

// LastToken returns the last fencing token granted (or the floor set by
// RaiseLastToken); the next grant takes LastToken()+1.
func (t *Table) LastToken() Token { return t.lastToken }

// RaiseLastToken makes the next grant's token at least floor+1, and reports
// whether it moved the counter. It never lowers it, so tokens keep rising:
// a new table started from an epoch (for example the start time in
// microseconds) gives tokens above those of any earlier table started from
// an earlier epoch.
func (t *Table) RaiseLastToken(floor Token) bool {
	if floor <= t.lastToken {
		return false
	}
	t.lastToken = floor
	return true
}

// Waiting is a queued request of one session, with its place in line.
type Waiting struct {
	Name     string
	Mode     Mode
	TTL      time.Duration // the lease it asked for
	Position int           // 1 is next in line
	Since    time.Time
	Deadline time.Time // zero: waits for ever
}

// SessionLocks returns what session id holds and waits for, each in name
// order; ok is false when there is no such session.
func (t *Table) SessionLocks(id SessionID) (held []Grant, waiting []Waiting, ok bool) {
	s, ok := t.sessions[id]
	if !ok {
		return nil, nil, false
	}
	for _, name := range sortedKeys(s.held) {
		held = append(held, s.held[name].grantOf(name))
	}
	for _, name := range sortedKeys(s.waiting) {
		w := s.waiting[name]
		pos := 0
		for i, x := range t.locks[name].queue {
			if x == w {
				pos = i + 1
				break
			}
		}
		waiting = append(waiting, Waiting{Name: name, Mode: w.mode, TTL: w.ttl, Position: pos,
			Since: w.since, Deadline: w.deadline})
	}
	return held, waiting, true
}

// Owners returns the holders of name in grant order (nil when it is free).
func (t *Table) Owners(name string) []HolderStatus {
	l, ok := t.locks[name]
	if !ok {
		return nil
	}
	out := make([]HolderStatus, 0, len(l.holders))
	for _, h := range l.holders {
		info := t.sessions[h.session].info
		out = append(out, HolderStatus{Session: h.session, Client: info.Client, PID: info.PID,
			Mode: h.mode, Token: h.token, Since: h.since, TTL: h.ttl, Expires: h.expires})
	}
	return out
}
