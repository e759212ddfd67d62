package lockd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// guessFlood has n goroutines connect to addr, send a wrong AUTH and
// hang up at once, over and over, until the returned stop is called
// (which waits for them, and returns how many guesses were sent): the
// reviewer's flood, whose guesses arrive faster than they are answered.
func guessFlood(addr string, n int) (stop func() (sent int64)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var guesses atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d net.Dialer
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				if _, err := c.Write([]byte("AUTH wrong-guess\n")); err == nil {
					guesses.Add(1)
				}
				c.Close()
			}
		}()
	}
	return func() int64 { cancel(); wg.Wait(); return guesses.Load() }
}

// floodConfig is a server whose few places for connections waiting to
// authenticate a flood of guesses fills: a short secret, so that every
// AUTH waits its turn at the AUTH rate (a token every 10ms once the
// first is spent), and room for 8.
var floodConfig = Config{Secret: "s3cret", MaxUnauthenticated: 8, AuthRate: 100, AuthBurst: 1}

// rawAuth connects to addr, presents secret as nc would, and returns the
// answer (no retry).
func rawAuth(addr, secret string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(safety))
	if _, err := c.Write([]byte("AUTH " + secret + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestHungUpGuessersHoldNoPlace is the review's flood seen by a client
// that does not retry: while 32 goroutines connect, send a wrong secret
// and hang up at once, faster than the AUTH rate answers them, a client
// that knows the secret presents it 20 times by hand, and is let in
// every time. The places of those waiting to authenticate are all taken
// by guesses waiting their turn at the AUTH rate; their peers are gone,
// so each newcomer closes one of them (and its turn is given back)
// instead of being refused ERR busy.
func TestHungUpGuessersHoldNoPlace(t *testing.T) {
	srv, addr := startServer(t, floodConfig)
	stop := guessFlood(addr, 32)
	defer stop()
	ok := 0
	var refused []string
	for range 20 {
		line, err := rawAuth(addr, "s3cret")
		if err == nil && line == "OK AUTH\n" {
			ok++
		} else {
			refused = append(refused, strings.TrimSpace(line)+errString(err))
		}
	}
	stop()
	t.Logf("%d of 20 right secrets let in; %d connections closed or refused, %d wrong secrets", ok, srv.refused.Load(), srv.authFail.Load())
	if ok != 20 {
		t.Errorf("%d of 20 right secrets refused beside guessers that hang up: %q", 20-ok, refused)
	}
	if srv.refused.Load() < 20 {
		t.Fatalf("only %d connections closed or refused: the flood never filled the places, and the test proves nothing", srv.refused.Load())
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// TestDialRetriesBusyThroughFlood: Dial, the path of mplock client, run,
// status and member, gets in 10 times beside the same flood.
func TestDialRetriesBusyThroughFlood(t *testing.T) {
	_, addr := startServer(t, floodConfig)
	stop := guessFlood(addr, 32)
	defer stop()
	for i := range 10 {
		c, err := Dial(testCtx(t), addr, Options{Client: "legit", Secret: "s3cret"})
		if err != nil {
			t.Fatalf("dial %d beside the flood: %v", i, err)
		}
		if err := c.Ping(testCtx(t)); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		c.Close()
	}
}

// TestDialRetriesBusy: a server full of authenticated sessions answers
// ERR busy; Dial tries again, and gets in once a session ends.
func TestDialRetriesBusy(t *testing.T) {
	srv, addr := startServer(t, Config{Secret: "s3cret", MaxSessions: 1})
	first, err := Dial(testCtx(t), addr, Options{Client: "first", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   *Client
		err error
	}
	second := make(chan result, 1)
	go func() {
		c, err := Dial(testCtx(t), addr, Options{Client: "second", Secret: "s3cret"})
		second <- result{c, err}
	}()
	// Two refusals: Dial has been answered busy and tried again.
	for deadline := time.Now().Add(safety); srv.refused.Load() < 2; {
		select {
		case r := <-second:
			t.Fatalf("the second Dial, while the one session allowed is open: %v, %v; want it to wait", r.c, r.err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the second Dial was not refused twice")
		}
	}
	first.Close()
	r := <-second
	if r.err != nil {
		t.Fatalf("the second Dial once the first session ended: %v", r.err)
	}
	r.c.Close()
}

// TestDialBusyGivesUp: when the server stays full of authenticated
// sessions, Dial gives up by its ctx's deadline, saying the server was
// busy and how many tries it made; a wrong secret is not tried again.
func TestDialBusyGivesUp(t *testing.T) {
	srv, addr := startServer(t, Config{Secret: "s3cret", MaxSessions: 1})
	first, err := Dial(testCtx(t), addr, Options{Client: "first", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err = Dial(ctx, addr, Options{Client: "second", Secret: "s3cret"})
	if err == nil {
		t.Fatal("Dial to a full server succeeded")
	}
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "server busy: gave up after ") || !strings.Contains(err.Error(), "too many sessions (1)") {
		t.Fatalf("Dial to a full server: %v; want ErrBusy, the tries and the server's reason", err)
	}
	if time.Now().After(deadline.Add(safety / 4)) {
		t.Fatalf("Dial gave up long after its deadline")
	}
	if n := srv.refused.Load(); n < 3 {
		t.Fatalf("the server refused %d connections; want Dial to have tried again a few times in 700ms", n)
	}
	t.Logf("%v", err)

	// A wrong secret: one AUTH, ErrAuth, no second try.
	_, err = Dial(testCtx(t), addr, Options{Client: "wrong", Secret: "wrong"})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial with a wrong secret: %v, want ErrAuth", err)
	}
	if n := srv.authFail.Load(); n != 1 {
		t.Fatalf("%d wrong secrets reached the server; want 1 (ERR auth is not retried)", n)
	}
}

// TestWrongSecretsHoldNoPlace: a connection waiting out a wrong secret's
// delay holds none of the places of those waiting to authenticate, and
// is not answered sooner for a newcomer; maxFailingOf(cfg) of them wait
// (4 here: the 2 places, and the 2 secrets the AUTH rate would compare
// in one delay), and past that the oldest is answered (ERR auth) at once.
func TestWrongSecretsHoldNoPlace(t *testing.T) {
	srv, addr := startServer(t, Config{Secret: "a-strong-secret-0123456789abcdef", MaxUnauthenticated: 2,
		AuthTimeout: 10 * time.Minute, AuthFailDelay: 10 * time.Minute, AuthBurst: 1, AuthRate: 0.001, IdleTimeout: -1})
	if srv.maxFailing != 4 {
		t.Fatalf("maxFailing %d, want 2+1+1", srv.maxFailing)
	}
	var wrong []*rawConn
	for i := range srv.maxFailing {
		c := dialRaw(t, addr)
		c.send("AUTH wrong")
		waitFailing(t, srv, i+1)
		wrong = append(wrong, c)
	}
	// Both places are free: two AUTHs that wait for nothing, and a third.
	for range 3 {
		c := dialRaw(t, addr)
		c.send("PING")
		c.expect("OK PONG")
		c.send("AUTH a-strong-secret-0123456789abcdef")
		c.expect("OK AUTH")
	}
	for i, c := range wrong {
		expectNothing(t, fmt.Sprintf("wrong secret %d", i), c)
	}
	last := dialRaw(t, addr)
	last.send("AUTH wrong")
	wrong[0].expect("ERR auth wrong secret")
	wrong[0].expectEOF()
	waitFailing(t, srv, srv.maxFailing)
	for i, c := range append(wrong[1:], last) {
		expectNothing(t, fmt.Sprintf("wrong secret %d, after the oldest", i+1), c)
	}
}
