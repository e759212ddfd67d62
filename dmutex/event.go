package dmutex

import "fmt"

// EventKind is something a process did that a log shows.
type EventKind uint8

// Event kinds.
const (
	Requested     EventKind = iota + 1 // asked for the critical section; TS is the request's timestamp
	Replied                            // replied to Peer's request at once
	Deferred                           // deferred Peer's request until its own exit
	SentDeferred                       // on exit, replied to Peer, whose request it had deferred
	ReceivedReply                      // received Peer's reply
	Entered                            // entered the critical section
	Exited                             // left the critical section
	Queued                             // the server queued Peer's request behind the holder
	Granted                            // the server granted the critical section to Peer
	ReceivedToken                      // received the token from Peer
	PassedToken                        // passed the token to Peer
	maxEventKind
)

var eventNames = [...]string{
	Requested: "requested", Replied: "replied", Deferred: "deferred", SentDeferred: "sent-deferred",
	ReceivedReply: "received-reply", Entered: "entered", Exited: "released", Queued: "queued",
	Granted: "granted", ReceivedToken: "received-token", PassedToken: "passed-token",
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

// Event is one thing a process did. TS is the process's Lamport clock right
// after the event, except for Requested, where it is the request's timestamp.
type Event struct {
	Kind    EventKind
	Process int
	Peer    int // the other node; -1 when there is none
	TS      uint64
}

// String says what happened in plain words: "P3 requested the critical
// section at ts 17", "P3 received a reply from P5", "P3 deferred P7".
func (e Event) String() string {
	p, q := Name(e.Process), Name(e.Peer)
	switch e.Kind {
	case Requested:
		return fmt.Sprintf("%s requested the critical section at ts %d", p, e.TS)
	case Replied:
		return fmt.Sprintf("%s replied to %s", p, q)
	case Deferred:
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
		return fmt.Sprintf("the server queued %s's request", q)
	case Granted:
		return fmt.Sprintf("the server granted the critical section to %s", q)
	case ReceivedToken:
		return fmt.Sprintf("%s received the token from %s", p, q)
	case PassedToken:
		return fmt.Sprintf("%s passed the token to %s", p, q)
	}
	return fmt.Sprintf("%s: %v %s", p, e.Kind, q)
}
