package lockd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// session is one client connection. Its reader goroutine (serve) reads
// requests and answers them in order, and writes its replies itself at the
// end of each batch of pipelined requests, or as soon as more than
// outboxSoft bytes wait: a client that does not read holds up only its own
// reader. Its writer goroutine writes what others push to the outbox
// (grants, lost leases, timeouts, shutdown) without waiting for the reader.
type session struct {
	srv   *Server
	id    SessionID
	conn  net.Conn
	out   *outbox
	raw   syscall.RawConn // for tryWrite; nil if conn has no file descriptor
	since time.Time       // when the connection was accepted

	// Only the reader goroutine touches these.
	authed     bool   // presented the secret (or none is needed)
	member     bool   // presented Config.PeerSecret: may change the membership
	registered bool   // counted in srv.open
	opened     bool   // open in the backend
	client     string // from HELLO
	pid        int

	pend    atomic.Uint32 // a pendState, until authenticated; see Server.evictLocked
	evictc  chan struct{} // closed when evicted (pendEvicted)
	dropped atomic.Bool   // ended by a replicated backend (Conn.Drop)
	hangup  atomic.Bool   // Shutdown asked the writer to hang up after the BYE
	quit    chan struct{} // closed when the reader is done: ends the writer

	wmu    sync.Mutex // one writer at a time: the reader's flushes and the writer goroutine's
	spare  []byte     // guarded by wmu
	broken bool       // a write failed; guarded by wmu
	wdl    time.Time  // the write deadline set; guarded by wmu
	hungUp bool       // guarded by wmu
}

// keepBuffer is the largest output buffer a session keeps between writes;
// a larger one (a STATUS page) goes back to the garbage collector, so an
// idle session holds little memory whatever it once asked for.
const keepBuffer = 16 << 10

func newSession(s *Server, id SessionID, c net.Conn, now time.Time) *session {
	ss := &session{srv: s, id: id, conn: c, since: now, quit: make(chan struct{}), evictc: make(chan struct{})}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			ss.raw = rc
		}
	}
	// The kernel's send buffer is bounded, and counted in the output bound.
	inKernel := boundSendBuffer(c, ss.raw, s.cfg.MaxPendingOutput)
	ss.out = newOutbox(outboxBound(s.cfg.MaxPendingOutput, inKernel), func() { go c.Close() })
	if ss.raw != nil {
		ss.out.try = ss.tryWrite
	}
	return ss
}

// tryWrite writes what the outbox holds if no one else is writing and the
// socket takes it without waiting; what it does not take is put back for
// the writer goroutine. It reports whether nothing is left to write.
func (ss *session) tryWrite() bool {
	if !ss.wmu.TryLock() {
		return false
	}
	defer ss.wmu.Unlock()
	buf := ss.out.take(ss.spare)
	if len(buf) == 0 || ss.broken {
		ss.spare = buf[:0]
		return true
	}
	n, err := writeNow(ss.raw, buf)
	if err != nil {
		ss.broken = true
		ss.out.abort() // the reader sees it, and ends the session
		return true
	}
	if n < len(buf) {
		ss.out.unshift(buf[n:])
		ss.spare = nil
		return false
	}
	if cap(buf) > keepBuffer {
		buf = nil
	}
	ss.spare = buf[:0]
	return true
}

// flush writes what the outbox holds. A write that fails or times out
// closes the connection, which ends the session's reader and releases its
// locks. Only this session's goroutines ever wait here.
func (ss *session) flush() {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	buf := ss.out.take(ss.spare)
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
	if cap(buf) > keepBuffer {
		buf = nil
	}
	ss.spare = buf[:0]
}

// writer writes the output others push, until the reader is done.
func (ss *session) writer() {
	defer ss.srv.wg.Done()
	for {
		select {
		case <-ss.out.wake:
			ss.flush()
			if ss.hangup.Load() {
				ss.hangUp()
			}
		case <-ss.quit:
			return
		}
	}
}

// requestHangUp has the writer end the sending side once it has written
// what is pending (the BYE), giving the client shutdownGrace to read it
// and close; the reader then sees EOF or the deadline and cleans up.
func (ss *session) requestHangUp() {
	ss.hangup.Store(true)
	select {
	case ss.out.wake <- struct{}{}:
	default:
	}
}

func (ss *session) hangUp() {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if ss.hungUp {
		return
	}
	ss.hungUp = true
	if tc, ok := ss.conn.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	ss.conn.SetReadDeadline(time.Now().Add(shutdownGrace))
}

// evict closes a connection that has not authenticated, to make room for
// a newer one (Server.evictLocked, with srv.mu held, having moved it to
// pendEvicted). It does not wait: it wakes the session's reader (from a
// read, or from an AUTH's wait), which says why and ends the session.
func (ss *session) evict() {
	close(ss.evictc)
	ss.conn.SetReadDeadline(aLongTimeAgo)
}

// evictedLine is what an evicted connection is told.
var evictedLine = appendErr(nil, CodeBusy, "too many connections waiting to authenticate; closing this one to make room")

// lastWords writes what is pending, then line, giving the client a
// second to take them: for a connection about to be closed, which must
// not hold its goroutine for the whole write timeout.
func (ss *session) lastWords(line []byte) {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	buf := append(ss.out.take(ss.spare), line...)
	if !ss.broken {
		ss.wdl = time.Now().Add(time.Second)
		ss.conn.SetWriteDeadline(ss.wdl)
		if _, err := ss.conn.Write(buf); err != nil {
			ss.broken = true
		}
	}
	ss.spare = buf[:0]
}

// serve is the session's reader goroutine.
func (ss *session) serve() {
	defer ss.srv.wg.Done()
	why := ""
	if ss.authed && ss.srv.rep == nil {
		why = ss.openBackend()
	}
	if why == "" {
		why = ss.loop()
	}
	ss.end(why)
}

// openBackend registers the session with the backend; it returns a reason
// to end the session when it cannot.
func (ss *session) openBackend() string {
	s := ss.srv
	if err := s.be.open(ss.id, SessionInfo{Addr: ss.conn.RemoteAddr().String(), Since: ss.since}, ss.out); err != nil {
		ss.out.push(appendErr(nil, CodeShutdown, "server shutting down"))
		ss.flush()
		return "shutdown"
	}
	ss.opened = true
	if ss.client != "" {
		s.be.hello(ss.id, ss.client, ss.pid)
	}
	s.log.Debug("session open", "session", ss.id, "addr", ss.conn.RemoteAddr().String())
	return ""
}

// end releases what the session holds and closes its connection.
func (ss *session) end(why string) {
	s := ss.srv
	if ss.opened {
		s.be.close(ss.id)
	}
	if s.rep != nil {
		s.rep.Closed(&Conn{ss})
	}
	s.mu.Lock()
	delete(s.conns, ss.id)
	delete(s.pending, ss.id)
	delete(s.failing, ss.id)
	if ss.registered {
		s.open--
	}
	closing := s.closing
	s.mu.Unlock()
	if why == "idle" && !closing {
		ss.out.push(appendBye(nil, "idle"))
		ss.flush()
	}
	close(ss.quit)
	overflowed := ss.out.close()
	ss.conn.Close()
	addr := ss.conn.RemoteAddr().String()
	switch {
	case overflowed:
		s.overflow.Add(1)
		s.log.Warn("session closed: too much output waiting for the client to read it", "session", ss.id, "client", ss.client,
			"addr", addr, "max_pending", s.cfg.MaxPendingOutput)
	case why == "idle":
		s.log.Info("session closed: idle", "session", ss.id, "client", ss.client, "idle", s.cfg.IdleTimeout)
	case why == "toolong":
		s.log.Warn("session closed: line too long", "session", ss.id, "addr", addr, "max", s.cfg.MaxLine)
	case why == "auth-timeout":
		if ok, skipped := s.authLog.allow(time.Now()); ok {
			s.log.Warn("connection closed: no AUTH in time", "addr", addr, "auth_timeout", s.cfg.AuthTimeout, "also_closed_or_refused", skipped)
		}
	}
	s.log.Debug("session closed", "session", ss.id, "client", ss.client, "why", why)
}

// loop reads and answers requests until the session ends, and says why.
func (ss *session) loop() string {
	s := ss.srv
	max := s.cfg.MaxLine
	var rd io.Reader = ss.conn
	if !ss.authed {
		rd = arrivals{ss} // tells the evictor what the connection has sent
	}
	br := bufio.NewReaderSize(rd, max+2) // room for "\r\n"
	idle := s.cfg.IdleTimeout
	var readSet time.Time // when the read deadline was last moved
	authDeadline := !ss.authed
	if authDeadline {
		ss.conn.SetReadDeadline(ss.since.Add(s.cfg.AuthTimeout))
	}
	for {
		if !ss.authed && ss.out.pending() > outboxSoft {
			// A connection that has not authenticated and does not read
			// its answers: waiting to write them would keep it, with a
			// whole line unanswered, from being closed to make room
			// (Server.evictLocked) for up to WriteTimeout.
			return "unread"
		}
		if br.Buffered() == 0 || ss.out.pending() > outboxSoft {
			// Answer a batch of pipelined requests with one write; and
			// read nothing more from a client whose replies pile up
			// until they are written.
			ss.flush()
			if ss.authed && authDeadline {
				authDeadline = false
				ss.conn.SetReadDeadline(time.Time{})
			}
			// Move the idle deadline only when an eighth of it has
			// passed since it was last moved: a busy session does not pay
			// a timer update per request, and a silent one is closed
			// after between 7/8 of the idle timeout and all of it.
			if now := time.Now(); ss.authed && idle > 0 && now.Sub(readSet) > idle/8 {
				readSet = now
				ss.conn.SetReadDeadline(now.Add(idle))
			}
		}
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(bytes.TrimRight(line, "\r\n")) > max {
			ss.out.push(appendErr(nil, CodeTooLong, fmt.Sprintf("line longer than %d bytes; closing", max)))
			ss.flush()
			return "toolong"
		}
		if err != nil {
			if len(line) > 0 && err == io.EOF {
				ss.handle(line) // a last request without its newline
				ss.flush()
			}
			switch {
			case pendState(ss.pend.Load()) == pendEvicted:
				ss.lastWords(evictedLine)
				return "evicted"
			case ss.dropped.Load():
				return "dropped"
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.mu.Lock()
				closing := s.closing
				s.mu.Unlock()
				switch {
				case closing:
					return "eof"
				case !ss.authed:
					ss.out.push(appendErr(nil, CodeAuth, fmt.Sprintf("no AUTH within %v; closing", s.cfg.AuthTimeout)))
					ss.flush()
					return "auth-timeout"
				}
				return "idle"
			}
			return "eof"
		}
		if why := ss.handle(line); why != "" {
			ss.flush()
			return why
		}
		if !ss.authed {
			ss.answered(br)
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

const helpLine = "OK HELP HELLO AUTH LOCK UNLOCK RENEW CANCEL PREEMPT RELEASE CHECK STATUS PING QUIT RESUME MEMBERS MEMBER; LOCK <name> [READ|WRITE] [ttl=D] [wait=D] [req=N]; CHECK <name> [consistency=C]; STATUS [name] [limit=N] [after=NAME] [consistency=C]; see docs/protocol.md\n"

// handle answers one request line. It returns why the session must end
// (QUIT, a failed AUTH), or "" to go on.
func (ss *session) handle(line []byte) string {
	s := ss.srv
	req, err := ParseRequest(line)
	if err != nil {
		ss.out.push(appendErr(nil, codeOf(err), errText(err)))
		return ""
	}
	// In a cluster HELLO opens a session (a log entry): after AUTH only.
	if !ss.authed && (needsAuth(req.Verb) || s.rep != nil && req.Verb == VerbHello) {
		ss.out.push(appendErr(nil, CodeAuth, "this server requires AUTH <secret> first"))
		return ""
	}
	if s.rep != nil {
		switch req.Verb {
		case VerbHelp:
			ss.out.push([]byte(helpLine))
		case VerbAuth:
			return ss.auth(req.Secret)
		case VerbDebug:
			ss.out.push(ss.debug())
		default:
			if ss.dropped.Load() {
				return "dropped"
			}
			return s.rep.Handle(&Conn{ss}, req)
		}
		return ""
	}
	switch req.Verb {
	case VerbPing:
		ss.out.push([]byte("OK PONG\n"))
	case VerbHelp:
		ss.out.push([]byte(helpLine))
	case VerbQuit:
		ss.out.push([]byte("OK BYE\n"))
		return "quit"
	case VerbAuth:
		return ss.auth(req.Secret)
	case VerbHello:
		ss.client, ss.pid = req.Name, req.PID
		if ss.opened {
			s.be.hello(ss.id, req.Name, req.PID)
		}
		kind, above := s.be.tokens()
		b := appendKU(appendOK(nil, "HELLO"), "session", uint64(ss.id))
		b = appendKD(b, "idle", max(s.cfg.IdleTimeout, 0))
		b = appendKD(b, "ttl", s.cfg.DefaultTTL)
		b = appendKU(b, "max-locks", uint64(s.cfg.MaxLocksPerSession))
		b = appendKU(b, "max-line", uint64(s.cfg.MaxLine))
		b = appendKV(b, "auth", strconv.FormatBool(s.cfg.Secret != ""))
		b = appendKV(b, "tokens", kind)
		b = appendKU(b, "tokens-above", uint64(above))
		b = appendKV(b, "server", "mplock/"+versionWord(s.cfg.Version))
		ss.out.push(append(b, '\n'))
	case VerbStatus:
		st := s.be.status(StatusQuery{Name: req.Name, After: req.After, Limit: req.Limit})
		ss.out.push(appendStatus(nil, st))
	case VerbCheck:
		// One server's table is always current: every consistency is met.
		ss.out.push(AppendCheck(nil, CheckResult{Name: req.Name, Holders: s.be.check(req.Name),
			Consistency: ConsistencyConsistent, Contact: -1}))
	case VerbResume, VerbMembers, VerbMemberAdd, VerbMemberRemove:
		ss.out.push(appendErr(nil, CodeUnknown, fmt.Sprintf("%s: this server is not a cluster member (mplock serve --initial-cluster, --join or --data-dir)", req.Verb)))
	case VerbDebug:
		ss.out.push(ss.debug())
	default:
		s.be.apply(ss.id, req)
	}
	return ""
}

// lockErrText explains a refused LOCK; for a taken try-lock it names a
// few holders (Table.LockedText), which is what a person at nc wants to
// know.
func lockErrText(t *Table, name string, err error) string {
	if !errors.Is(err, ErrLocked) {
		return clipErr(err)
	}
	return t.LockedText(name)
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
