package lockd

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mplock/internal/netfault"
	"mplock/internal/proctest"
)

// fillStatus has a new session take n locks with long names, so that a
// STATUS page of every name is large, and returns how large the first
// page is (what the server would send for it now).
func fillStatus(t *testing.T, srv *Server, addr string, n int) int {
	t.Helper()
	filler := dialRaw(t, addr)
	fillLocks(t, filler, "big-"+strings.Repeat("b", 100), n)
	return len(appendStatus(nil, srv.status(StatusQuery{Limit: MaxStatusLimit})))
}

// TestNonReadersKernelMemoryBounded is the attack's M5: clients that ask
// for large STATUS pages and do not read them may not park them in the
// kernel. Each of them asks for the first page four times at once (a
// page ends at MaxStatusPageBytes, so four make about 1 MB); what the
// server's socket to each holds unsent must stay within the send buffer
// the server fixed (twice sendBuffer, as Linux counts it). Left to itself
// the kernel grows the buffer to megabytes and takes all four pages.
func TestNonReadersKernelMemoryBounded(t *testing.T) {
	const clients, pages = 4, 4
	srv, addr := startServer(t, Config{MaxLocksPerSession: 10000, WriteTimeout: time.Minute})
	page := fillStatus(t, srv, addr, 3000)
	bound := 2 * sendBuffer
	if pages*page < 3*bound {
		t.Fatalf("%d STATUS pages of %d bytes cannot show a send buffer bounded at %d", pages, page, bound)
	}
	requests := strings.Repeat("STATUS limit=10000\n", pages)
	total := 0
	for i := range clients {
		c := netfault.DialSlowReader(t, addr)
		if _, err := c.Write([]byte(requests)); err != nil {
			t.Fatal(err)
		}
		waitStuck(t, addr, c)
		queued, ok := serverQueue(t, addr, c)
		if !ok {
			t.Fatalf("client %d: no server socket found in /proc/net/tcp", i)
		}
		t.Logf("client %d: the server's socket holds %d bytes of %d pages of %d bytes", i, queued, pages, page)
		if queued > bound {
			t.Errorf("client %d: the server's socket holds %d unsent bytes, over the bound of %d", i, queued, bound)
		}
		total += queued
	}
	if total > clients*bound {
		t.Errorf("%d non-reading clients: %d bytes in the server's sockets, over %d", clients, total, clients*bound)
	}
	// A client that reads gets every page, as before.
	r := dialRaw(t, addr)
	if _, err := r.c.Write([]byte(requests)); err != nil {
		t.Fatal(err)
	}
	r.c.SetReadDeadline(time.Now().Add(safety))
	got := 0
	for n := 0; n < pages; {
		line, err := r.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading STATUS after %d bytes: %v", got, err)
		}
		got += len(line)
		if strings.HasPrefix(line, "OK STATUS ") {
			n++
		}
	}
	if got < pages*(page-page/10) {
		t.Errorf("a reading client got %d STATUS pages in %d bytes, want about %d", pages, got, pages*page)
	}
}

// TestOutputBoundCountsTheKernel: MaxPendingOutput bounds the output
// waiting for a client wherever it waits, the kernel's send buffer
// included, so a reply that would fit the outbox alone but not beside
// what the kernel may hold closes the session. (A STATUS page, the
// largest reply, is at most MaxStatusPageBytes: the bound here is small
// enough for one page to pass its outbox's share.)
func TestOutputBoundCountsTheKernel(t *testing.T) {
	const maxPending = 256 << 10
	var logs syncBuffer
	srv, addr := startServer(t, Config{MaxPendingOutput: maxPending, MaxLocksPerSession: 10000,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// A page between the outbox's share and the whole bound: the server
	// asks for a send buffer of a quarter of 256 KiB, which Linux doubles.
	page := fillStatus(t, srv, addr, 3000)
	lo, hi := maxPending-2*min(sendBuffer, maxPending/4), maxPending
	if page <= lo+lo/50 || page >= hi-hi/50 {
		t.Fatalf("a STATUS page of %d bytes is not between %d and %d", page, lo, hi)
	}
	w := netfault.DialSlowReader(t, addr)
	if _, err := w.Write([]byte("STATUS limit=10000\n")); err != nil {
		t.Fatal(err)
	}
	const why = "session closed: too much output waiting for the client to read it"
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the server's log:\n%s", logs.String())
		}
	})
	proctest.Eventually(t, fmt.Sprintf("a %d-byte reply with MaxPendingOutput %d to close the session", page, maxPending), func() bool {
		return strings.Contains(logs.String(), why)
	})
}

func TestOutboxBound(t *testing.T) {
	for _, tc := range []struct{ maxPending, inKernel, want int }{
		{8 << 20, 256 << 10, 8<<20 - 256<<10}, // the default: the kernel's share is left out
		{1 << 20, 256 << 10, 768 << 10},
		{100 << 10, 50 << 10, 100 << 10}, // too small to share: a batch of replies must fit
		{200 << 10, 100 << 10, 128 << 10},
		{8 << 20, 0, 8 << 20},
	} {
		if got := outboxBound(tc.maxPending, tc.inKernel); got != tc.want {
			t.Errorf("outboxBound(%d, %d) = %d, want %d", tc.maxPending, tc.inKernel, got, tc.want)
		}
	}
}
