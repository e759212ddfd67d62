package lockd

import (
	"math/rand/v2"
	"time"
)

// The pauses between Dial's tries of a server that answered ERR busy:
// from busyRetryFirst, doubling up to busyRetryMax, with jitter: the
// exponential backoff of gRPC's connection backoff protocol
// (grpc/grpc doc/connection-backoff.md), on the scale of a lock server's
// turns rather than of a reconnect.
// busyRetryFor bounds the tries when the caller's context has no
// deadline.
const (
	busyRetryFirst = 50 * time.Millisecond
	busyRetryMax   = time.Second
	busyRetryFor   = 10 * time.Second
)

// busyBackoff gives the pauses between tries: each is the last doubled
// (from busyRetryFirst, at most busyRetryMax), less a random part of up
// to half of it, so that clients turned away together do not come back
// together. The zero value starts at busyRetryFirst.
type busyBackoff struct{ last time.Duration }

// next returns the next pause.
func (b *busyBackoff) next() time.Duration {
	if b.last == 0 {
		b.last = busyRetryFirst
	} else {
		b.last = min(2*b.last, busyRetryMax)
	}
	return b.last - rand.N(b.last/2+1)
}
