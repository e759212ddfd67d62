package lockd

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"mplock/internal/netfault"
	"mplock/internal/proctest"
)

// TestSlowReadersDelayNoOne is issue 10's third fault: a waiter that stops
// reading must not delay anyone else. Two waiters fill their sockets with
// STATUS replies they never read; then one is granted a lock by a lease
// expiry (the timers' path) and the other by an unrelated holder's UNLOCK
// (the releaser's path). The write timeout is 30s, so a delivery that
// waited for either socket would show up as a reply, an expiry or a round
// trip 30s late; the bound asserted (10s) says "not blocked", not a speed.
func TestSlowReadersDelayNoOne(t *testing.T) {
	const writeTimeout = 30 * time.Second
	const notBlocked = writeTimeout / 3
	_, addr := startServer(t, Config{WriteTimeout: writeTimeout, MaxLocksPerSession: 1000})
	filler := dialRaw(t, addr)
	fillLocks(t, filler, "filler-"+strings.Repeat("f", 100), 300) // STATUS replies of ~70 KB

	h1, h4 := dialRaw(t, addr), dialRaw(t, addr)
	h1.send("LOCK x")
	h1.expect("OK LOCKED x")
	h4.send("LOCK q")
	h4.expect("OK LOCKED q")
	w := netfault.DialSlowReader(t, addr)
	w2 := netfault.DialSlowReader(t, addr)
	flood := strings.Repeat("STATUS\n", 300)
	if _, err := w.Write([]byte("LOCK x\n" + flood)); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Write([]byte("LOCK q\n" + flood)); err != nil {
		t.Fatal(err)
	}
	waitStuck(t, addr, w)
	waitStuck(t, addr, w2)

	// The timers' path: h1's lock gets a 1s lease, whose expiry grants x
	// to w. h2's 2s lease must still expire on time after that.
	h1.send("RENEW x ttl=1s")
	h1.expect("OK RENEWED x")
	h2 := dialRaw(t, addr)
	h2.send("LOCK y ttl=2s")
	h2.expect("OK LOCKED y")
	granted := time.Now()
	lost := make(chan time.Time, 1)
	go func() {
		h2.c.SetReadDeadline(time.Now().Add(2 * writeTimeout))
		if line, err := h2.br.ReadString('\n'); err == nil && strings.HasPrefix(line, "* LOST y") {
			lost <- time.Now()
		}
		close(lost)
	}()

	// The releaser's path: h4's UNLOCK grants q to w2.
	start := time.Now()
	h4.send("UNLOCK q")
	h4.expect("OK UNLOCKED q")
	unlocked := time.Since(start)
	if unlocked > notBlocked {
		t.Errorf("an UNLOCK that granted the lock to a client that does not read was answered after %v", unlocked)
	}

	// Unrelated round trips meanwhile, until after both expiries.
	h3 := dialRaw(t, addr)
	var worst time.Duration
	for until := time.Now().Add(2500 * time.Millisecond); time.Now().Before(until); {
		start := time.Now()
		h3.send("LOCK z")
		h3.expect("OK LOCKED z")
		h3.send("UNLOCK z")
		h3.expect("OK UNLOCKED z")
		worst = max(worst, time.Since(start))
	}
	if worst > notBlocked {
		t.Errorf("an unrelated client's LOCK+UNLOCK took %v", worst)
	}
	at, ok := <-lost
	if !ok {
		t.Fatal("h2 was not told its 2s lease expired")
	}
	if d := at.Sub(granted); d > notBlocked {
		t.Errorf("a 2s lease was expired after %v", d)
	}
	t.Logf("UNLOCK granting a non-reader: %v; worst unrelated LOCK+UNLOCK: %v; 2s lease expired after %v",
		unlocked.Round(time.Millisecond), worst, at.Sub(granted).Round(time.Millisecond))
	// The test meant what it says: the waiters were still not reading.
	if tx, _ := serverQueue(t, addr, w); tx == 0 {
		t.Errorf("the slow reader's socket drained: the test did not test a blocked delivery")
	}
}

// fillLocks has c take n locks named prefix-i, pipelined.
func fillLocks(t *testing.T, c *rawConn, prefix string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "LOCK %s-%d\n", prefix, i)
	}
	if _, err := c.c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	for range n {
		c.expect("OK LOCKED ")
	}
}

// waitStuck waits until the server is blocked writing to c (or would be).
func waitStuck(t *testing.T, addr string, c net.Conn) {
	t.Helper()
	proctest.WaitSendStuck(t, tcpAddr(t, addr), c.LocalAddr().(*net.TCPAddr))
}

// serverQueue returns what the server's socket to c holds unsent.
func serverQueue(t *testing.T, addr string, c net.Conn) (int, bool) {
	t.Helper()
	return proctest.SendQueue(t, tcpAddr(t, addr), c.LocalAddr().(*net.TCPAddr))
}

func tcpAddr(t *testing.T, addr string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOutputPastTheBoundClosesTheSession: a session whose pending output
// would pass MaxPendingOutput is closed, with a log line, and its locks
// released; others go on.
func TestOutputPastTheBoundClosesTheSession(t *testing.T) {
	var logs syncBuffer
	srv, addr := startServer(t, Config{MaxPendingOutput: 100 << 10, MaxLocksPerSession: 2000,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	filler := dialRaw(t, addr)
	fillLocks(t, filler, "n", 1500) // a STATUS page of 1000 names: over 100 KiB
	w := netfault.DialSlowReader(t, addr)
	if _, err := w.Write([]byte("LOCK mine\n" + strings.Repeat("STATUS\n", 10))); err != nil {
		t.Fatal(err)
	}
	const why = "session closed: too much output waiting for the client to read it"
	for deadline := time.Now().Add(safety); !strings.Contains(logs.String(), why); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line says the flooding session was closed (%+v):\n%s", srv.Stats(), logs.String())
		}
	}
	if st := srv.Stats(); st.Sessions != 1 {
		t.Fatalf("%d sessions after the flooder was closed, want 1", st.Sessions)
	}
	other := dialRaw(t, addr)
	other.send("LOCK mine wait=0")
	other.expect("OK LOCKED mine") // released with the closed session
}

// TestDebugVerb: DEBUG answers only on a server started with Debug.
func TestDebugVerb(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialRaw(t, addr)
	c.send("DEBUG")
	c.expect("ERR unknown DEBUG is not enabled")
	_, addr = startServer(t, Config{Debug: true})
	c = dialRaw(t, addr)
	c.send("LOCK a ttl=1h")
	c.expect("OK LOCKED")
	c.send("DEBUG")
	line := c.expect("OK DEBUG heap-live=")
	for _, want := range []string{" sessions=1 ", " connections=1 ", " locks=1 ", " holders=1 ", " deadlines=1"} {
		if !strings.Contains(line+" ", want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}
