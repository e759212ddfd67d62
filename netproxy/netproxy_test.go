package netproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer accepts connections and echoes every line back.
func echoServer(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Listen(context.Background(), "127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the proxy's goroutines still run 10s after Close")
		}
	})
	return p
}

// roundTrip sends a line through c and reads it back, with a deadline.
func roundTrip(c net.Conn, r *bufio.Reader, line string, within time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(within))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	if len(got) > 0 {
		got = got[:len(got)-1]
	}
	return got, err
}

// TestCutSilencesAndHealRestores: a cut link forwards nothing and closes
// nothing (a read runs into its own deadline: no EOF, no RST); after Heal
// the connection that lived through the cut is closed, and a new one
// works.
func TestCutSilencesAndHealRestores(t *testing.T) {
	p := startProxy(t, echoServer(t).Addr().String())
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "before", 5*time.Second); err != nil || got != "before" {
		t.Fatalf("before the cut: %q, %v", got, err)
	}

	p.Cut()
	if !p.IsCut() {
		t.Fatal("IsCut false after Cut")
	}
	got, err := roundTrip(c, r, "during", 300*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("during the cut: read %q, %v; want nothing until the deadline", got, err)
	}
	// A connection made during the cut is accepted and stays silent.
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	r2 := bufio.NewReader(c2)
	if got, err := roundTrip(c2, r2, "new", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection during the cut: read %q, %v; want nothing", got, err)
	}

	p.Heal()
	// Both old connections end: their streams lost bytes.
	for i, rr := range []*bufio.Reader{r, r2} {
		cc := []net.Conn{c, c2}[i]
		cc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := rr.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("connection %d after Heal: %v; want it closed", i, err)
		}
	}
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, bufio.NewReader(c3), "after", 5*time.Second); err != nil || got != "after" {
		t.Fatalf("after Heal: %q, %v", got, err)
	}
}

// TestCloseEndsEverything: Close closes every connection and returns
// with every goroutine done; cancelling the context closes it too.
func TestCloseEndsEverything(t *testing.T) {
	target := echoServer(t).Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := Listen(ctx, "127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(c, r, "x", 5*time.Second); err != nil || got != "x" {
		t.Fatalf("%q, %v", got, err)
	}
	p.Cut() // a cut link's goroutines end too
	cancel()
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("goroutines still running 10s after the context ended")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after close: %v; want the connection closed", err)
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("the proxy still accepts after its context ended")
	}
}

// TestHalfCloseForwarded: an end of file in one direction is passed on and
// the other direction still works; when both are done the link is
// forgotten.
func TestHalfCloseForwarded(t *testing.T) {
	p := startProxy(t, echoServer(t).Addr().String())
	c, err := net.DialTCP("tcp", nil, mustResolve(t, p.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("bye\n"))
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "bye\n" {
		t.Fatalf("read %q, %v; want the echo then EOF", b, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Conns() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still held after both ends closed", p.Conns())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustResolve(t *testing.T, addr string) *net.TCPAddr {
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
