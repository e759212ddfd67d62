package lockd

import "time"

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
