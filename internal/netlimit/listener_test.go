package netlimit

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestListenerBounds: with room for 2, a third connection is accepted only
// once one of the first two is closed (twice: its place is given back
// once), and Close ends a waiting Accept.
func TestListenerBounds(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listener(inner, 2)
	accepted := make(chan net.Conn, 10)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	for range 4 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("a third connection (%v) was accepted while two were open", c.RemoteAddr())
	case <-time.After(100 * time.Millisecond):
	}
	first.Close()
	first.Close()
	third := <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("a fourth connection (%v) was accepted: a double Close gave back two places", c.RemoteAddr())
	case <-time.After(100 * time.Millisecond):
	}
	l.Close()
	if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	second.Close()
	third.Close()
}
