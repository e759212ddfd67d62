package lockd

import (
	"fmt"
	"time"
)

// A TokenStore numbers a server's fencing tokens across its restarts, so
// that the first token after a restart is above every token before it (a
// resource that refuses tokens lower than the highest it has seen then
// accepts the new holders, and still refuses the old ones).
//
// The server calls Start once, before its first grant, and hands out
// tokens above what it returns; it calls Reserve before it hands out a
// token above the last ceiling Reserve returned. A store is used by one
// server at a time; the server serialises its calls.
type TokenStore interface {
	// Start returns the value that every token of this run is above.
	Start() (Token, error)
	// Reserve makes every token up to need (at least) safe to hand out,
	// and returns the ceiling it reserved. A durable store records the
	// ceiling before it returns, so that after a crash Start returns at
	// least that ceiling: a crash skips tokens but never repeats one.
	Reserve(need Token) (Token, error)
	// Kind names the rule, as HELLO reports it ("epoch"; a cluster's
	// tokens, which come from its replicated table, are "raft").
	Kind() string
}

// EpochTokens numbers tokens from the time the server starts: this run's
// tokens are above At in microseconds since 1970 (about 1.8e15 in 2027,
// well within the 2^53 that JSON numbers hold exactly). Nothing is
// written. The first token after a restart is above every token of the
// run before unless that run handed out more tokens than microseconds
// passed between the two starts (a million grants a second for its whole
// life: far beyond one server), or the clock was set back between the
// two starts. A zero At means time.Now() when Start is called.
type EpochTokens struct{ At time.Time }

func (e EpochTokens) Start() (Token, error) {
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	us := at.UnixMicro()
	if us < 0 {
		return 0, fmt.Errorf("lockd: clock before 1970 (%v): cannot number tokens by it", at)
	}
	return Token(us), nil
}

// Reserve has nothing to record: every token is reserved.
func (EpochTokens) Reserve(Token) (Token, error) { return ^Token(0), nil }

func (EpochTokens) Kind() string { return "epoch" }

var _ TokenStore = EpochTokens{}
