package dmutex

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Kind is a message's type.
type Kind uint8

// Message kinds. Ping, Pong and Hello belong to the runtime (measuring
// delivery time, introducing a link), not to any algorithm.
const (
	Request     Kind = iota + 1 // Ricart-Agrawala and central: asks for the critical section; TS is the request's timestamp
	Reply                       // Ricart-Agrawala: permission
	Grant                       // central: the server lets the requester in
	ReleaseLock                 // central: the holder left the critical section
	Token                       // token ring: the token itself
	Ping                        // runtime: TS is a sequence number
	Pong                        // runtime: answers the Ping with the same number
	Hello                       // runtime: first line on a link; TS is the run's secret
	maxKind
)

var kindNames = [...]string{
	Request: "REQUEST", Reply: "REPLY", Grant: "GRANT", ReleaseLock: "RELEASE",
	Token: "TOKEN", Ping: "PING", Pong: "PONG", Hello: "HELLO",
}

func (k Kind) String() string {
	if k > 0 && k < maxKind {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Algorithmic reports whether k is one of the algorithms' messages, which
// count toward messages per entry (Ping, Pong and Hello do not).
func (k Kind) Algorithmic() bool { return k >= Request && k <= Token }

// Message is one message between two nodes. To is not on the wire: a link
// joins exactly two nodes.
type Message struct {
	Kind Kind
	From int    // sender's id
	To   int    // receiver's id
	TS   uint64 // Lamport timestamp (see Kind for the runtime kinds)
}

func (m Message) String() string {
	return fmt.Sprintf("%v %s->%s ts %d", m.Kind, Name(m.From), Name(m.To), m.TS)
}

// MaxLine is the longest valid encoded message, newline included:
// "RELEASE 64 18446744073709551615\n" is 32 bytes.
const MaxLine = 40

// ErrMalformed marks a line that is not a valid message.
var ErrMalformed = errors.New("dmutex: malformed message")

// AppendMessage appends m's wire form, "KIND FROM NUMBER\n", to dst.
func AppendMessage(dst []byte, m Message) []byte {
	dst = append(dst, m.Kind.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(m.From), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, m.TS, 10)
	return append(dst, '\n')
}

// ParseMessage parses one line, newline included, strictly: a known kind in
// capitals, a sender id below MaxIDs and a number, each separated by one
// space, decimal without sign or leading zeros, and nothing else. It never
// fails to reject: every error wraps ErrMalformed and says what was wrong.
// To is left as -1 for the caller, who knows the link, to fill in.
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
	kindField, rest, ok1 := bytes.Cut(body, []byte{' '})
	fromField, numField, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || bytes.IndexByte(numField, ' ') >= 0 {
		return bad("want three fields: KIND FROM NUMBER")
	}
	m := Message{To: -1}
	for k := Request; k < maxKind; k++ {
		if string(kindField) == kindNames[k] {
			m.Kind = k
			break
		}
	}
	if m.Kind == 0 {
		return bad("unknown kind")
	}
	from, err := parseDecimal(fromField)
	if err != nil || from >= MaxIDs {
		return bad("bad sender id")
	}
	m.From = int(from)
	if m.TS, err = parseDecimal(numField); err != nil {
		return bad("bad number")
	}
	return m, nil
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
	if len(b) > MaxLine {
		return b[:MaxLine]
	}
	return b
}
