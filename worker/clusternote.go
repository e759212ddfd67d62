package worker

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"mplock/lockd/replica/lincheck"
)

// A cluster client tells its coordinator what it does in JSON lines on its
// report pipe (fd 3), one ClusterNote a line. Times are the wall clock in
// Unix nanoseconds: every process of a run reads the same clock, so the
// coordinator can merge the notes of every client into one history.

// ClusterNoteKind is the type of a cluster client's note.
type ClusterNoteKind string

// Cluster note kinds.
const (
	ClusterNoteReady    ClusterNoteKind = "ready"    // connected; waits for "go"
	ClusterNoteOp       ClusterNoteKind = "op"       // one operation, called and returned
	ClusterNoteRegister ClusterNoteKind = "register" // a read-modify-write of the register
	// session: the session resumed at another server on its own (Server,
	// why in Text), or was lost (Previous, why in Text) and replaced by a
	// new one (Client).
	ClusterNoteSession  ClusterNoteKind = "session"
	ClusterNoteStalling ClusterNoteKind = "stalling" // read the register under a lock and stalls before writing
	ClusterNoteDone     ClusterNoteKind = "done"     // stopped as told, everything released
	ClusterNoteFailed   ClusterNoteKind = "failed"   // an error ended it
)

// Outcome is how an operation ended, as the history needs it.
type Outcome string

// Operation outcomes.
const (
	OutcomeOK      Outcome = "ok"      // preempt granted, release done, check answered
	OutcomeRefused Outcome = "refused" // preempt of a held name, release by a non-owner
	OutcomeUnknown Outcome = "unknown" // the outcome was never learned
	OutcomeDropped Outcome = "dropped" // surely took no effect
)

// ClusterNote is one line of a cluster client's report.
type ClusterNote struct {
	Kind   ClusterNoteKind `json:"kind"`
	Client string          `json:"client,omitempty"` // the session's client name: UUID.generation
	At     int64           `json:"at,omitempty"`     // when the note was made (session, stalling, done, failed)

	// op
	Op      string  `json:"op,omitempty"` // preempt, release, check, expire
	Name    string  `json:"name,omitempty"`
	Server  string  `json:"server,omitempty"` // the server the request was sent to
	Call    int64   `json:"call,omitempty"`
	Return  int64   `json:"ret,omitempty"`
	Outcome Outcome `json:"outcome,omitempty"`
	Reply   *Reply  `json:"reply,omitempty"`
	Err     string  `json:"err,omitempty"`

	// register (and stalling): the token used, what was read and written,
	// and the register's answer.
	Token    uint64 `json:"token,omitempty"`
	Read     uint64 `json:"read,omitempty"`
	Wrote    uint64 `json:"wrote,omitempty"`
	Refused  bool   `json:"refused,omitempty"`
	Highest  uint64 `json:"highest,omitempty"` // refused: the highest token the register had seen
	Lost     uint64 `json:"lost,omitempty"`    // accepted: increments overwritten unseen
	Previous string `json:"previous,omitempty"`

	Text string `json:"text,omitempty"` // session, failed
}

// Time is the note's time: its return, call or At.
func (n ClusterNote) Time() time.Time {
	switch {
	case n.Return != 0:
		return time.Unix(0, n.Return)
	case n.Call != 0:
		return time.Unix(0, n.Call)
	}
	return time.Unix(0, n.At)
}

// ParseClusterNote reads one note line.
func ParseClusterNote(line string) (ClusterNote, error) {
	var n ClusterNote
	if err := json.Unmarshal([]byte(line), &n); err != nil {
		return n, fmt.Errorf("worker: cluster note %.80q: %w", line, err)
	}
	if n.Kind == "" {
		return n, fmt.Errorf("worker: cluster note %.80q: no kind", line)
	}
	return n, nil
}

// clusterNotes writes notes, one line each, safe for concurrent use (the
// service's events come from its own goroutines).
type clusterNotes struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (c *clusterNotes) write(n ClusterNote) {
	if n.At == 0 && n.Call == 0 {
		n.At = time.Now().UnixNano()
	}
	b, err := json.Marshal(n)
	if err != nil {
		panic(err) // a ClusterNote always marshals
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		_, c.err = c.w.Write(append(b, '\n'))
	}
}

// HistoryOp turns an op note into an operation of the linearizability
// model (package lincheck): ok is false for notes that are not operations
// the model checks, which are dropped operations (they surely took no
// effect) and checks that are not linearizable by design (stale and
// default consistency). An unknown outcome has a zero return time.
func (n ClusterNote) HistoryOp() (in lincheck.Input, out lincheck.Output, call, ret time.Time, ok bool) {
	if n.Kind != ClusterNoteOp || n.Outcome == OutcomeDropped {
		return in, out, call, ret, false
	}
	in = lincheck.Input{Client: n.Client, Name: n.Name}
	switch n.Op {
	case "preempt":
		in.Kind = lincheck.Preempt
	case "release":
		in.Kind = lincheck.Release
	case "check":
		in.Kind = lincheck.Check
		if n.Outcome == OutcomeOK && n.Reply.Consistency != Consistent {
			return in, out, call, ret, false
		}
		if n.Outcome == OutcomeUnknown {
			return in, out, call, ret, false // a read that failed changed nothing
		}
	case "expire":
		in.Kind = lincheck.Expire
	default:
		return in, out, call, ret, false
	}
	call = time.Unix(0, n.Call)
	if n.Outcome == OutcomeUnknown {
		return in, lincheck.Output{Unknown: true}, call, time.Time{}, true
	}
	ret = time.Unix(0, n.Return)
	if n.Reply != nil {
		out = lincheck.Output{OK: n.Reply.OK, Token: n.Reply.Token, Owner: n.Reply.Owner}
	}
	return in, out, call, ret, true
}
