package lockd

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"fmt"
	"math"
	"time"
)

// pendState is where a connection that has not authenticated stands, as
// Server.evictLocked sees it when it must make room for a new one. The
// session's reader moves it as the connection speaks; the evictor moves
// it to pendEvicted, under Server.mu, by compare-and-swap, so a
// connection is never closed once it has moved on to a state that
// protects it. A connection whose peer has hung up (Server.evictLocked)
// is protected by none of the states before pendChecking: no one may be
// waiting for its answer, and its secret has not been compared, so
// closing it tells nothing about the secret.
type pendState uint32

const (
	pendSilent   pendState = iota // has sent nothing (that the server has read)
	pendTalking                   // has sent part of a line, or lines other than AUTH, all answered
	pendLine                      // a whole line has arrived and is not yet answered: protected
	pendAuth                      // its AUTH waits its turn at the AUTH rate: protected
	pendChecking                  // its secret is being compared: protected, even if hung up
	pendFailing                   // a wrong secret: waiting out AuthFailDelay in Server.failing, holding no place
	pendEvicted                   // closed to make room
)

func (p pendState) String() string {
	switch p {
	case pendSilent:
		return "silent"
	case pendTalking:
		return "talking"
	case pendLine:
		return "line"
	case pendAuth:
		return "auth"
	case pendChecking:
		return "checking"
	case pendFailing:
		return "failing"
	case pendEvicted:
		return "evicted"
	}
	return fmt.Sprintf("pendState(%d)", uint32(p))
}

// arrivals reads the session's connection for its reader and, until the
// session authenticates, records what arrived: a whole line protects the
// connection from eviction until it is answered.
type arrivals struct{ ss *session }

func (a arrivals) Read(p []byte) (int, error) {
	n, err := a.ss.conn.Read(p)
	if n > 0 && !a.ss.authed {
		next := pendTalking
		if bytes.IndexByte(p[:n], '\n') >= 0 {
			next = pendLine
		}
		a.ss.movePend(next)
	}
	return n, err
}

// answered records, after a request of an unauthenticated connection was
// answered, whether another whole line is waiting in br.
func (ss *session) answered(br *bufio.Reader) {
	b, _ := br.Peek(br.Buffered())
	if bytes.IndexByte(b, '\n') < 0 {
		ss.pend.CompareAndSwap(uint32(pendLine), uint32(pendTalking))
	}
}

// movePend moves a silent or talking connection on to next (talking or
// line); any other state stays.
func (ss *session) movePend(next pendState) {
	for {
		cur := pendState(ss.pend.Load())
		if cur == next || cur != pendSilent && cur != pendTalking {
			return
		}
		if ss.pend.CompareAndSwap(uint32(cur), uint32(next)) {
			return
		}
	}
}

// auth answers an AUTH. Every AUTH first takes its turn from the
// server's limiter of AUTH attempts (all connections together); a wrong
// secret is then answered after AuthFailDelay and closes the connection;
// a right one gives its turn back and makes the connection a session, if
// there is room for one. A connection that was closed to make room before
// its secret was compared is not answered OK: it ends (and gives its turn
// back: nothing was compared).
func (ss *session) auth(secret string) string {
	s := ss.srv
	if ss.authed {
		// Again on a session: the members' secret makes it a member.
		if s.isPeerSecret(secret) {
			ss.member = true
		}
		ss.out.push([]byte("OK AUTH\n"))
		return ""
	}
	s.mu.Lock()
	if pendState(ss.pend.Load()) == pendEvicted {
		s.mu.Unlock()
		ss.lastWords(evictedLine)
		return "evicted"
	}
	ss.pend.Store(uint32(pendAuth)) // from here the evictor passes it over, unless its peer hangs up
	s.mu.Unlock()

	now := time.Now()
	wait, ok := s.authLimit.take(now, ss.since.Add(s.cfg.AuthTimeout))
	if !ok {
		s.refused.Add(1)
		if ok, skipped := s.authLog.allow(now); ok {
			s.log.Warn("AUTH refused: too many AUTH attempts", "addr", ss.conn.RemoteAddr().String(), "rate", s.cfg.AuthRate,
				"also_wrong_refused_or_timed_out", skipped)
		}
		ss.out.push(appendErr(nil, CodeBusy, fmt.Sprintf("too many AUTH attempts (the server checks %g a second); try again", s.cfg.AuthRate)))
		return "busy"
	}
	paused := wait <= 0 || ss.pause(wait)
	if !ss.pend.CompareAndSwap(uint32(pendAuth), uint32(pendChecking)) {
		// Evicted (its peer hung up) before its secret was compared.
		s.authLimit.giveBack(time.Now())
		ss.lastWords(evictedLine)
		return "evicted"
	}
	if !paused {
		return "shutdown"
	}
	member := s.isPeerSecret(secret)
	if subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.Secret)) != 1 && !member {
		s.authFail.Add(1)
		now := time.Now()
		if ok, skipped := s.authLog.allow(now); ok {
			s.log.Warn("wrong secret: closing the connection", "addr", ss.conn.RemoteAddr().String(), "also_wrong_refused_or_timed_out", skipped)
		}
		s.mu.Lock()
		s.failLocked(ss, now)
		s.mu.Unlock()
		if !ss.pause(s.cfg.AuthFailDelay) && pendState(ss.pend.Load()) != pendEvicted {
			return "shutdown"
		}
		// The delay is over, or more wrong secrets are waiting out theirs
		// than Server.failing holds and this one is the oldest.
		ss.out.push(appendErr(nil, CodeAuth, "wrong secret; closing"))
		return "auth"
	}
	s.authLimit.giveBack(time.Now())
	s.mu.Lock()
	delete(s.pending, ss.id)
	if s.open >= s.cfg.MaxSessions {
		s.mu.Unlock()
		s.refused.Add(1)
		if ok, skipped := s.busyLog.allow(time.Now()); ok {
			s.log.Warn("session refused: too many sessions", "addr", ss.conn.RemoteAddr().String(), "max", s.cfg.MaxSessions, "also_refused", skipped)
		}
		ss.out.push(appendErr(nil, CodeBusy, fmt.Sprintf("too many sessions (%d)", s.cfg.MaxSessions)))
		return "busy"
	}
	s.open++
	ss.registered = true
	s.mu.Unlock()
	ss.authed, ss.member = true, member
	if s.rep == nil {
		if why := ss.openBackend(); why != "" {
			return why
		}
	}
	ss.out.push([]byte("OK AUTH\n"))
	return ""
}

// isPeerSecret reports whether secret is the members' secret
// (Config.PeerSecret), compared in constant time.
func (s *Server) isPeerSecret(secret string) bool {
	return s.cfg.PeerSecret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.PeerSecret)) == 1
}

// failLocked moves a connection whose secret was wrong from the places
// of those waiting to authenticate (Server.pending) to Server.failing:
// its fate is decided, and its delay is there only to slow guessing, so
// it keeps no newcomer out. It still waits out AuthFailDelay for its
// answer, whether or not its peer is still there (closing it sooner
// would answer a guesser that has only half-closed sooner). Server.failing
// holds maxFailingOf(cfg); when it is full, the oldest there is answered
// at once (more wrong secrets than that within one AuthFailDelay: with a
// secret shorter than StrongSecret, never). Called with mu held.
func (s *Server) failLocked(ss *session, now time.Time) {
	delete(s.pending, ss.id)
	if len(s.failing) >= s.maxFailing {
		var oldest *session
		for _, f := range s.failing {
			if oldest == nil || f.id < oldest.id {
				oldest = f
			}
		}
		delete(s.failing, oldest.id)
		oldest.pend.Store(uint32(pendEvicted))
		oldest.evict()
		if ok, skipped := s.evictLog.allow(now); ok {
			s.log.Warn("wrong secret answered before its delay: more wrong secrets are waiting out theirs than the server keeps",
				"addr", oldest.conn.RemoteAddr().String(), "max_failing", s.maxFailing, "also_closed_or_refused", skipped)
		}
	}
	ss.pend.Store(uint32(pendFailing))
	s.failing[ss.id] = ss
}

// maxFailingOf is how many connections cfg's server lets wait out a
// wrong secret's delay: MaxUnauthenticated, and as many as the AUTH rate
// lets be compared in one AuthFailDelay (AuthBurst, and AuthRate a second
// after it), so that with a secret shorter than StrongSecret none is
// answered sooner; 148 by default. cfg has its defaults filled in.
func maxFailingOf(cfg Config) int {
	return cfg.MaxUnauthenticated + cfg.AuthBurst + int(math.Ceil(cfg.AuthRate*cfg.AuthFailDelay.Seconds()))
}

// pause waits d, and reports false when the server shut down or the
// connection was evicted first.
func (ss *session) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ss.srv.stop:
	case <-ss.evictc:
	}
	return false
}
