package lockd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config's zero fields.
const (
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxSessions  = 4096
	// shutdownGrace is how long Shutdown lets clients read their last
	// lines and hang up before it closes their connections itself.
	shutdownGrace = 2 * time.Second
)

// Config configures a Server. The zero value serves with the defaults: no
// lease, no secret, no metrics, no logs.
type Config struct {
	// DefaultTTL is the lease given to a LOCK that names no ttl=; zero
	// means no lease. Like ttl=, it must pass ValidTTL.
	DefaultTTL time.Duration
	// IdleTimeout closes a session that sends nothing for this long (its
	// locks are released), so that a vanished peer does not hold locks for
	// ever. Zero means DefaultIdleTimeout, negative means never. The Go
	// client pings well within it.
	IdleTimeout time.Duration
	// WriteTimeout closes a session that does not read what it is sent.
	WriteTimeout time.Duration
	// MaxLine is the longest request line (DefaultMaxLine when zero).
	MaxLine int
	// MaxLocksPerSession bounds held plus queued locks of one session.
	MaxLocksPerSession int
	// MaxSessions bounds concurrent connections; more are refused with
	// ERR busy.
	MaxSessions int
	// Secret, when set, must be presented with AUTH before any request
	// that reads or changes locks.
	Secret string
	// Version is reported in HELLO replies.
	Version string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the server's Prometheus metrics.
	Registerer prometheus.Registerer
}

// Server serves the lock table over the line protocol. Its methods are safe
// for concurrent use. Every session runs in its own goroutine; all of them
// share one mutex around the table, held for microseconds per request and
// never across I/O.
type Server struct {
	cfg  Config
	log  *slog.Logger
	wait prometheus.Histogram // nil without metrics

	mu        sync.Mutex // guards everything below, and appends to any session's outbox
	table     *Table
	sessions  map[SessionID]*session
	lastID    SessionID
	listeners map[net.Listener]struct{}
	closing   bool
	armed     time.Time // when the timer goroutine will next call Advance
	scratch   []byte    // for formatting lines under mu before push copies them

	wake chan struct{} // tells the timer goroutine a deadline came earlier
	stop chan struct{} // closed by Shutdown
	wg   sync.WaitGroup
}

// NewServer returns a server that is not listening yet; call Serve, and
// Shutdown to stop it (which also ends its timer goroutine).
func NewServer(cfg Config) (*Server, error) {
	if err := ValidTTL(cfg.DefaultTTL); err != nil {
		return nil, fmt.Errorf("lockd: DefaultTTL: %s", clipErr(err))
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxLine <= 0 || cfg.MaxLine > DefaultMaxLine {
		cfg.MaxLine = DefaultMaxLine
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxLocksPerSession <= 0 {
		cfg.MaxLocksPerSession = DefaultMaxLocksPerSession
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		table:     NewTable(TableLimits{MaxLocksPerSession: cfg.MaxLocksPerSession}),
		sessions:  make(map[SessionID]*session),
		listeners: make(map[net.Listener]struct{}),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	if cfg.Registerer != nil {
		if err := s.registerMetrics(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	s.wg.Add(1)
	go s.timers()
	return s, nil
}

// Serve accepts connections on ln until Shutdown, and then returns
// ErrServerClosed. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer ln.Close()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			delete(s.listeners, ln)
			if !closing {
				s.listeners[ln] = struct{}{}
			}
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: wait and go on, as
			// net/http does, rather than give up serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.stop:
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Write(appendErr(nil, CodeShutdown, "server shutting down"))
			c.Close()
			continue
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// Shutdown stops the server: listeners close, every holder is told its lock
// is lost and every waiter that its wait is cancelled (reason shutdown),
// every session is sent "* BYE reason=shutdown" and closed. It returns when
// every session's goroutine has ended, or with ctx's error when ctx ends
// first (the connections are then closed at once and Shutdown still waits
// for their goroutines, which end promptly).
func (s *Server) Shutdown(ctx context.Context) error {
	now := time.Now()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	touched := s.deliver(s.table.Drain(now), nil)
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		ss.push(appendBye(nil, "shutdown"))
		all = append(all, ss)
	}
	s.mu.Unlock()
	_ = touched // every session is flushed below
	close(s.stop)
	s.log.Info("shutting down", "sessions", len(all))
	for _, ss := range all {
		ss.flush()
		ss.hangUp(shutdownGrace)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, ss := range all {
			ss.conn.Close()
		}
		<-done
		return ctx.Err()
	}
}

// Stats returns the table's running totals.
func (s *Server) Stats() TableStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.Stats()
}

// Status returns a snapshot of the table, as STATUS does.
func (s *Server) Status(name string) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.Status(time.Now(), name)
}

// deliver appends each event to its session's outbox and returns the
// sessions touched (added to touched). Called with s.mu held, so events
// reach each session in the order the table produced them, after the reply
// that queued them.
func (s *Server) deliver(evs []Event, touched []*session) []*session {
	for _, ev := range evs {
		ss, ok := s.sessions[ev.Session]
		if !ok {
			continue
		}
		s.scratch = appendEvent(s.scratch[:0], ev)
		ss.push(s.scratch)
		if ev.Kind == EventGranted && s.wait != nil {
			s.wait.Observe(ev.Waited.Seconds())
		}
		if ev.Kind == EventLost || ev.Kind == EventTimedOut {
			s.log.Info("lock event", "event", ev.Kind.String(), "name", ev.Name, "session", ev.Session,
				"client", ss.client, "token", ev.Token, "reason", ev.Reason)
		}
		seen := false
		for _, t := range touched {
			if t == ss {
				seen = true
				break
			}
		}
		if !seen {
			touched = append(touched, ss)
		}
	}
	return touched
}

// rearm wakes the timer goroutine if the table's next deadline is earlier
// than the one it sleeps until. Called with s.mu held.
func (s *Server) rearm() {
	next, ok := s.table.NextDeadline()
	if ok && (s.armed.IsZero() || next.Before(s.armed)) {
		s.armed = next
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// timers applies lease expiries and wait timeouts when they fall due.
func (s *Server) timers() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-t.C:
		}
		now := time.Now()
		s.mu.Lock()
		touched := s.deliver(s.table.Advance(now), nil)
		next, ok := s.table.NextDeadline()
		if !ok {
			next = now.Add(time.Hour)
		}
		s.armed = next
		s.mu.Unlock()
		for _, ss := range touched {
			ss.flush()
		}
		t.Reset(time.Until(next))
	}
}
