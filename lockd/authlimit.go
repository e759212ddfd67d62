package lockd

import (
	"sync"
	"time"
)

// Defaults of the global bound on AUTH attempts (docs/protocol.md,
// "Security").
const (
	// DefaultAuthRate is how many secrets the server checks a second,
	// all connections together, once its burst is spent.
	DefaultAuthRate = 20
	// DefaultAuthBurst is how many secrets it checks at once before
	// DefaultAuthRate applies.
	DefaultAuthBurst = 64
	// StrongSecret is the length in bytes from which a secret is taken to
	// be out of reach of guessing (128 bits if random), and the global
	// bound on AUTH attempts is not applied: it would only let a flood of
	// guesses, each waiting its turn, keep out the clients that know the
	// secret. Each wrong secret is still answered after AuthFailDelay, and
	// a connection waiting out that delay holds no place of those waiting
	// to authenticate (Server.failLocked).
	StrongSecret = 16
)

// authLimiter bounds how many secrets the server compares, all
// connections together: a token bucket (rate a second, up to burst) from
// which every AUTH takes a token before its secret is compared, waiting
// for one if none is left, and to which a right secret gives it back. So
// wrong secrets are checked at most burst at once and rate a second
// after that, however many connections guess (the per-connection delay
// bounds only each connection), while clients that know the secret spend
// nothing: only while guesses have emptied the bucket do they wait their
// turn. golang.org/x/time/rate cannot give a token back once its time
// has come, which a right secret needs, hence this.
//
// The token count may go below zero: tokens promised to AUTHs that wait.
// The zero value is not usable; use newAuthLimiter. A nil *authLimiter
// limits nothing (a server whose secrets are strong: StrongSecret).
type authLimiter struct {
	mu     sync.Mutex
	rate   float64 // tokens a second
	burst  float64
	tokens float64 // at last
	last   time.Time
}

func newAuthLimiter(rate float64, burst int, now time.Time) *authLimiter {
	return &authLimiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// refill adds the tokens earned since last; called with mu held.
func (l *authLimiter) refill(now time.Time) {
	if now.After(l.last) {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		l.last = now
	}
}

// take takes a token for an AUTH made at now, and says how long the AUTH
// must wait before its secret may be compared (0: at once). It takes
// nothing and reports false when the token would come after by (the
// connection's time to authenticate ends first).
func (l *authLimiter) take(now, by time.Time) (time.Duration, bool) {
	if l == nil {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(now)
	var wait time.Duration
	if l.tokens < 1 {
		wait = time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		if now.Add(wait).After(by) {
			return 0, false
		}
	}
	l.tokens--
	return wait, true
}

// giveBack returns the token of an AUTH whose secret was right.
func (l *authLimiter) giveBack(now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.refill(now)
	l.tokens = min(l.burst, l.tokens+1)
	l.mu.Unlock()
}
