package lockd

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestClientSurvivesTinyServerTTL: the lease's TTL comes from the server's
// reply, and a server (misconfigured, or hostile) may grant ttl=2ns, which
// a third of is zero. The client must hold the lease, renew it at a sane
// pace, and release it, rather than panic in its renewal goroutine and take
// the whole program down.
func TestClientSurvivesTinyServerTTL(t *testing.T) {
	ln, addr := listen(t)
	renewed := make(chan struct{})
	served := make(chan error, 1)
	go func() { served <- serveTinyTTL(ln, renewed) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-served; err != nil {
			t.Errorf("fake server: %v", err)
		}
	})

	c := dial(t, addr, "tiny")
	l, err := c.Lock(testCtx(t), "job", Exclusive, WithTTL(0))
	if err != nil {
		t.Fatal(err)
	}
	if l.TTL != 2 {
		t.Fatalf("lease TTL %v, want the server's 2ns", l.TTL)
	}
	// A RENEW has reached the server: the renewal goroutine got past
	// starting its ticker.
	select {
	case <-renewed:
	case <-testCtx(t).Done():
		t.Fatal("no RENEW reached the server")
	}
	if err := l.Unlock(testCtx(t)); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNewServerRefusesTinyTTL: a server must not grant leases that no
// client can renew in time; ValidTTL is the rule ttl= follows too.
func TestNewServerRefusesTinyTTL(t *testing.T) {
	for _, ttl := range []time.Duration{2, MinTTL - 1, -time.Second, MaxDuration + 1} {
		if srv, err := NewServer(Config{DefaultTTL: ttl}); err == nil {
			srv.Shutdown(context.Background())
			t.Errorf("NewServer with DefaultTTL %v: no error", ttl)
		}
	}
}

// serveTinyTTL is a one-session server that grants every lock with
// ttl=2ns. It closes renewed at the first RENEW.
func serveTinyTTL(ln net.Listener, renewed chan struct{}) error {
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil // the client hung up
		}
		req, err := ParseRequest([]byte(line))
		if err != nil {
			return fmt.Errorf("client sent %q: %v", line, err)
		}
		var reply string
		switch req.Verb {
		case VerbHello:
			reply = "OK HELLO session=1 idle=0s ttl=2ns max-locks=256 max-line=1024 auth=false server=mplock/hostile"
		case VerbLock:
			reply = "OK LOCKED " + req.Name + " WRITE token=1 ttl=2ns"
		case VerbRenew:
			if renewed != nil {
				close(renewed)
				renewed = nil
			}
			reply = "OK RENEWED " + req.Name + " WRITE token=1 ttl=2ns"
		case VerbUnlock:
			reply = "OK UNLOCKED " + req.Name + " token=1"
		case VerbPing:
			reply = "OK PONG"
		default:
			return fmt.Errorf("unexpected request %q", line)
		}
		if _, err := conn.Write([]byte(reply + "\n")); err != nil {
			return nil
		}
	}
}
