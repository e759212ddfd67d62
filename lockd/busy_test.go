package lockd

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// guessFlood has n goroutines connect to addr, send a wrong AUTH and
// hang up at once, over and over, until the returned stop is called
// (which waits for them): the reviewer's flood, whose guesses arrive
// faster than they are answered.
func guessFlood(addr string, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
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
				c.Write([]byte("AUTH wrong-guess\n"))
				c.Close()
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
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

// TestWrongSecretsHoldNoPlace: a connection waiting out a wrong secret's
// delay holds none of the places of those waiting to authenticate, and
// is not answered sooner for a newcomer; as many wait as there are
// places, and past that the oldest is answered (ERR auth) at once.
func TestWrongSecretsHoldNoPlace(t *testing.T) {
	srv, addr := startServer(t, Config{Secret: "a-strong-secret-0123456789abcdef", MaxUnauthenticated: 2,
		AuthTimeout: 10 * time.Minute, AuthFailDelay: 10 * time.Minute, IdleTimeout: -1})
	var wrong []*rawConn
	for i := range 2 {
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
		expectNothing(t, "wrong secret "+string(rune('0'+i)), c)
	}
	third := dialRaw(t, addr)
	third.send("AUTH wrong")
	wrong[0].expect("ERR auth wrong secret")
	wrong[0].expectEOF()
	waitFailing(t, srv, 2)
	expectNothing(t, "the second wrong secret", wrong[1])
	expectNothing(t, "the third wrong secret", third)
}
