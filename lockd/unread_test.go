package lockd

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// unreadPeer connects to addr and sends PINGs, chunk lines to a write,
// reading none of the answers (with a small receive buffer), until the
// server stops reading them (a write waits more than 200ms) or closes
// the connection, which it reports on stalled; the returned stop ends
// it.
func unreadPeer(t *testing.T, addr string, chunk int) (stalled <-chan struct{}, stop func()) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4096)
	st, quit := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := []byte(strings.Repeat("PING\n", chunk))
		stalledOnce := false
		for {
			select {
			case <-quit:
				return
			default:
			}
			c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			_, err := c.Write(buf)
			switch {
			case err == nil:
			case errors.Is(err, os.ErrDeadlineExceeded):
				if !stalledOnce {
					stalledOnce = true
					close(st)
				}
			default:
				if !stalledOnce {
					close(st)
				}
				<-quit
				return
			}
		}
	}()
	return st, func() { close(quit); c.Close(); <-done }
}

// TestUnreadPingsHoldNoPlace: connections that pipeline PINGs and read
// none of the answers must not keep a client that knows the secret out.
// Their reader used to wait, for up to WriteTimeout, to write answers no
// one read, with a whole line not yet answered, which made them
// unevictable: with MaxUnauthenticated of them (64 by default, one
// process's work), every client was refused ERR busy, over and over
// (mplock client --connect-timeout 5s: "gave up after 11 tries").
func TestUnreadPingsHoldNoPlace(t *testing.T) {
	_, addr := startServer(t, Config{Secret: "s3cret", MaxUnauthenticated: 2, WriteTimeout: time.Minute})
	for range 2 {
		stalled, stop := unreadPeer(t, addr, 20000)
		defer stop()
		select {
		case <-stalled:
		case <-time.After(safety):
			t.Fatal("the server went on reading the PINGs of a peer that reads no answer")
		}
	}
	var last string
	for deadline := time.Now().Add(safety); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		line, err := rawAuth(addr, "s3cret")
		if err == nil && line == "OK AUTH\n" {
			return
		}
		last = strings.TrimSpace(line) + errString(err)
	}
	t.Fatalf("a right secret beside 2 peers that read nothing, for %v: %s", safety, last)
}
