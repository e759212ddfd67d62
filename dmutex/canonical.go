package dmutex

import "strconv"

// AppendCanonical appends message m as algorithm a sees it: the wire form
// with the receiver, but without the number when the algorithm makes no
// decision on it (a Lamport timestamp kept only for the event log). Two
// messages with equal canonical forms have the same effect on their
// receiver. The explorer hashes states with it, so that a clock that only
// counts does not make the state space infinite.
func (a Algorithm) AppendCanonical(dst []byte, m Message) []byte {
	if !a.numberMatters(m.Kind) {
		m.TS = 0
	}
	dst = strconv.AppendInt(dst, int64(m.To), 10)
	dst = append(dst, ' ')
	return AppendMessage(dst, m)
}

// numberMatters reports whether the number on a message of kind k takes
// part in algorithm a's decisions.
func (a Algorithm) numberMatters(k Kind) bool {
	switch {
	case a.Clocked():
		return true
	case a == SuzukiKasami:
		return k == Request // the sequence number; the token's number is a clock
	}
	return false
}
