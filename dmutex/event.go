package dmutex

import "fmt"

// EventKind is something a process did that a log shows.
type EventKind uint8

// Event kinds.
const (
	Requested       EventKind = iota + 1 // asked for the critical section; TS is the request's timestamp
	Replied                              // replied to Peer's request at once
	Deferred                             // deferred Peer's request until its own exit; Why says why
	SentDeferred                         // on exit, replied to Peer, whose request it had deferred
	ReceivedReply                        // received Peer's reply
	Entered                              // entered the critical section
	Exited                               // left the critical section
	Queued                               // queued Peer's request (the server, Raymond, a Maekawa voter)
	Granted                              // the server granted the critical section to Peer
	ReceivedToken                        // received the token from Peer
	PassedToken                          // passed the token to Peer; Count is the queue it carries (Suzuki-Kasami)
	Acknowledged                         // Lamport: queued Peer's request (Other) and acknowledged it
	ReceivedRelease                      // Lamport, Maekawa: Peer left; its request leaves the queue or its vote is free
	Voted                                // Maekawa: locked its vote for Peer's request (Other)
	SentFailed                           // Maekawa: told Peer its vote went to an earlier request (Other)
	Inquired                             // Maekawa: asked Peer for its vote back, for an earlier request (Other)
	ReceivedVote                         // Maekawa: received Peer's vote; Count votes of the quorum now held
	ReceivedFailed                       // Maekawa: Peer's vote went to an earlier request
	Relinquished                         // Maekawa: gave Peer's vote back; Why says why
	KeptVote                             // Maekawa: an INQUIRE from Peer waits: this request may still win
	AskedHolder                          // Raymond: asked Peer, its neighbour towards the token, for it
	maxEventKind
)

var eventNames = [...]string{
	Requested: "requested", Replied: "replied", Deferred: "deferred", SentDeferred: "sent-deferred",
	ReceivedReply: "received-reply", Entered: "entered", Exited: "released", Queued: "queued",
	Granted: "granted", ReceivedToken: "received-token", PassedToken: "passed-token",
	Acknowledged: "acknowledged", ReceivedRelease: "received-release", Voted: "voted",
	SentFailed: "sent-failed", Inquired: "inquired", ReceivedVote: "received-vote",
	ReceivedFailed: "received-failed", Relinquished: "relinquished", KeptVote: "kept-vote",
	AskedHolder: "asked-holder",
}

func (k EventKind) String() string {
	if k > 0 && k < maxEventKind {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// ParseEventKind is the inverse of EventKind.String.
func ParseEventKind(s string) (EventKind, error) {
	for k := Requested; k < maxEventKind; k++ {
		if eventNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("dmutex: unknown event %q", s)
}

// Reason says why a process decided as it did, where it could have decided
// otherwise.
type Reason uint8

// Reasons.
const (
	NoReason       Reason = iota
	BecauseInside         // the process is in the critical section
	BecauseEarlier        // the process's own request (Other) is earlier than Peer's
	BecauseFailed         // Maekawa: the requester already got FAILED (or gave a vote back), so it cannot win yet
	BecauseKept           // Roucairol-Carvalho: Count permissions were kept from earlier entries
	maxReason
)

var reasonNames = [...]string{
	NoReason: "-", BecauseInside: "inside", BecauseEarlier: "earlier", BecauseFailed: "failed", BecauseKept: "kept",
}

func (r Reason) String() string {
	if r < maxReason {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ParseReason is the inverse of Reason.String.
func ParseReason(s string) (Reason, error) {
	for r := NoReason; r < maxReason; r++ {
		if reasonNames[r] == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("dmutex: unknown reason %q", s)
}

// Event is one thing a process did. TS is the process's Lamport clock right
// after the event, except for Requested, where it is the request's timestamp.
type Event struct {
	Kind    EventKind
	Process int
	Peer    int // the other node; -1 when there is none
	TS      uint64
	Why     Reason
	Other   Stamp // the request the event or its reason is about (see the kind); zero when none
	Count   int   // a number the event reports (see the kind)
}

// String says what happened in plain words: "P3 requested the critical
// section at ts 17", "P3 received a reply from P5", "P3 deferred P7: P3 is
// in the critical section".
func (e Event) String() string {
	p, q := who(e.Process), Name(e.Peer)
	qs := q + "'s" // "P3's request", or "its own request"
	if e.Peer == e.Process {
		qs = "its own"
	}
	o := fmt.Sprintf("(ts %d, %s)", e.Other.TS, Name(e.Other.ID))
	switch e.Kind {
	case Requested:
		s := fmt.Sprintf("%s requested the critical section at ts %d", p, e.TS)
		if e.Why == BecauseKept {
			s += fmt.Sprintf(" (%d permissions kept from before: it asks only the others)", e.Count)
		}
		return s
	case Replied:
		return fmt.Sprintf("%s replied to %s", p, q)
	case Deferred:
		switch e.Why {
		case BecauseInside:
			return fmt.Sprintf("%s deferred %s: %s is in the critical section", p, q, p)
		case BecauseEarlier:
			return fmt.Sprintf("%s deferred %s: %s's own request %s is earlier", p, q, p, o)
		}
		return fmt.Sprintf("%s deferred %s", p, q)
	case SentDeferred:
		return fmt.Sprintf("%s sent its deferred reply to %s", p, q)
	case ReceivedReply:
		return fmt.Sprintf("%s received a reply from %s", p, q)
	case Entered:
		return fmt.Sprintf("%s is in the critical section", p)
	case Exited:
		return fmt.Sprintf("%s released the critical section", p)
	case Queued:
		return fmt.Sprintf("%s queued %s request", p, qs)
	case Granted:
		return fmt.Sprintf("%s granted the critical section to %s", p, q)
	case ReceivedToken:
		return fmt.Sprintf("%s received the token from %s", p, q)
	case PassedToken:
		if e.Count > 0 {
			return fmt.Sprintf("%s passed the token to %s (%d more waiting in its queue)", p, q, e.Count)
		}
		return fmt.Sprintf("%s passed the token to %s", p, q)
	case Acknowledged:
		return fmt.Sprintf("%s queued %s request %s and acknowledged it", p, qs, o)
	case ReceivedRelease:
		return fmt.Sprintf("%s received %s's release", p, q)
	case Voted:
		return fmt.Sprintf("%s voted for %s request %s (LOCKED)", p, qs, o)
	case SentFailed:
		return fmt.Sprintf("%s told %s FAILED: its vote is for the earlier request %s", p, q, o)
	case Inquired:
		return fmt.Sprintf("%s asked %s for its vote back (INQUIRE): the request %s is earlier", p, q, o)
	case ReceivedVote:
		return fmt.Sprintf("%s received %s's vote (%d of its quorum's)", p, q, e.Count)
	case ReceivedFailed:
		return fmt.Sprintf("%s received FAILED from %s", p, q)
	case Relinquished:
		return fmt.Sprintf("%s gave %s's vote back (RELINQUISH): it cannot win yet, another voter chose an earlier request", p, q)
	case KeptVote:
		return fmt.Sprintf("%s keeps %s's vote for now (INQUIRE waits): no voter has refused it yet", p, q)
	case AskedHolder:
		return fmt.Sprintf("%s asked %s, its neighbour towards the token, for it", p, q)
	}
	return fmt.Sprintf("%s: %v %s", p, e.Kind, q)
}

// who is Name, except that the server is "the server" at the start of a
// sentence.
func who(id int) string {
	if id == ServerID {
		return "the server"
	}
	return Name(id)
}
