package dmutex

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Kind is a message's type.
type Kind uint8

// Message kinds. Ping, Pong and Hello belong to the runtime (measuring
// delivery time, introducing a link), not to any algorithm. Which number a
// message carries depends on the algorithm (see each algorithm's file): a
// Lamport timestamp, a request's timestamp, or a request's sequence number.
const (
	Request     Kind = iota + 1 // asks for the critical section (or, in Raymond's tree, for the token)
	Reply                       // Ricart-Agrawala, Roucairol-Carvalho: permission; Lamport: acknowledgement
	Grant                       // central: the server lets the requester in
	ReleaseLock                 // central, Lamport, Maekawa: the sender left the critical section
	Token                       // token ring, Raymond, Suzuki-Kasami (with its payload): the token itself
	Ping                        // runtime: NUMBER is a sequence number
	Pong                        // runtime: answers the Ping with the same number
	Hello                       // runtime: first line on a link; NUMBER is the run's secret
	Locked                      // Maekawa: the arbiter's vote is locked for the sender's request
	Failed                      // Maekawa: the arbiter's vote went to an earlier request
	Inquire                     // Maekawa: the arbiter asks for its vote back, for an earlier request
	Relinquish                  // Maekawa: the requester gives the arbiter's vote back
	maxKind
)

var kindNames = [...]string{
	Request: "REQUEST", Reply: "REPLY", Grant: "GRANT", ReleaseLock: "RELEASE",
	Token: "TOKEN", Ping: "PING", Pong: "PONG", Hello: "HELLO",
	Locked: "LOCKED", Failed: "FAILED", Inquire: "INQUIRE", Relinquish: "RELINQUISH",
}

func (k Kind) String() string {
	if k > 0 && k < maxKind {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Algorithmic reports whether k is one of the algorithms' messages, which
// count toward messages per entry (Ping, Pong and Hello do not).
func (k Kind) Algorithmic() bool { return k > 0 && k < maxKind && k != Ping && k != Pong && k != Hello }

// Message is one message between two nodes. To is not on the wire: a link
// joins exactly two nodes.
type Message struct {
	Kind Kind
	From int    // sender's id
	To   int    // receiver's id
	TS   uint64 // the message's number: a Lamport timestamp, a request's timestamp or sequence number (see Kind)
	// Carried is Suzuki-Kasami's token (on a TOKEN only; nil on every
	// other message). It is never modified once sent: a receiver copies it.
	Carried *TokenState
}

// TokenState is what Suzuki and Kasami's token carries: LN[j], the sequence
// number of process j's last request that was served, one per process; and
// Queue, the processes waiting for the token, in the order they get it.
type TokenState struct {
	LN    []uint64
	Queue []int
}

// Clone returns a copy that shares nothing with t.
func (t *TokenState) Clone() *TokenState {
	if t == nil {
		return nil
	}
	return &TokenState{LN: slices.Clone(t.LN), Queue: slices.Clone(t.Queue)}
}

// Equal reports whether t and u carry the same numbers and queue.
func (t *TokenState) Equal(u *TokenState) bool {
	if t == nil || u == nil {
		return t == u
	}
	return slices.Equal(t.LN, u.LN) && slices.Equal(t.Queue, u.Queue)
}

// Equal reports whether m and o are the same message (payloads compared by
// value).
func (m Message) Equal(o Message) bool {
	return m.Kind == o.Kind && m.From == o.From && m.To == o.To && m.TS == o.TS && m.Carried.Equal(o.Carried)
}

func (m Message) String() string {
	s := fmt.Sprintf("%v %s->%s ts %d", m.Kind, Name(m.From), Name(m.To), m.TS)
	if t := m.Carried; t != nil {
		s += fmt.Sprintf(" LN %v queue %v", t.LN, t.Queue)
	}
	return s
}

// Wire limits. A line without a payload is short; Suzuki-Kasami's TOKEN
// with MaxProcs sequence numbers of 20 digits and a full queue is the
// longest line: 1,556 bytes.
const (
	MaxLine      = 1600 // the longest valid encoded message, newline included
	maxPlainLine = 40   // "RELINQUISH 64 18446744073709551615\n" is 35 bytes
)

// ErrMalformed marks a line that is not a valid message.
var ErrMalformed = errors.New("dmutex: malformed message")

// AppendMessage appends m's wire form to dst: "KIND FROM NUMBER\n", or for
// a TOKEN carrying Suzuki-Kasami's state "TOKEN FROM NUMBER LN QUEUE\n",
// where LN is the sequence numbers joined by commas and QUEUE the waiting
// ids joined by commas, or "-" when nobody waits.
func AppendMessage(dst []byte, m Message) []byte {
	dst = append(dst, m.Kind.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(m.From), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, m.TS, 10)
	if t := m.Carried; t != nil {
		dst = append(dst, ' ')
		for i, v := range t.LN {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, v, 10)
		}
		dst = append(dst, ' ')
		if len(t.Queue) == 0 {
			dst = append(dst, '-')
		}
		for i, id := range t.Queue {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendUint(dst, uint64(id), 10)
		}
	}
	return append(dst, '\n')
}

// ParseMessage parses one line, newline included, strictly: a known kind in
// capitals, a sender id below MaxIDs and a number, each separated by one
// space, decimal without sign or leading zeros, and nothing else; only a
// TOKEN may add Suzuki-Kasami's payload (two more fields: 1 to MaxProcs
// sequence numbers, and a queue of distinct ids below the number of
// sequence numbers, or "-"). It never fails to reject: every error wraps
// ErrMalformed and says what was wrong. To is left as -1 for the caller,
// who knows the link, to fill in. Whether a payload belongs on a TOKEN is
// the algorithm's business: the token ring and Raymond's tree refuse one,
// Suzuki-Kasami refuses a TOKEN without.
func ParseMessage(line []byte) (Message, error) {
	bad := func(why string) (Message, error) {
		return Message{}, fmt.Errorf("%w: %s: %q", ErrMalformed, why, truncate(line))
	}
	if len(line) > MaxLine {
		return bad(fmt.Sprintf("longer than %d bytes", MaxLine))
	}
	body, ok := bytes.CutSuffix(line, []byte{'\n'})
	if !ok {
		return bad("no newline at the end")
	}
	fields := bytes.Split(body, []byte{' '})
	if len(fields) != 3 && len(fields) != 5 {
		return bad("want three fields: KIND FROM NUMBER")
	}
	m := Message{To: -1}
	for k := Request; k < maxKind; k++ {
		if string(fields[0]) == kindNames[k] {
			m.Kind = k
			break
		}
	}
	if m.Kind == 0 {
		return bad("unknown kind")
	}
	if len(fields) == 5 && m.Kind != Token {
		return bad("want three fields: KIND FROM NUMBER")
	}
	if len(fields) == 3 && len(line) > maxPlainLine {
		return bad(fmt.Sprintf("longer than %d bytes", maxPlainLine))
	}
	from, err := parseDecimal(fields[1])
	if err != nil || from >= MaxIDs {
		return bad("bad sender id")
	}
	m.From = int(from)
	if m.TS, err = parseDecimal(fields[2]); err != nil {
		return bad("bad number")
	}
	if len(fields) == 5 {
		t, why := parseToken(fields[3], fields[4])
		if why != "" {
			return bad(why)
		}
		m.Carried = t
	}
	return m, nil
}

// parseToken parses Suzuki-Kasami's payload; why is empty when it is valid.
func parseToken(lnField, qField []byte) (t *TokenState, why string) {
	t = &TokenState{}
	for f := range bytes.SplitSeq(lnField, []byte{','}) {
		v, err := parseDecimal(f)
		if err != nil {
			return nil, "bad sequence number in the token"
		}
		if len(t.LN) == MaxProcs {
			return nil, fmt.Sprintf("more than %d sequence numbers in the token", MaxProcs)
		}
		t.LN = append(t.LN, v)
	}
	if string(qField) == "-" {
		return t, ""
	}
	var seen Set
	for f := range bytes.SplitSeq(qField, []byte{','}) {
		v, err := parseDecimal(f)
		if err != nil || v >= uint64(len(t.LN)) {
			return nil, "bad id in the token's queue"
		}
		if seen.Has(int(v)) {
			return nil, "an id twice in the token's queue"
		}
		seen.Add(int(v))
		t.Queue = append(t.Queue, int(v))
	}
	return t, ""
}

// parseDecimal parses an unsigned decimal with no sign, no leading zero and
// no overflow.
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, ErrMalformed
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrMalformed
		}
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// truncate keeps error messages short when the line is garbage.
func truncate(b []byte) []byte {
	if len(b) > 60 {
		return b[:60]
	}
	return b
}
