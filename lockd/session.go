package lockd

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// session is one client connection. Its goroutine (serveConn) reads and
// answers requests in order. Lines for it are appended to its outbox under
// the server's mutex (so a grant event always follows the QUEUED reply that
// announced the wait) and written by flush, from whichever goroutine
// appended them: its own after each batch of requests, or another session's
// whose UNLOCK granted this one a lock. Writing from the releasing goroutine
// saves a goroutine hand-off on every contended release.
type session struct {
	srv    *Server
	id     SessionID
	conn   net.Conn
	client string // from HELLO, for logs; guarded by srv.mu
	authed bool   // only the session's goroutine touches it

	outMu sync.Mutex
	out   []byte

	wmu    sync.Mutex // serialises flushes
	spare  []byte     // guarded by wmu
	broken bool       // a write failed; guarded by wmu
	wdl    time.Time  // the write deadline set; guarded by wmu
}

func (ss *session) push(b []byte) {
	ss.outMu.Lock()
	ss.out = append(ss.out, b...)
	ss.outMu.Unlock()
}

// flush writes what the outbox holds. A write that fails or times out
// closes the connection, which ends the session's goroutine and releases
// its locks: a client that does not read cannot stall the server.
func (ss *session) flush() {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.outMu.Lock()
	buf := ss.out
	ss.out = ss.spare[:0]
	ss.outMu.Unlock()
	if len(buf) > 0 && !ss.broken {
		// Moving a deadline costs a timer update; move it only when
		// less than half of the write timeout is left.
		if wt := ss.srv.cfg.WriteTimeout; time.Until(ss.wdl) < wt/2 {
			ss.wdl = time.Now().Add(wt)
			ss.conn.SetWriteDeadline(ss.wdl)
		}
		if _, err := ss.conn.Write(buf); err != nil {
			ss.broken = true
			ss.conn.Close()
		}
	}
	ss.spare = buf[:0]
}

// hangUp ends the sending side and gives the client grace to read and
// close; its goroutine then sees EOF or the deadline and cleans up.
func (ss *session) hangUp(grace time.Duration) {
	if tc, ok := ss.conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	ss.conn.SetReadDeadline(time.Now().Add(grace))
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	now := time.Now()
	s.mu.Lock()
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.mu.Unlock()
		c.SetWriteDeadline(now.Add(time.Second))
		c.Write(appendErr(nil, CodeBusy, fmt.Sprintf("too many sessions (%d)", s.cfg.MaxSessions)))
		c.Close()
		s.log.Warn("session refused: too many sessions", "addr", c.RemoteAddr().String(), "max", s.cfg.MaxSessions)
		return
	}
	s.lastID++
	ss := &session{srv: s, id: s.lastID, conn: c, authed: s.cfg.Secret == ""}
	s.sessions[ss.id] = ss
	s.table.Open(ss.id, SessionInfo{Addr: c.RemoteAddr().String(), Since: now})
	s.mu.Unlock()
	s.log.Debug("session open", "session", ss.id, "addr", c.RemoteAddr().String())

	why := ss.loop()

	s.mu.Lock()
	touched := s.deliver(s.table.Close(time.Now(), ss.id), nil)
	delete(s.sessions, ss.id)
	closing := s.closing
	s.mu.Unlock()
	for _, t := range touched {
		t.flush()
	}
	if why == "idle" && !closing {
		ss.push(appendBye(nil, "idle"))
		ss.flush()
	}
	c.Close()
	s.log.Debug("session closed", "session", ss.id, "client", ss.client, "why", why)
}

// loop reads and answers requests until the session ends, and says why.
func (ss *session) loop() string {
	s := ss.srv
	max := s.cfg.MaxLine
	br := bufio.NewReaderSize(ss.conn, max+2) // room for "\r\n"
	idle := s.cfg.IdleTimeout
	var readSet time.Time // when the read deadline was last moved
	for {
		if br.Buffered() == 0 {
			// Answer a batch of pipelined requests with one write.
			ss.flush()
			// Move the idle deadline only when an eighth of it has
			// passed since it was last moved: a busy session does not pay
			// a timer update per request, and a silent one is closed
			// after between 7/8 of the idle timeout and all of it.
			if now := time.Now(); idle > 0 && now.Sub(readSet) > idle/8 {
				readSet = now
				ss.conn.SetReadDeadline(now.Add(idle))
			}
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(bytes.TrimRight(line, "\r\n")) > max {
			ss.push(appendErr(nil, CodeTooLong, fmt.Sprintf("line longer than %d bytes; closing", max)))
			ss.flush()
			s.log.Warn("session closed: line too long", "session", ss.id, "addr", ss.conn.RemoteAddr().String(), "max", max)
			return "toolong"
		}
		if err != nil {
			if len(line) > 0 && err == io.EOF {
				ss.handle(line) // a last request without its newline
				ss.flush()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.mu.Lock()
				closing := s.closing
				s.mu.Unlock()
				if !closing {
					s.log.Info("session closed: idle", "session", ss.id, "client", ss.client, "idle", s.cfg.IdleTimeout)
					return "idle"
				}
			}
			return "eof"
		}
		if !ss.handle(line) {
			ss.flush()
			return "quit"
		}
	}
}

// needsAuth reports whether a verb may run only after AUTH.
func needsAuth(v Verb) bool {
	switch v {
	case VerbHello, VerbAuth, VerbPing, VerbQuit, VerbHelp:
		return false
	}
	return true
}

const helpLine = "OK HELP HELLO AUTH LOCK UNLOCK RENEW CANCEL STATUS PING QUIT; LOCK <name> [READ|WRITE] [ttl=D] [wait=D]; see docs/protocol.md\n"

// handle answers one request line. It returns false when the session must
// end (QUIT, failed AUTH).
func (ss *session) handle(line []byte) bool {
	s := ss.srv
	req, err := ParseRequest(line)
	if err != nil {
		ss.push(appendErr(nil, codeOf(err), errText(err)))
		return true
	}
	if !ss.authed && needsAuth(req.Verb) {
		ss.push(appendErr(nil, CodeAuth, "this server requires AUTH <secret> first"))
		return true
	}
	switch req.Verb {
	case VerbPing:
		ss.push([]byte("OK PONG\n"))
	case VerbHelp:
		ss.push([]byte(helpLine))
	case VerbQuit:
		ss.push([]byte("OK BYE\n"))
		return false
	case VerbAuth:
		if s.cfg.Secret != "" && subtle.ConstantTimeCompare([]byte(req.Secret), []byte(s.cfg.Secret)) != 1 {
			ss.push(appendErr(nil, CodeAuth, "wrong secret; closing"))
			s.log.Warn("session closed: wrong secret", "session", ss.id, "addr", ss.conn.RemoteAddr().String())
			return false
		}
		ss.authed = true
		ss.push([]byte("OK AUTH\n"))
	case VerbHello:
		s.mu.Lock()
		s.table.Hello(ss.id, req.Name, req.PID)
		ss.client = req.Name
		s.mu.Unlock()
		b := appendKU(appendOK(nil, "HELLO"), "session", uint64(ss.id))
		b = appendKD(b, "idle", max(s.cfg.IdleTimeout, 0))
		b = appendKD(b, "ttl", s.cfg.DefaultTTL)
		b = appendKU(b, "max-locks", uint64(s.cfg.MaxLocksPerSession))
		b = appendKU(b, "max-line", uint64(s.cfg.MaxLine))
		b = appendKV(b, "auth", strconv.FormatBool(s.cfg.Secret != ""))
		b = appendKV(b, "server", "mplock/"+versionWord(s.cfg.Version))
		ss.push(append(b, '\n'))
	case VerbStatus:
		s.mu.Lock()
		st := s.table.Status(time.Now(), req.Name)
		s.mu.Unlock()
		ss.push(appendStatus(nil, st))
	case VerbLock, VerbUnlock, VerbRenew, VerbCancel:
		ss.change(req)
	}
	return true
}

// change runs a request that changes the table, and writes the events it
// causes to the sessions they concern.
func (ss *session) change(req Request) {
	s := ss.srv
	var touched []*session
	now := time.Now()
	s.mu.Lock()
	switch {
	case s.closing:
		ss.push(appendErr(nil, CodeShutdown, "server shutting down"))
	case req.Verb == VerbLock:
		r := LockRequest{Name: req.Name, Mode: req.Mode, TTL: s.cfg.DefaultTTL, Wait: -1}
		if req.HasTTL {
			r.TTL = req.TTL
		}
		if req.HasWait {
			r.Wait = req.Wait
		}
		res, err := s.table.Lock(now, ss.id, r)
		switch {
		case err != nil:
			ss.push(appendErr(nil, codeOf(err), lockErrText(s.table, now, req.Name, err)))
		case res.Granted:
			s.scratch = appendLocked(s.scratch[:0], res.Grant)
			ss.push(s.scratch)
			if s.wait != nil {
				s.wait.Observe(0)
			}
		default:
			if r.Mode == 0 {
				r.Mode = Exclusive
			}
			s.scratch = appendQueued(s.scratch[:0], req.Name, r.Mode, res.Position)
			ss.push(s.scratch)
		}
		s.rearm()
	case req.Verb == VerbUnlock:
		g, _ := s.table.Holding(ss.id, req.Name)
		evs, err := s.table.Unlock(now, ss.id, req.Name, req.Token)
		if err != nil {
			ss.push(appendErr(nil, codeOf(err), clipErr(err)))
			break
		}
		s.scratch = append(appendKU(append(append(appendOK(s.scratch[:0], "UNLOCKED"), ' '), req.Name...), "token", uint64(g.Token)), '\n')
		ss.push(s.scratch)
		touched = s.deliver(evs, touched)
	case req.Verb == VerbRenew:
		ttl := time.Duration(0)
		if req.HasTTL {
			ttl = req.TTL
		}
		g, evs, err := s.table.Renew(now, ss.id, req.Name, req.Token, ttl)
		// A renewal that came too late applied the expiry: the holder's
		// LOST comes before the ERR, as if the timer had run first, and
		// the next holder's grant (and lease) take effect.
		touched = s.deliver(evs, touched)
		s.rearm()
		if err != nil {
			ss.push(appendErr(nil, codeOf(err), clipErr(err)))
			break
		}
		ss.push(append(appendGrant(appendOK(nil, "RENEWED"), g), '\n'))
	case req.Verb == VerbCancel:
		evs, err := s.table.Cancel(now, ss.id, req.Name)
		if err != nil {
			ss.push(appendErr(nil, codeOf(err), clipErr(err)))
			break
		}
		ss.push(append(append(append(appendOK(nil, "CANCELLED"), ' '), req.Name...), '\n'))
		touched = s.deliver(evs, touched)
	}
	s.mu.Unlock()
	for _, t := range touched {
		if t != ss {
			t.flush()
		}
	}
}

// lockErrText explains a refused LOCK; for a taken try-lock it names the
// holders, which is what a person at nc wants to know.
func lockErrText(t *Table, now time.Time, name string, err error) string {
	if !errors.Is(err, ErrLocked) {
		return clipErr(err)
	}
	st := t.Status(now, name)
	text := name + " is locked"
	if len(st.Locks) == 1 {
		for i, h := range st.Locks[0].Holders {
			sep := " by"
			if i > 0 {
				sep = ","
			}
			text += fmt.Sprintf("%s session %d (%s) %s", sep, h.Session, clientOrDash(h.Client), h.Mode)
		}
		if n := len(st.Locks[0].Waiters); n > 0 {
			text += fmt.Sprintf(", %d waiting", n)
		}
	}
	return text
}

// errText is the message of an ERR reply: the error without its package
// prefix or, for a parse error, without its code (the reply has it).
func errText(err error) string {
	var se *syntaxErr
	if errors.As(err, &se) {
		return se.msg
	}
	return clipErr(err)
}

// versionWord makes a version safe as one protocol word.
func versionWord(v string) string {
	if v == "" {
		return "dev"
	}
	b := []byte(v)
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == '=' {
			b[i] = '_'
		}
	}
	return string(b)
}
