package lockd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSeedScenario is the original's two-client example: a writer holds
// file_A, a reader asks meanwhile and waits, then reads the writer's value.
func TestSeedScenario(t *testing.T) {
	_, addr := startServer(t, Config{})
	ctx := testCtx(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file_A.txt")
	writer, reader := dial(t, addr, "Client1"), dial(t, addr, "Client2")

	w, err := writer.Lock(ctx, "file_A", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan int, 1)
	readDone := make(chan string, 1)
	go func() {
		r, err := reader.Lock(ctx, "file_A", Shared, OnQueued(func(pos int) { queued <- pos }))
		if err != nil {
			readDone <- "error: " + err.Error()
			return
		}
		b, err := os.ReadFile(file)
		if err != nil {
			readDone <- "error: " + err.Error()
		}
		readDone <- string(b)
		r.Unlock(ctx)
	}()
	select {
	case pos := <-queued:
		if pos != 1 {
			t.Fatalf("reader queued at %d, want 1", pos)
		}
	case v := <-readDone:
		t.Fatalf("reader did not wait for the writer: read %q", v)
	}
	if err := os.WriteFile(file, []byte("Shared Resource Test"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-readDone; got != "Shared Resource Test" {
		t.Fatalf("reader read %q, want the writer's value", got)
	}
	if !errors.Is(w.Err(), ErrUnlocked) {
		t.Fatalf("writer's lease ended with %v, want ErrUnlocked", w.Err())
	}
}

func TestServerTwoReadersWriterWaitsStatus(t *testing.T) {
	srv, addr := startServer(t, Config{})
	ctx := testCtx(t)
	r1, r2, wr := dial(t, addr, "R1"), dial(t, addr, "R2"), dial(t, addr, "W")
	if _, err := r1.Lock(ctx, "f", Shared); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lock(ctx, "f", Shared); err != nil {
		t.Fatalf("second reader: %v", err)
	}
	queued := make(chan int, 1)
	got := make(chan *Lease, 1)
	go func() {
		l, err := wr.Lock(ctx, "f", Exclusive, OnQueued(func(p int) { queued <- p }))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	<-queued
	st, err := r1.Status(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Locks) != 1 || len(st.Locks[0].Holders) != 2 || len(st.Locks[0].Waiters) != 1 {
		t.Fatalf("status %+v, want 2 holders and 1 waiter", st)
	}
	wt := st.Locks[0].Waiters[0]
	if wt.Client != "W" || wt.PID != os.Getpid() || wt.Mode != Exclusive || wt.Session != wr.Session() {
		t.Fatalf("waiter %+v, want W (pid %d, session %d) WRITE", wt, os.Getpid(), wr.Session())
	}
	if h := st.Locks[0].Holders; h[0].Client != "R1" || h[1].Client != "R2" || h[0].Token >= h[1].Token {
		t.Fatalf("holders %+v, want R1 then R2 with rising tokens", h)
	}
	if srv.Stats().Holders != 2 {
		t.Fatalf("server stats %+v", srv.Stats())
	}
	r1.Close()
	select {
	case l := <-got:
		t.Fatalf("writer granted %v while a reader still holds", l)
	default:
	}
	r2.Close()
	if l := <-got; l == nil || l.Mode != Exclusive {
		t.Fatalf("writer got %+v", l)
	}
}

func TestServerNonHolderReleaseRefused(t *testing.T) {
	_, addr := startServer(t, Config{})
	a := dialRaw(t, addr)
	b := dialRaw(t, addr)
	a.send("LOCK db_connection")
	tok := tokenOf(t, a.expect("OK LOCKED db_connection WRITE token="))
	b.send("UNLOCK db_connection")
	b.expect("ERR notheld ")
	b.send("UNLOCK db_connection token=" + tok)
	b.expect("ERR notheld ")
	b.send("LOCK db_connection wait=0")
	// Session ids follow the order in which the server accepted the two
	// connections, which need not be the order they were dialled in.
	if line := b.expect("ERR locked db_connection is locked by session "); !strings.HasSuffix(strings.TrimSpace(line), " (-) WRITE") {
		t.Fatalf("try-lock of a held name: %q, want the holder named as (-) WRITE", line)
	}
	a.send("UNLOCK db_connection token=" + tok)
	a.expect("OK UNLOCKED db_connection token=" + tok)
}

func TestServerMalformedLines(t *testing.T) {
	_, addr := startServer(t, Config{MaxLine: 100})
	c := dialRaw(t, addr)
	for _, tc := range []struct{ line, reply string }{
		{"", "ERR syntax "},
		{"FROBNICATE", "ERR unknown "},
		{"LOCK", "ERR syntax "},
		{"LOCK ../../etc/passwd", "ERR badname "},
		{"LOCK " + strings.Repeat("a", 129)[:90], "OK LOCKED "},
		{"LOCK x ttl=forever", "ERR syntax "},
		{"LOCK x\x01", "ERR syntax "},
		{"\xff\xfe", "ERR syntax "},
		{"UNLOCK nothing", "ERR notheld "},
		{"CANCEL nothing", "ERR notwaiting "},
		{"HELP", "OK HELP "},
	} {
		c.send(tc.line)
		c.expect(tc.reply)
	}
	// The connection survived all of that.
	c.send("PING")
	c.expect("OK PONG")
	// An over-long line gets an error and a close.
	c.send("LOCK " + strings.Repeat("z", 200))
	c.expect("ERR toolong line longer than 100 bytes")
	c.expectEOF()
}

func TestServerLongNameRefused(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialRaw(t, addr)
	c.send("LOCK " + strings.Repeat("n", MaxNameLen+1))
	c.expect("ERR badname ")
	c.send("LOCK " + strings.Repeat("n", MaxNameLen))
	c.expect("OK LOCKED ")
}

func TestServerLeaseExpiryTellsRawHolder(t *testing.T) {
	_, addr := startServer(t, Config{})
	c := dialRaw(t, addr)
	c.send("LOCK job ttl=50ms")
	tok := tokenOf(t, c.expect("OK LOCKED job WRITE token="))
	// No RENEW: the server takes it back and says so.
	c.expect("* LOST job WRITE token=" + tok + " reason=expired")
	c.send("UNLOCK job")
	c.expect("ERR notheld ")
}

// TestServerLeaseExpiryTellsStoppedHolder stops a real holder process
// (SIGSTOP) so that it cannot renew; another client gets the lock when the
// lease expires, and the holder, once continued, learns it lost it.
func TestServerLeaseExpiryTellsStoppedHolder(t *testing.T) {
	_, addr := startServer(t, Config{})
	h := startHelper(t, "hold", "LOCKD_ADDR="+addr, "LOCKD_NAME=job", "LOCKD_TTL=300ms")
	first := h.Line(t)
	if !strings.HasPrefix(first, "LOCKED ") {
		t.Fatalf("holder said %q", first)
	}
	if err := h.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c := dial(t, addr, "next")
	l, err := c.Lock(testCtx(t), "job", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	h.Cmd.Process.Signal(syscall.SIGCONT)
	if got := h.Line(t); !strings.HasPrefix(got, "LOST "+ErrLeaseExpired.Error()) {
		t.Fatalf("stopped holder said %q after continuing, want it told the lease expired", got)
	}
	if tok := strings.TrimPrefix(first, "LOCKED "); tok >= "" && l.Token <= Token(atoi(t, tok)) {
		t.Fatalf("new holder's token %d not above the expired holder's %s", l.Token, tok)
	}
}

// TestServerKilledClientReleases kills a real holder process with SIGKILL:
// its connection closes, the server releases its lock and grants the
// waiter.
func TestServerKilledClientReleases(t *testing.T) {
	_, addr := startServer(t, Config{})
	h := startHelper(t, "hold", "LOCKD_ADDR="+addr, "LOCKD_NAME=file_A")
	if got := h.Line(t); !strings.HasPrefix(got, "LOCKED ") {
		t.Fatalf("holder said %q", got)
	}
	c := dial(t, addr, "waiter")
	queued := make(chan int, 1)
	got := make(chan error, 1)
	go func() {
		_, err := c.Lock(testCtx(t), "file_A", Exclusive, OnQueued(func(int) { queued <- 1 }))
		got <- err
	}()
	<-queued
	if err := h.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter after the holder was killed: %v", err)
	}
}

func TestServerShutdownTellsHoldersAndWaitersNoLeaks(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	fds := openFDs(t)
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, addr := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ctx := testCtx(t)
	a, err := Dial(ctx, addr, Options{Client: "A"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Dial(ctx, addr, Options{Client: "B"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Lock(ctx, "x", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan int, 1)
	waitErr := make(chan error, 1)
	go func() {
		_, err := b.Lock(ctx, "x", Shared, OnQueued(func(int) { queued <- 1 }))
		waitErr <- err
	}()
	<-queued
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-l.Done()
	if !errors.Is(l.Err(), ErrShutdown) {
		t.Fatalf("holder's lease ended with %v, want ErrShutdown", l.Err())
	}
	if err := <-waitErr; !errors.Is(err, ErrShutdown) {
		t.Fatalf("waiter got %v, want ErrShutdown", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	a.Close()
	b.Close()
	// Server.Shutdown and Client.Close wait for their goroutines' last
	// deferred call; the runtime counts a goroutine until it has returned
	// from it, so give the count a moment to settle (as goleak does).
	for deadline := time.Now().Add(safety); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after shutdown, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := openFDs(t); n != fds {
		t.Fatalf("%d open fds after shutdown, %d before", n, fds)
	}
}

func TestServerIdleTimeout(t *testing.T) {
	_, addr := startServer(t, Config{IdleTimeout: 100 * time.Millisecond})
	// A Go client takes a lock first and then only pings.
	g := dial(t, addr, "pinger")
	l, err := g.Lock(testCtx(t), "kept", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	// A silent raw session opened after it is closed for idleness, with
	// its lock; by then the Go client has been quiet at least as long.
	c := dialRaw(t, addr)
	c.send("LOCK idle_lock")
	c.expect("OK LOCKED ")
	c.expect("* BYE reason=idle")
	c.expectEOF()
	select {
	case <-l.Done():
		t.Fatalf("the pinging client lost its lock: %v", l.Err())
	default:
	}
	other := dial(t, addr, "other")
	if _, err := other.TryLock(testCtx(t), "idle_lock", Exclusive); err != nil {
		t.Fatalf("lock of an idle-closed session's name: %v", err)
	}
	if _, err := other.TryLock(testCtx(t), "kept", Exclusive); !errors.Is(err, ErrLocked) {
		t.Fatalf("the pinging client's lock: %v, want ErrLocked (still held)", err)
	}
}

func TestServerAuth(t *testing.T) {
	_, addr := startServer(t, Config{Secret: "opensesame"})
	c := dialRaw(t, addr)
	c.send("LOCK x")
	c.expect("ERR auth ")
	c.send("STATUS")
	c.expect("ERR auth ")
	c.send("AUTH opensesame")
	c.expect("OK AUTH")
	c.send("LOCK x")
	c.expect("OK LOCKED x")
	bad := dialRaw(t, addr)
	bad.send("AUTH guess")
	bad.expect("ERR auth wrong secret")
	bad.expectEOF()
	if _, err := Dial(testCtx(t), addr, Options{}); !errors.Is(err, ErrAuth) {
		t.Fatalf("Dial without the secret: %v, want ErrAuth", err)
	}
	cl, err := Dial(testCtx(t), addr, Options{Secret: "opensesame"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.TryLock(testCtx(t), "x", Exclusive); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock of a held name: %v, want ErrLocked", err)
	}
}

func TestServerMaxLocksPerSession(t *testing.T) {
	_, addr := startServer(t, Config{MaxLocksPerSession: 2})
	c := dialRaw(t, addr)
	c.send("LOCK a")
	c.expect("OK LOCKED")
	c.send("LOCK b")
	c.expect("OK LOCKED")
	c.send("LOCK c")
	c.expect("ERR limit ")
	c.send("UNLOCK a")
	c.expect("OK UNLOCKED")
	c.send("LOCK c")
	c.expect("OK LOCKED")
}

func TestServerMaxSessions(t *testing.T) {
	for _, secret := range []string{"", "s3cret"} {
		_, addr := startServer(t, Config{MaxSessions: 1, Secret: secret})
		a := dialRaw(t, addr)
		if secret != "" {
			a.send("AUTH " + secret)
			a.expect("OK AUTH")
		}
		a.send("PING")
		a.expect("OK PONG")
		b := dialRaw(t, addr)
		if secret != "" {
			b.send("AUTH " + secret)
		}
		b.expect("ERR busy ")
		b.expectEOF()
		// A session that ends makes room for the next, again and again.
		a.c.Close()
		for range 3 {
			for deadline := time.Now().Add(safety); ; time.Sleep(time.Millisecond) {
				c := dialRaw(t, addr)
				if secret != "" {
					c.send("AUTH " + secret)
				}
				c.send("PING")
				if line, err := c.br.ReadString('\n'); err == nil && (line == "OK PONG\n" || line == "OK AUTH\n") {
					c.c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("secret %q: no room after the only session closed", secret)
				}
				c.c.Close()
			}
		}
	}
}

func TestServerWaitTimeoutAndCancel(t *testing.T) {
	_, addr := startServer(t, Config{})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.send("LOCK w")
	a.expect("OK LOCKED")
	b.send("LOCK w READ wait=30ms")
	b.expect("OK QUEUED w READ position=1")
	b.expect("* TIMEOUT w READ waited=")
	b.send("LOCK w")
	b.expect("OK QUEUED w WRITE position=1")
	b.send("CANCEL w")
	b.expect("OK CANCELLED w")
	a.send("UNLOCK w")
	a.expect("OK UNLOCKED")
	// Pipelined requests are answered in order.
	b.send("LOCK p1\nLOCK p2\nPING\nUNLOCK p1")
	b.expect("OK LOCKED p1")
	b.expect("OK LOCKED p2")
	b.expect("OK PONG")
	b.expect("OK UNLOCKED p1")
}

// TestClientLockContextWithdraws checks that a Lock whose ctx ends leaves
// no waiter behind and no lock held.
func TestClientLockContextWithdraws(t *testing.T) {
	_, addr := startServer(t, Config{})
	a, b := dial(t, addr, "A"), dial(t, addr, "B")
	l, err := a.Lock(testCtx(t), "c", Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	// Give up as soon as the request is queued.
	if _, err := b.Lock(ctx, "c", Exclusive, OnQueued(func(int) { cancel() })); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock whose ctx ended while queued: %v, want context.Canceled", err)
	}
	// Nothing of it remains: b may ask again, and is refused because a
	// holds the lock, not because b still waits.
	if _, err := b.TryLock(testCtx(t), "c", Exclusive); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock after the withdrawal: %v, want ErrLocked", err)
	}
	st, _ := a.Status(testCtx(t), "c")
	if len(st.Locks[0].Waiters) != 0 {
		t.Fatalf("waiters after the ctx ended: %+v", st.Locks[0].Waiters)
	}
	l.Unlock(testCtx(t))
	if _, err := b.TryLock(testCtx(t), "c", Exclusive); err != nil {
		t.Fatalf("TryLock of a free name: %v", err)
	}
}

func TestClientSeesServerGone(t *testing.T) {
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, addr := listen(t)
	go srv.Serve(ln)
	c := dial(t, addr, "c")
	l, err := c.Lock(testCtx(t), "g", Exclusive, WithTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown(testCtx(t))
	<-l.Done()
	<-c.Done()
	if !errors.Is(l.Err(), ErrShutdown) || !errors.Is(c.Err(), ErrShutdown) {
		t.Fatalf("lease %v, client %v; want ErrShutdown", l.Err(), c.Err())
	}
	if _, err := c.Lock(testCtx(t), "h", Exclusive); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Lock after shutdown: %v", err)
	}
}

// TestClientWithWait checks that a bounded wait is bounded by the server:
// its STATUS shows the deadline while it waits, and Lock returns ErrTimeout
// when it passes, leaving nothing queued.
func TestClientWithWait(t *testing.T) {
	_, addr := startServer(t, Config{})
	a, b := dial(t, addr, "A"), dial(t, addr, "B")
	if _, err := a.Lock(testCtx(t), "w", Exclusive); err != nil {
		t.Fatal(err)
	}
	queued := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := b.Lock(testCtx(t), "w", Exclusive, WithWait(200*time.Millisecond), OnQueued(func(int) { close(queued) }))
		done <- err
	}()
	<-queued
	st, err := a.Status(testCtx(t), "w")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Locks) != 1 || len(st.Locks[0].Waiters) != 1 || st.Locks[0].Waiters[0].Deadline.IsZero() {
		t.Fatalf("status of a bounded wait shows no deadline: %+v", st.Locks)
	}
	if err := <-done; !errors.Is(err, ErrTimeout) {
		t.Fatalf("bounded Lock = %v, want ErrTimeout", err)
	}
	st, err = a.Status(testCtx(t), "w")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Locks[0].Waiters) != 0 {
		t.Fatalf("a timed-out wait is still queued: %+v", st.Locks[0].Waiters)
	}
}
