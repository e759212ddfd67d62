package lockd

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
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
// authFailDelay, and twenty of them make one log line that counts them.
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
			if d := time.Since(start); d < authFailDelay {
				t.Errorf("wrong secret answered after %v, before the %v delay", d, authFailDelay)
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
