package lockd

import (
	"bufio"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// refusingServer listens on loopback and answers each connection as a
// server with no room does: it reads readFirst lines (0: none), writes
// line, and closes the connection; with reset, it resets it (SO_LINGER
// 0, as the kernel does when a socket is closed with a request not yet
// read). It returns the address and a channel that receives once per
// connection it has closed.
func refusingServer(t *testing.T, readFirst int, line string, reset bool) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closed := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for range readFirst {
				br.ReadString('\n')
			}
			c.Write([]byte(line))
			if reset {
				c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			closed <- struct{}{}
		}
	}()
	return ln.Addr().String(), closed
}

// handClient is a Client on conn as dialOne makes it, without its reader
// goroutine: the test starts that (startReader) when it wants, standing
// for a reader the scheduler has not run yet.
func handClient(t *testing.T, conn net.Conn) *Client {
	c := &Client{conn: conn, opts: Options{Client: "hand", PID: 1, Secret: "s3cret"}, waits: map[string]*lockWait{},
		leases: map[string]*Lease{}, done: make(chan struct{}), servers: []string{conn.RemoteAddr().String()},
		slots: make(chan struct{}, RequestWindow)}
	t.Cleanup(func() { c.Close() })
	return c
}

func (c *Client) startReader() {
	c.wg.Add(1)
	go c.read(c.conn, bufio.NewReaderSize(c.conn, 16<<10))
}

// waitTCPState polls conn's kernel TCP state (TCP_INFO) until it is
// state, or fails the test after safety.
func waitTCPState(t *testing.T, conn net.Conn, state uint8) {
	t.Helper()
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(safety); ; {
		var got uint8
		rc.Control(func(fd uintptr) {
			if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				got = ti.State
			}
		})
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection's TCP state is %d, not %d, after %v", got, state, safety)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHandshakeBusyThenReset: the server answers the AUTH ERR busy and
// resets the connection (as Server.refuseUnauthenticated does once the
// kernel has handed it a connection whose AUTH is already there: its
// close, with the AUTH unread, is a reset) before the client writes its
// HELLO, and before the client's reader has run. The HELLO's write then
// fails; the AUTH's answer is still in the socket, and is what the
// handshake must report (ErrBusy, which Dial tries again), not the
// failed write (ErrConnLost, which it does not). Seen with mplock client
// beside a flood: "connection to server lost: write: connection reset by
// peer" after 4.6s of a 10s --connect-timeout.
func TestHandshakeBusyThenReset(t *testing.T) {
	addr, reset := refusingServer(t, 1, "ERR busy too many connections authenticating (64); try again\n", true)
	conn, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	c := handClient(t, conn)
	auth, err := c.send(Request{Verb: VerbAuth, Secret: "s3cret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reset:
	case <-time.After(safety):
		t.Fatal("the server did not answer the AUTH")
	}
	waitTCPState(t, conn, tcpClose) // the reset has arrived
	if _, err := c.send(Request{Verb: VerbHello, Name: "hand", PID: 1}, nil); err != nil {
		t.Logf("HELLO: %v", err)
	}
	c.startReader()
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	_, _, err = c.await(ctx, auth)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("the AUTH answered ERR busy before a reset: %v; want ErrBusy", err)
	}
}

// TestRefusedAtAcceptIsBusy: a server without a secret refuses a
// connection over MaxSessions as it accepts it (Server.refuse), so its
// ERR busy may be read before the client has sent its HELLO: the client
// must end with ErrBusy (which Dial tries again), not a protocol error.
// Seen with mplock client --connect-timeout 2s against --max-sessions 1:
// "unexpected reply from server: reply \"ERR busy too many sessions
// (1)\\n\" to no request" after 0.5s.
func TestRefusedAtAcceptIsBusy(t *testing.T) {
	addr, _ := refusingServer(t, 0, "ERR busy too many sessions (1)\n", false)
	conn, err := net.DialTimeout("tcp", addr, safety)
	if err != nil {
		t.Fatal(err)
	}
	c := handClient(t, conn)
	c.startReader()
	select {
	case <-c.done:
	case <-time.After(safety):
		t.Fatal("the client did not end when the server refused it")
	}
	if err := c.Err(); !errors.Is(err, ErrBusy) {
		t.Fatalf("refused at accept: %v; want ErrBusy", err)
	}
}

// TestDialRetriesRefusedAtAccept: Dial against a real server without a
// secret whose one session is taken is answered busy at accept, tries
// again until its context ends, and says so.
func TestDialRetriesRefusedAtAccept(t *testing.T) {
	srv, addr := startServer(t, Config{MaxSessions: 1})
	first, err := Dial(testCtx(t), addr, Options{Client: "first"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	c, err := Dial(ctx, addr, Options{Client: "second"})
	if err == nil {
		c.Close()
		t.Fatal("a second session beside the one allowed")
	}
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("Dial while the one session allowed is open: %v; want ErrBusy", err)
	}
	if srv.refused.Load() < 2 {
		t.Fatalf("refused %d times: Dial did not try again", srv.refused.Load())
	}
}
