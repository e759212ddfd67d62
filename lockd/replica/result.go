package replica

import (
	"time"
	"unicode/utf8"

	"mplock/lockd"
)

// Result is what applying one command did, the same on every node. Node.Apply
// returns it (from the local FSM), and the Observer sees it for every entry.
type Result struct {
	// Index is the log index of the entry that was applied.
	Index uint64
	// Time is the table time the command was applied at: the leader's
	// stamp, or the previous entry's time if that was later (table time
	// never runs back across leader changes).
	Time    time.Time
	Op      Op
	Session lockd.SessionID // the session acted for; for OpOpenSession, the new (or found) one
	Request uint64

	// Duplicate: the request id was already applied; nothing changed, and
	// Err, Lock, Grant and State are the recorded result of the first
	// apply. Events is empty (they were published then).
	Duplicate bool

	// Err is the table's or the FSM's refusal (a *TableError, matching
	// lockd.ErrLocked, lockd.ErrNotHolder, ErrNoSession, ...); nil when the
	// command did what it asked.
	Err error

	// Lock is OpLock's outcome: granted (with the grant) or queued.
	Lock lockd.LockResult
	// Current, for a Duplicate OpLock, is where the session stands on the
	// name now, at this entry (the recorded Lock may be out of date: a
	// wait since granted, a grant since lost). A server answers a retried
	// LOCK from it, so that a client that lost the replies and events
	// between the first apply and its retry learns the present.
	Current *Standing
	// Grant is the grant OpUnlock released or OpRenew renewed.
	Grant lockd.Grant
	// State is the session's whole state after OpOpenSession or
	// OpResumeSession: what a client that resumes at another node needs,
	// instead of the events it missed.
	State *SessionState
	// Extended is how many leases OpExtendLeases moved.
	Extended int

	// Events are the table's events this command caused, each addressed to
	// a session (grants that a release let through, leases lost, waits
	// timed out), in the order the table produced them.
	Events []lockd.Event
}

// Standing is a session's hold on one name: held (with the grant),
// waiting (at a place in line), or neither.
type Standing struct {
	Held     bool
	Grant    lockd.Grant
	Position int // 1 is next in line; 0 when not waiting
}

// SessionState is a session and everything it holds and waits for.
type SessionState struct {
	ID      lockd.SessionID
	TTL     time.Duration   // the session's TTL: keepalives must come within it
	Node    string          // the node it is attached at
	Held    []lockd.Grant   // in name order
	Waiting []lockd.Waiting // in name order, with queue positions
	// Locks are the same, as STATUS lists them (with client, pid and
	// since), each name with this session's hold or wait only.
	Locks []lockd.LockStatus
	// LastRequest is the last request id applied for the session: a
	// server that numbers a resumed session's requests goes on from it.
	LastRequest uint64
}

// reply is a session command's result as the FSM records it for
// de-duplication: only what a retry must get back, in a form that encodes
// canonically (times as Unix nanoseconds).
type reply struct {
	Request uint64 `json:"request"`
	// Sum is the request's fingerprint (Command.fingerprint): a retry
	// must match it. Zero in snapshots written before it was kept: then
	// any request with the id matches, as before.
	Sum      uint64     `json:"sum,omitempty"`
	Code     lockd.Code `json:"code,omitempty"`
	Text     string     `json:"text,omitempty"`
	Granted  bool       `json:"granted,omitempty"`
	Position int        `json:"position,omitempty"`
	Grant    grantRec   `json:"grant"`
}

type grantRec struct {
	Name    string        `json:"name,omitempty"`
	Mode    lockd.Mode    `json:"mode,omitempty"`
	Token   lockd.Token   `json:"token,omitempty"`
	TTL     time.Duration `json:"ttl,omitempty"`
	Expires int64         `json:"expires,omitempty"`
}

func recordGrant(g lockd.Grant) grantRec {
	return grantRec{Name: g.Name, Mode: g.Mode, Token: g.Token, TTL: g.TTL, Expires: unixNano(g.Expires)}
}

func (g grantRec) grant() lockd.Grant {
	return lockd.Grant{Name: g.Name, Mode: g.Mode, Token: g.Token, TTL: g.TTL, Expires: fromUnixNano(g.Expires)}
}

// maxRecordedText bounds the error text a recorded reply keeps: the FSM
// keeps recentReplies of them per session, in memory and in snapshots,
// so one may not grow with the table (a try-lock's text names at most a
// few holders and stays far below it; this is the backstop).
const maxRecordedText = 1024

// clipText returns s cut to maxRecordedText bytes (at a character
// boundary), marked as cut.
func clipText(s string) string {
	if len(s) <= maxRecordedText {
		return s
	}
	const mark = " [...]"
	n := maxRecordedText - len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// recordReply keeps what a retry of r must get back.
func recordReply(r *Result) reply {
	rep := reply{Request: r.Request}
	if te := tableError(r.Err); te != nil {
		rep.Code, rep.Text = te.Code, clipText(te.Text)
	}
	switch r.Op {
	case OpLock:
		rep.Granted, rep.Position = r.Lock.Granted, r.Lock.Position
		rep.Grant = recordGrant(r.Lock.Grant)
	case OpUnlock, OpRenew:
		rep.Grant = recordGrant(r.Grant)
	}
	return rep
}

// restore fills r (Op, Session, Request already set) from the record.
func (rep reply) restore(r *Result) {
	r.Duplicate = true
	if rep.Code != "" {
		r.Err = &TableError{Code: rep.Code, Text: rep.Text}
	}
	switch r.Op {
	case OpLock:
		r.Lock = lockd.LockResult{Granted: rep.Granted, Grant: rep.Grant.grant(), Position: rep.Position}
	case OpUnlock, OpRenew:
		r.Grant = rep.Grant.grant()
	}
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}
