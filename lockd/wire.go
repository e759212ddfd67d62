package lockd

import (
	"strconv"
	"strings"
	"time"
)

// The replies of the protocol as a backend outside this package writes
// them (package lockd/cluster): each appends one reply, or a reply's data
// lines and its final line, to b and returns the extended slice. The
// formats are docs/protocol.md's; the client (client.go) parses them.

// AppendError appends "ERR <code> <text>".
func AppendError(b []byte, code Code, text string) []byte { return appendErr(b, code, text) }

// AppendLocked appends "OK LOCKED <name> <mode> token=T ttl=D".
func AppendLocked(b []byte, g Grant) []byte { return appendLocked(b, g) }

// AppendQueued appends "OK QUEUED <name> <mode> position=P".
func AppendQueued(b []byte, name string, m Mode, position int) []byte {
	if m == 0 {
		m = Exclusive
	}
	return appendQueued(b, name, m, position)
}

// AppendUnlocked appends "OK UNLOCKED <name> token=T".
func AppendUnlocked(b []byte, name string, token Token) []byte {
	return append(appendKU(append(append(appendOK(b, "UNLOCKED"), ' '), name...), "token", uint64(token)), '\n')
}

// AppendRenewed appends "OK RENEWED <name> <mode> token=T ttl=D".
func AppendRenewed(b []byte, g Grant) []byte {
	return append(appendGrant(appendOK(b, "RENEWED"), g), '\n')
}

// AppendCancelled appends "OK CANCELLED <name>".
func AppendCancelled(b []byte, name string) []byte {
	return append(append(append(appendOK(b, "CANCELLED"), ' '), name...), '\n')
}

// AppendEvent appends an event line ("* GRANTED ...", "* LOST ...").
func AppendEvent(b []byte, ev Event) []byte { return appendEvent(b, ev) }

// AppendBye appends "* BYE reason=R".
func AppendBye(b []byte, reason string) []byte { return appendBye(b, reason) }

// AppendStatus appends STATUS's data lines and its final line.
func AppendStatus(b []byte, st Status) []byte { return appendStatus(b, st) }

// CheckResult is CHECK's answer: the holders of one name, and what the
// answer is worth. It is information, never proof of ownership: only a
// fencing token is (a holder's lease may run out the moment after).
type CheckResult struct {
	Name    string         `json:"name"`
	Holders []HolderStatus `json:"holders"`
	// Index is the replicated table's applied index the answer reflects
	// (0 on a single server).
	Index       uint64      `json:"index"`
	Consistency Consistency `json:"consistency"`
	// Node answered; Leader is the leader as Node knew it ("" on a single
	// server, or when it knew none).
	Node   string `json:"node,omitempty"`
	Leader string `json:"leader,omitempty"`
	// Contact, for a stale read, is how long before the answer Node last
	// heard from the leader; -1 when not reported.
	Contact time.Duration `json:"contact_ns"`
}

// Held reports whether the name had a holder.
func (r CheckResult) Held() bool { return len(r.Holders) > 0 }

// AppendCheck appends CHECK's reply: a HOLDER line per holder (STATUS's
// format), then "OK CHECK <name> held=B index=N consistency=C node=ID
// leader=ID [contact=D]".
func AppendCheck(b []byte, r CheckResult) []byte {
	for _, h := range r.Holders {
		b = appendHolder(b, r.Name, h)
	}
	b = append(append(appendOK(b, "CHECK"), ' '), r.Name...)
	b = appendKV(b, "held", strconv.FormatBool(r.Held()))
	b = appendKU(b, "index", r.Index)
	c := r.Consistency
	if c == "" {
		c = ConsistencyDefault
	}
	b = appendKV(b, "consistency", string(c))
	b = appendKV(b, "node", dash(r.Node))
	b = appendKV(b, "leader", dash(r.Leader))
	if r.Contact >= 0 {
		b = appendKD(b, "contact", r.Contact.Round(time.Microsecond))
	}
	return append(b, '\n')
}

// Resumed is RESUME's answer: the session's whole state (what a client
// that reconnects needs instead of the events it missed), where it is now
// attached, and the last request id the cluster applied for it.
type Resumed struct {
	Session    SessionID
	SessionTTL time.Duration
	// State lists the session's holds and waits, as STATUS does (no
	// sessions).
	State   Status
	Node    string
	Leader  string
	LastReq uint64
}

// AppendResumed appends RESUME's reply: HOLDER and WAITER lines, then "OK
// RESUMED session=ID held=N waiting=M node=ID leader=ID last-req=K
// session-ttl=D".
func AppendResumed(b []byte, r Resumed) []byte {
	held, waiting := 0, 0
	for _, l := range r.State.Locks {
		for _, h := range l.Holders {
			b = appendHolder(b, l.Name, h)
			held++
		}
		for _, w := range l.Waiters {
			b = appendWaiter(b, l.Name, w)
			waiting++
		}
	}
	b = appendKU(appendOK(b, "RESUMED"), "session", uint64(r.Session))
	b = appendKU(b, "held", uint64(held))
	b = appendKU(b, "waiting", uint64(waiting))
	b = appendKV(b, "node", dash(r.Node))
	b = appendKV(b, "leader", dash(r.Leader))
	b = appendKU(b, "last-req", r.LastReq)
	b = appendKD(b, "session-ttl", r.SessionTTL)
	return append(b, '\n')
}

// MemberStatus is one member of a cluster as MEMBERS lists it: its
// addresses and its raft state as it reported it (Role "down" when it
// could not be asked; the numbers are then zero and Contact -1).
type MemberStatus struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	ClientAddr string `json:"client_addr"`
	Role       string `json:"role"` // leader, follower, candidate, down
	Voter      bool   `json:"voter"`
	Term       uint64 `json:"term"`
	Commit     uint64 `json:"commit_index"`
	Applied    uint64 `json:"applied_index"`
	// Lag is how many entries the member's applied index is behind the
	// leader's commit index.
	Lag uint64 `json:"lag"`
	// Contact is how long before the answer the member last heard from
	// the leader (0 for the leader, -1 unknown).
	Contact time.Duration `json:"contact_ns"`
}

// Members is MEMBERS's answer.
type Members struct {
	Members []MemberStatus `json:"members"`
	Leader  string         `json:"leader"`
	Term    uint64         `json:"term"`
}

// AppendMembers appends MEMBERS's reply: "MEMBER <id> raft=ADDR
// client=ADDR role=R voter=B term=T commit=C applied=A lag=N contact=D"
// per member, then "OK MEMBERS leader=ID term=T".
func AppendMembers(b []byte, m Members) []byte {
	for _, s := range m.Members {
		b = append(append(b, "MEMBER "...), s.ID...)
		b = appendKV(b, "raft", dash(s.RaftAddr))
		b = appendKV(b, "client", dash(s.ClientAddr))
		b = appendKV(b, "role", s.Role)
		b = appendKV(b, "voter", strconv.FormatBool(s.Voter))
		if s.Role == "down" {
			b = append(b, " term=- commit=- applied=- lag=- contact=-"...)
		} else {
			b = appendKU(b, "term", s.Term)
			b = appendKU(b, "commit", s.Commit)
			b = appendKU(b, "applied", s.Applied)
			b = appendKU(b, "lag", s.Lag)
			if s.Contact < 0 {
				b = appendKV(b, "contact", "-")
			} else {
				b = appendKD(b, "contact", s.Contact.Round(time.Microsecond))
			}
		}
		b = append(b, '\n')
	}
	b = appendKV(appendOK(b, "MEMBERS"), "leader", dash(m.Leader))
	return append(appendKU(b, "term", m.Term), '\n')
}

// ClusterHello is what HELLO adds in cluster mode (docs/protocol.md): the
// session's secret (to RESUME it elsewhere), its TTL, the node, the
// leader, and every member's client address.
type ClusterHello struct {
	Secret     string
	SessionTTL time.Duration
	Node       string
	Leader     string
	Members    []string // "id@host:port"
}

// AppendClusterHello appends ClusterHello's fields to a HELLO line that
// Conn.AppendHello began, and ends the line.
func AppendClusterHello(b []byte, h ClusterHello) []byte {
	b = appendKV(b, "secret", h.Secret)
	b = appendKD(b, "session-ttl", h.SessionTTL)
	b = appendKV(b, "node", dash(h.Node))
	b = appendKV(b, "leader", dash(h.Leader))
	b = appendKV(b, "members", dash(strings.Join(h.Members, ",")))
	return append(b, '\n')
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendHolder and appendWaiter write STATUS's HOLDER and WAITER lines.
func appendHolder(b []byte, name string, h HolderStatus) []byte {
	b = append(append(append(append(b, "HOLDER "...), name...), ' '), h.Mode.String()...)
	b = appendKU(b, "token", uint64(h.Token))
	b = appendKU(b, "session", uint64(h.Session))
	b = appendKV(b, "client", clientOrDash(h.Client))
	b = appendKU(b, "pid", uint64(h.PID))
	b = appendKT(b, "since", h.Since)
	b = appendKD(b, "ttl", h.TTL)
	if !h.Expires.IsZero() {
		b = appendKT(b, "expires", h.Expires)
	}
	return append(b, '\n')
}

func appendWaiter(b []byte, name string, w WaiterStatus) []byte {
	b = append(append(append(append(b, "WAITER "...), name...), ' '), w.Mode.String()...)
	b = appendKU(b, "position", uint64(w.Position))
	b = appendKU(b, "session", uint64(w.Session))
	b = appendKV(b, "client", clientOrDash(w.Client))
	b = appendKU(b, "pid", uint64(w.PID))
	b = appendKT(b, "since", w.Since)
	if !w.Deadline.IsZero() {
		b = appendKT(b, "deadline", w.Deadline)
	}
	return append(b, '\n')
}
