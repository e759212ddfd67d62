package lockd

import (
	"mplock/internal/proctest"

	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as a lock client process: tests start
// it again with LOCKD_TEST_HELPER set, so that a client can be a real
// process that the test kills or stops.
func TestMain(m *testing.M) {
	if role := os.Getenv("LOCKD_TEST_HELPER"); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(m.Run())
}

// safety bounds every wait in these tests so that a bug fails the test
// rather than hanging it; nothing waits for it to pass.
const safety = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	t.Cleanup(cancel)
	return ctx
}

// startServer serves cfg on a free loopback port and shuts it down when the
// test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, ln, cfg)
}

// startServerOn serves cfg on ln and shuts it down when the test ends.
func startServerOn(t testing.TB, ln net.Listener, cfg Config) (*Server, string) {
	t.Helper()
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, ln.Addr().String()
}

func dial(t *testing.T, addr, name string) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), addr, Options{Client: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn speaks the protocol by hand, as nc would.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(line string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(line + "\n")); err != nil {
		r.t.Fatalf("send %q: %v", line, err)
	}
}

// expect reads the next line and fails unless it starts with prefix.
func (r *rawConn) expect(prefix string) string {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(safety))
	line, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("reading a line starting %q: %v (got %q)", prefix, err, line)
	}
	if !strings.HasPrefix(line, prefix) {
		r.t.Fatalf("got %q, want a line starting %q", line, prefix)
	}
	return strings.TrimSuffix(line, "\n")
}

// expectEOF fails unless the server closes the connection next.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(safety))
	if line, err := r.br.ReadString('\n'); err == nil {
		r.t.Fatalf("got %q, want the connection closed", line)
	}
}

// startHelper starts this test binary as a client process in role (see
// runHelper); its output lines are the hand-off, never a sleep.
func startHelper(t *testing.T, role string, env ...string) *proctest.Helper {
	t.Helper()
	return proctest.StartHelper(t, append([]string{"LOCKD_TEST_HELPER=" + role}, env...)...)
}

func runHelper(role string) int {
	ctx := context.Background()
	addr := os.Getenv("LOCKD_ADDR")
	switch role {
	case "hold":
		// Take LOCKD_NAME (with LOCKD_TTL if set), say LOCKED, then report
		// the loss of the lock if it comes.
		c, err := Dial(ctx, addr, Options{Client: "holder"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		var opts []LockOption
		if ttl, err := time.ParseDuration(os.Getenv("LOCKD_TTL")); err == nil {
			opts = append(opts, WithTTL(ttl))
		}
		l, err := c.Lock(ctx, os.Getenv("LOCKD_NAME"), Exclusive, opts...)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("LOCKED %d\n", l.Token)
		<-l.Done()
		fmt.Printf("LOST %v\n", l.Err())
		return 3
	case "hammer":
		return hammer(ctx, addr)
	case "flood":
		return flood(addr)
	}
	fmt.Fprintln(os.Stderr, "unknown helper", role)
	return 2
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, ln.Addr().String()
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func atoi(t *testing.T, s string) uint64 {
	t.Helper()
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("number %q: %v", s, err)
	}
	return n
}

// fieldOf returns the key=value value of a reply line.
func fieldOf(t *testing.T, line, key string) string {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in %q", key, line)
	return ""
}

// tokenOf returns the token=N value of a reply line, a number.
func tokenOf(t *testing.T, line string) string {
	t.Helper()
	v := fieldOf(t, line, "token")
	atoi(t, v)
	return v
}

// startFakeServer serves one client connection, at a listener of its
// own, with answer: a hand-written server for what no real one does on
// cue. answer gets each request and its line (without the newline) and
// returns what to send back ("" sends nothing), or an error that ends the
// fake and fails the test. It returns the address to dial.
func startFakeServer(t *testing.T, answer func(req Request, line string) (string, error)) string {
	t.Helper()
	ln, addr := listen(t)
	served := make(chan error, 1)
	go func() { served <- serveFake(ln, answer) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-served; err != nil {
			t.Errorf("fake server: %v", err)
		}
	})
	return addr
}

func serveFake(ln net.Listener, answer func(req Request, line string) (string, error)) error {
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
		reply, err := answer(req, strings.TrimSpace(line))
		if err != nil {
			return err
		}
		if reply == "" {
			continue
		}
		if _, err := conn.Write([]byte(reply + "\n")); err != nil {
			return nil
		}
	}
}
