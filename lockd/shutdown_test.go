package lockd

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mplock/internal/netfault"
)

// TestShutdownClosesNonReaders is the attack's low finding: clients that
// do not read must not hold up a shutdown until their write timeout (here
// a minute, three times the test's context). Three clients sit on STATUS
// pages they do not read (three pages each, more than the kernel's send
// buffer takes, so that the server is blocked writing to each); Shutdown
// must end within its context, with no error, tell a client that reads
// (a holder: ErrShutdown), and log that it closed the others.
func TestShutdownClosesNonReaders(t *testing.T) {
	var logs syncBuffer
	srv, addr := startServer(t, Config{WriteTimeout: 3 * safety, MaxLocksPerSession: 10000,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	filler := dialRaw(t, addr)
	fillLocks(t, filler, "page", 3000)
	const nonReaders, pages = 3, 3
	if page := len(appendStatus(nil, srv.status(StatusQuery{Limit: MaxStatusLimit}))); pages*page < 2*(2*sendBuffer) {
		t.Fatalf("%d STATUS pages of %d bytes fit in the kernel's send buffer (%d)", pages, page, 2*sendBuffer)
	}
	for range nonReaders {
		c := netfault.DialSlowReader(t, addr)
		if _, err := c.Write([]byte(strings.Repeat("STATUS limit=10000\n", pages))); err != nil {
			t.Fatal(err)
		}
		waitStuck(t, addr, c)
	}
	filler.c.Close()
	ctx := testCtx(t)
	g := dial(t, addr, "holder")
	l, err := g.Lock(ctx, "held", Exclusive)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with %d clients that do not read: %v after %v", nonReaders, err, time.Since(start))
	}
	t.Logf("Shutdown returned after %v", time.Since(start).Round(time.Millisecond))
	select {
	case <-l.Done():
		if !errors.Is(l.Err(), ErrShutdown) {
			t.Errorf("the holder's lease ended with %v, want ErrShutdown", l.Err())
		}
	case <-ctx.Done():
		t.Fatal("the holder was not told its lock is lost")
	}
	m := regexp.MustCompile(`msg="shutdown: closed sessions that had not read their last lines and hung up" sessions=(\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no log line says how many sessions shutdown closed:\n%s", logs.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < nonReaders {
		t.Errorf("shutdown says it closed %d sessions, want at least the %d that did not read", n, nonReaders)
	}
}

// TestShutdownContextEndsFirst: a context that ends before the grace
// closes every connection at once, and Shutdown says so.
func TestShutdownContextEndsFirst(t *testing.T) {
	srv, addr := startServer(t, Config{WriteTimeout: 3 * safety})
	c := dialRaw(t, addr)
	c.send("LOCK x")
	c.expect("OK LOCKED x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context: %v, want context.Canceled", err)
	}
}
