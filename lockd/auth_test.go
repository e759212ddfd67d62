package lockd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mplock/internal/proctest"
)

// TestUnauthenticatedCannotKeepOthersOut is issue 10's fourth fault: 50
// connections that never authenticate (but PING, so they are not idle) must
// not keep a client that knows the secret out of a server with room for
// 20 sessions.
func TestUnauthenticatedCannotKeepOthersOut(t *testing.T) {
	_, addr := startServer(t, Config{Secret: "s3cret", MaxSessions: 20})
	for range 50 {
		c := dialRaw(t, addr)
		c.send("PING")
		c.expect("OK PONG")
		c.send("STATUS")
		c.expect("ERR auth ")
	}
	cl, err := Dial(testCtx(t), addr, Options{Client: "legit", Secret: "s3cret"})
	if err != nil {
		t.Fatalf("a client with the secret, beside 50 unauthenticated connections: %v", err)
	}
	defer cl.Close()
	if _, err := cl.Lock(testCtx(t), "x", Exclusive); err != nil {
		t.Fatal(err)
	}
	st, err := cl.Status(testCtx(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sessions) != 1 {
		t.Fatalf("status lists %d sessions, want only the authenticated one: %+v", len(st.Sessions), st.Sessions)
	}
}

// TestUnauthenticatedBounded: an unauthenticated connection is closed after
// the auth timeout however busy it keeps itself, and when more than
// MaxUnauthenticated wait, the oldest make room; authenticated sessions
// are not touched by either.
func TestUnauthenticatedBounded(t *testing.T) {
	_, addr := startServer(t, Config{Secret: "s3cret", MaxUnauthenticated: 10, AuthTimeout: 300 * time.Millisecond})
	authed := dialRaw(t, addr)
	authed.send("AUTH s3cret")
	authed.expect("OK AUTH")

	pinger := dialRaw(t, addr)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := pinger.c.Write([]byte("PING\n")); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	pinger.c.SetReadDeadline(time.Now().Add(safety))
	for {
		line, err := pinger.br.ReadString('\n')
		if err != nil {
			t.Fatalf("the pinging unauthenticated connection: %v before the auth timeout's ERR", err)
		}
		if strings.HasPrefix(line, "ERR auth no AUTH within 300ms") {
			break
		}
		if line != "OK PONG\n" {
			t.Fatalf("got %q", line)
		}
	}
	pinger.expectEOF()
	<-done

	// 25 connections with room for 10: the first 15 are closed, in order.
	// (This server gives them all the time they need to authenticate.)
	_, addr = startServer(t, Config{Secret: "s3cret", MaxUnauthenticated: 10, AuthTimeout: safety})
	authed = dialRaw(t, addr)
	authed.send("AUTH s3cret")
	authed.expect("OK AUTH")
	var conns []*rawConn
	for range 25 {
		c := dialRaw(t, addr)
		c.send("PING")
		c.expect("OK PONG")
		conns = append(conns, c)
	}
	for i, c := range conns[:15] {
		c.c.SetReadDeadline(time.Now().Add(safety))
		line, _ := c.br.ReadString('\n')
		if !strings.HasPrefix(line, "ERR busy too many connections waiting to authenticate") {
			t.Fatalf("connection %d of 25 (room for 10) got %q, want it closed to make room", i, line)
		}
		c.expectEOF()
	}
	for _, c := range conns[15:] {
		c.send("AUTH s3cret")
		c.expect("OK AUTH")
	}
	authed.send("PING")
	authed.expect("OK PONG")
}

// TestWrongSecretDelayedAndLogsRateLimited: a wrong AUTH is answered after
// DefaultAuthFailDelay, and twenty of them make one log line that counts them.
func TestWrongSecretDelayedAndLogsRateLimited(t *testing.T) {
	var logs syncBuffer
	_, addr := startServer(t, Config{Secret: "s3cret", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		c := dialRaw(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.c.Write([]byte("AUTH guess\n"))
			c.c.SetReadDeadline(time.Now().Add(safety))
			line, err := c.br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "ERR auth wrong secret") {
				t.Errorf("wrong secret: got %q, %v", line, err)
			}
			if d := time.Since(start); d < DefaultAuthFailDelay {
				t.Errorf("wrong secret answered after %v, before the %v delay", d, DefaultAuthFailDelay)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(logs.String(), "wrong secret"); n < 1 || n > 2 {
		t.Fatalf("20 wrong secrets within a second logged %d lines, want 1 or 2:\n%s", n, logs.String())
	}
	if _, err := Dial(testCtx(t), addr, Options{Secret: "s3cret"}); err != nil {
		t.Fatalf("the right secret after the wrong ones: %v", err)
	}
	if _, err := Dial(testCtx(t), addr, Options{Secret: "nope"}); !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial with a wrong secret: %v, want ErrAuth", err)
	}
}

// flood is the helper process of TestFloodKeepsNoClientOut: for
// LOCKD_FLOOD_FOR it opens connections to addr as fast as two goroutines
// can and sends nothing on them, keeping the latest 100 of each open (the
// attack report's connflood). It says FLOODING after its first
// connection and FLOODED N at the end.
func flood(addr string) int {
	d, err := time.ParseDuration(os.Getenv("LOCKD_FLOOD_FOR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	end := time.Now().Add(d)
	var n atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []net.Conn
			for time.Now().Before(end) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				n.Add(1)
				once.Do(func() { fmt.Println("FLOODING") })
				if held = append(held, c); len(held) > 100 {
					held[0].Close()
					held = held[1:]
				}
			}
			for _, c := range held {
				c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Println("FLOODED", n.Load())
	return 0
}

// TestFloodKeepsNoClientOut is the attack report's H3 (issue 10's
// promise that unauthenticated connections do not keep an authenticated
// client out): while another process opens silent connections as fast as
// it can for a few seconds, each one closing an older one to make room,
// four clients that know the secret connect, AUTH, LOCK and hang up over
// and over, and every one of them gets its lock: a connection that has
// sent its AUTH is never closed for a silent one (by age alone, 21% to
// 39% of them were), nor told OK AUTH and then ERR busy.
func TestFloodKeepsNoClientOut(t *testing.T) {
	srv, addr := startServer(t, Config{Secret: "s3cret"})
	h := startHelper(t, "flood", "LOCKD_ADDR="+addr, "LOCKD_FLOOD_FOR=3s")
	h.Expect(t, "FLOODING")
	done := make(chan string, 1)
	go func() { done <- h.Line(t) }()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var reasons []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("legit-%d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := func() error {
					ctx, cancel := context.WithTimeout(context.Background(), safety)
					defer cancel()
					c, err := Dial(ctx, addr, Options{Client: name, Secret: "s3cret"})
					if err != nil {
						return err
					}
					defer c.Close()
					l, err := c.Lock(ctx, name, Exclusive)
					if err != nil {
						return err
					}
					return l.Unlock(ctx)
				}()
				if err != nil {
					failed.Add(1)
					mu.Lock()
					reasons = append(reasons, err.Error())
					mu.Unlock()
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	var flooded string
	select {
	case flooded = <-done:
	case <-time.After(safety):
		t.Error("the flood did not end")
	}
	close(stop)
	wg.Wait()
	t.Logf("%s connections; %d evicted or refused; legitimate clients: %d locked, %d failed", strings.TrimPrefix(flooded, "FLOODED "),
		srv.refused.Load(), ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d of %d legitimate clients failed beside the flood; first: %q", failed.Load(), failed.Load()+ok.Load(), reasons[0])
	}
	if ok.Load() < 10 || srv.refused.Load() < 1000 {
		t.Fatalf("%d clients locked, %d connections evicted: too few for the test to prove anything", ok.Load(), srv.refused.Load())
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// plainListener hides a *net.TCPListener behind the net.Listener
// interface.
type plainListener struct{ net.Listener }

// pendStates returns the states of the connections waiting to
// authenticate, by session id.
func pendStates(srv *Server) map[SessionID]pendState {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	m := map[SessionID]pendState{}
	for id, ss := range srv.pending {
		m[id] = pendState(ss.pend.Load())
	}
	return m
}

// waitPending waits until the server has n connections waiting to
// authenticate, the newest in state want, and returns its id.
func waitPending(t *testing.T, srv *Server, n int, want pendState) SessionID {
	t.Helper()
	var newest SessionID
	proctest.Eventually(t, fmt.Sprintf("%d connections waiting to authenticate, the newest %v", n, want), func() bool {
		m := pendStates(srv)
		newest = 0
		for id := range m {
			newest = max(newest, id)
		}
		return len(m) == n && m[newest] == want
	})
	return newest
}

// waitFailing waits until the server has n connections waiting out a
// wrong secret's delay (Server.failing), holding no place.
func waitFailing(t *testing.T, srv *Server, n int) {
	t.Helper()
	proctest.Eventually(t, fmt.Sprintf("%d connections waiting out a wrong secret's delay", n), func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, ss := range srv.failing {
			if pendState(ss.pend.Load()) != pendFailing {
				return false
			}
		}
		return len(srv.failing) == n
	})
}

// expectEvicted fails unless c is told it was closed to make room, and
// closed.
func expectEvicted(t *testing.T, what string, c *rawConn) {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(safety))
	line, _ := c.br.ReadString('\n')
	if !strings.HasPrefix(line, "ERR busy too many connections waiting to authenticate") {
		t.Fatalf("%s: got %q, want it closed to make room", what, line)
	}
	c.expectEOF()
}

// expectNothing fails unless nothing comes from c for a moment: it is
// still waiting for its answer.
func expectNothing(t *testing.T, what string, c *rawConn) {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if line, err := c.br.ReadString('\n'); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: got %q, %v; want it still waiting", what, line, err)
	}
}

// TestEvictionOrder: with room for four connections waiting to
// authenticate, each new one closes first one whose peer has hung up
// before its secret was compared (here an AUTH waiting its turn at the
// AUTH rate limit, from a client that half-closed, as nc -N does), then
// one that has sent nothing, then the oldest that has sent something
// other than AUTH; never one whose AUTH is being answered to a peer still
// there. A wrong secret waiting out its delay holds no place, and is not
// answered sooner for a newcomer. When all four places are AUTHs being
// answered, the newcomer is refused instead.
func TestEvictionOrder(t *testing.T) {
	// A listener the server cannot set TCP_DEFER_ACCEPT on: a connection
	// that sends nothing reaches it at once, as a flood of them can (past
	// the kernel's queue of deferred connections, or on other systems).
	ln, _ := listen(t)
	srv, addr := startServerOn(t, plainListener{ln}, Config{Secret: "s3cret", MaxUnauthenticated: 4, IdleTimeout: -1,
		AuthTimeout: 10 * time.Minute, AuthFailDelay: 10 * time.Minute, AuthRate: 0.01, AuthBurst: 1})
	wrong := dialRaw(t, addr)
	wrong.send("AUTH wrong") // takes the only token: every AUTH after it waits 100s per turn
	waitFailing(t, srv, 1)
	pinger := dialRaw(t, addr)
	pinger.send("PING")
	pinger.expect("OK PONG")
	waitPending(t, srv, 1, pendTalking)
	silent := dialRaw(t, addr)
	waitPending(t, srv, 2, pendSilent)
	hungUp := dialRaw(t, addr)
	hungUp.send("AUTH s3cret")
	waitPending(t, srv, 3, pendAuth)
	if err := hungUp.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	proctest.Eventually(t, "the server's side of the half-closed connection sees its FIN", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, ss := range srv.pending {
			if _, hungUp := peerDid(ss.raw, false); pendState(ss.pend.Load()) == pendAuth && hungUp {
				return true
			}
		}
		return false
	})
	partial := dialRaw(t, addr)
	if _, err := partial.c.Write([]byte("AUTH s3")); err != nil {
		t.Fatal(err)
	}
	waitPending(t, srv, 4, pendTalking)

	var authing []*rawConn
	arrive := func() *rawConn {
		c := dialRaw(t, addr)
		c.send("AUTH s3cret")
		waitPending(t, srv, 4, pendAuth)
		authing = append(authing, c)
		return c
	}
	arrive()
	expectEvicted(t, "the AUTH of a peer that hung up, before the others", hungUp)
	arrive()
	expectEvicted(t, "the silent connection, before those that talk", silent)
	arrive()
	expectEvicted(t, "the older of the two that sent no AUTH", pinger)
	arrive()
	expectEvicted(t, "the partial AUTH line", partial)

	late := dialRaw(t, addr)
	late.c.SetReadDeadline(time.Now().Add(safety))
	if line, _ := late.br.ReadString('\n'); !strings.HasPrefix(line, "ERR busy too many connections authenticating (4)") {
		t.Fatalf("a fifth connection while four present their AUTH: %q, want it refused", line)
	}
	late.expectEOF()
	for i, c := range authing {
		c.send("PING") // read only after the AUTH is answered: nothing comes back
		expectNothing(t, fmt.Sprintf("connection %d presenting its AUTH", i), c)
	}
	expectNothing(t, "the wrong secret, waiting out its delay", wrong)
	if m := pendStates(srv); len(m) != 4 {
		t.Fatalf("the connections presenting their AUTH: %v", m)
	}
	waitFailing(t, srv, 1)
}

// TestAuthRateBoundsGuesses is the attack report's M3: connections that
// send a wrong secret and hang up at once (so that the per-connection
// delay costs them nothing) get at most AuthBurst secrets compared at
// once and AuthRate a second after that, all together (21,539 were in
// 5s); and once they stop, a client with the secret gets in.
func TestAuthRateBoundsGuesses(t *testing.T) {
	const rate, burst = 20, 64
	srv, addr := startServer(t, Config{Secret: "s3cret", AuthRate: rate, AuthBurst: burst, AuthTimeout: 2 * time.Second,
		AuthFailDelay: 10 * time.Millisecond})
	start := time.Now()
	stop := guessFlood(addr, 8)
	time.Sleep(2 * time.Second) // how long the flood lasts; nothing waits on it
	sent := stop()
	// Every guess still waiting for its turn gives up by its connection's
	// AuthTimeout; then count.
	proctest.Eventually(t, "the guesses to be answered or given up", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.pending) == 0
	})
	elapsed := time.Since(start)
	checked := int64(srv.authFail.Load())
	bound := burst + int64(rate*elapsed.Seconds()) + 1
	t.Logf("%d guesses sent in 2s, %d compared in %v (bound %d)", sent, checked, elapsed.Round(time.Millisecond), bound)
	if checked > bound {
		t.Fatalf("%d wrong secrets compared in %v: over %d at once plus %d a second", checked, elapsed, burst, rate)
	}
	if sent < 4*bound {
		t.Fatalf("only %d guesses sent: too few for the test to prove anything", sent)
	}
	var cl *Client
	proctest.Eventually(t, "a client with the secret to get in", func() bool {
		var err error
		cl, err = Dial(testCtx(t), addr, Options{Secret: "s3cret"})
		return err == nil
	})
	cl.Close()
}

// TestStrongSecretSkipsTheAuthRate is a review's N2 (first half): with
// the global bound on AUTH attempts, a client that knew the secret waited
// its turn behind every guess (3.2s at the median under 200 guessing
// connections, or ERR busy). A strong secret (StrongSecret bytes or more)
// is compared at once, whatever the guesses have spent; a short one still
// waits its turn (TestAuthRateBoundsGuesses).
func TestStrongSecretSkipsTheAuthRate(t *testing.T) {
	for _, tc := range []struct {
		secret, peer string
		waits        bool
	}{
		{"a-strong-secret-0123456789abcdef", "", false},
		{"s3cret", "", true},
		// A short members' secret is guessed at the same door.
		{"a-strong-secret-0123456789abcdef", "peer", true},
	} {
		// One token, given back once in 100s: the guess takes it.
		srv, addr := startServer(t, Config{Secret: tc.secret, PeerSecret: tc.peer, AuthRate: 0.01, AuthBurst: 1,
			AuthTimeout: 10 * time.Second, AuthFailDelay: time.Minute})
		guess := dialRaw(t, addr)
		guess.send("AUTH guess-guess-guess-guess-guess")
		waitFailing(t, srv, 1)
		ok := dialRaw(t, addr)
		ok.send("AUTH " + tc.secret)
		ok.c.SetReadDeadline(time.Now().Add(safety))
		line, err := ok.br.ReadString('\n')
		if tc.waits {
			// Its turn comes after its AuthTimeout: refused at once.
			if err != nil || !strings.HasPrefix(line, "ERR busy too many AUTH attempts") {
				t.Errorf("secret %q (short) after a guess: %q, %v; want ERR busy (the AUTH rate)", tc.secret, line, err)
			}
			continue
		}
		if err != nil || line != "OK AUTH\n" {
			t.Errorf("secret %q (strong) after a guess: %q, %v; want OK AUTH at once", tc.secret, line, err)
		}
	}
}
