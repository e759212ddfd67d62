package worker

import (
	"bufio"
	"context"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"mplock/internal/netfault"
	"mplock/lockd"
)

func TestHolderArgsRoundTrip(t *testing.T) {
	spec := HolderSpec{
		Name:  "P2",
		Locks: []HolderLock{{"lock2", "127.0.0.1:6001"}, {"lock1", "127.0.0.1:6000"}},
		Hold:  100 * time.Millisecond, TryTimeout: 200 * time.Millisecond, Backoff: 50 * time.Millisecond,
		Sync: true, Seed: 42,
	}
	got, err := ParseHolderArgs(spec.Args())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, spec) {
		t.Errorf("round trip: got %+v, want %+v", got, spec)
	}
	for _, bad := range [][]string{
		{"-name", "P1"},
		{"-lock", "lock1@127.0.0.1:6000"},
		{"-name", "P1", "-lock", "lock1"},
		{"-name", "P1", "-lock", "lock1@h:1", "-hold", "-1s"},
		{"-name", "P1", "-lock", "lock1@h:1", "extra"},
	} {
		if _, err := ParseHolderArgs(bad); err == nil {
			t.Errorf("ParseHolderArgs(%q) accepted", bad)
		}
	}
}

func TestHolderNoteRoundTrip(t *testing.T) {
	for _, n := range []HolderNote{
		{Kind: HolderReady},
		{Kind: HolderGot, At: 1700000000123456789, Lock: "lock1", Token: 7, Waited: 12 * time.Millisecond},
		{Kind: HolderWaiting, At: 5, Lock: "lock2", Position: 1, Holder: "P2", HolderPID: 4243},
		{Kind: HolderWaiting, At: 5, Lock: "lock2", Position: 2},
		{Kind: HolderGaveUp, At: 6, Lock: "lock2", Waited: 200 * time.Millisecond},
		{Kind: HolderBackoff, At: 7, Backoff: 37 * time.Millisecond},
		{Kind: HolderReleased, At: 8, Lock: "lock1"},
		{Kind: HolderDone, At: 9, Retries: 3},
		{Kind: HolderStopped, At: 10, Text: "waiting for lock2"},
		{Kind: HolderFailed, At: 11, Text: "connecting: lockd: dial 127.0.0.1:1: refused"},
	} {
		got, err := ParseHolderNote(n.String())
		if err != nil {
			t.Errorf("%q: %v", n.String(), err)
			continue
		}
		if !reflect.DeepEqual(got, n) {
			t.Errorf("%q: got %+v, want %+v", n.String(), got, n)
		}
	}
	for _, bad := range []string{"", "hello", "got x lock1 1 1", "got 1 lock1 1", "ready 1", "waiting 1 lock1 x P1 1"} {
		if _, err := ParseHolderNote(bad); err == nil {
			t.Errorf("ParseHolderNote(%q) accepted", bad)
		}
	}
}

// startServer serves a real lock table on a loopback port.
func startServer(t *testing.T) string {
	t.Helper()
	srv, err := lockd.NewServer(lockd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// runningHolder is a RunHolder in a goroutine, with its control pipe and
// its notes as they come.
type runningHolder struct {
	control *io.PipeWriter
	notes   chan HolderNote
	done    chan error
}

func startHolder(t *testing.T, spec HolderSpec) *runningHolder {
	t.Helper()
	cr, cw := io.Pipe()
	nr, nw := io.Pipe()
	h := &runningHolder{control: cw, notes: make(chan HolderNote, 100), done: make(chan error, 1)}
	go func() {
		err := RunHolder(context.Background(), spec, cr, nw)
		nw.Close()
		h.done <- err
	}()
	go func() {
		sc := bufio.NewScanner(nr)
		for sc.Scan() {
			n, err := ParseHolderNote(sc.Text())
			if err != nil {
				t.Errorf("holder %s: %v", spec.Name, err)
				continue
			}
			h.notes <- n
		}
		close(h.notes)
	}()
	t.Cleanup(func() { cw.Close() })
	return h
}

func (h *runningHolder) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(h.control, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// expect reads notes until one of kind arrives, and returns it; it fails on
// a failed note or the end of notes.
func (h *runningHolder) expect(t *testing.T, kind HolderNoteKind) HolderNote {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case n, ok := <-h.notes:
			if !ok {
				t.Fatalf("notes ended before %v", kind)
			}
			if n.Kind == HolderFailed {
				t.Fatalf("holder failed: %s", n.Text)
			}
			if n.Kind == kind {
				return n
			}
		case <-timeout:
			t.Fatalf("no %v note", kind)
		}
	}
}

// TestHoldersDeadlock runs two holders in reverse order against two real
// servers: each gets its first lock, queues for the other's, and learns who
// holds it; they stay stuck until stopped, and then withdraw and end.
func TestHoldersDeadlock(t *testing.T) {
	a, b := startServer(t), startServer(t)
	l1, l2 := HolderLock{"lock1", a}, HolderLock{"lock2", b}
	p1 := startHolder(t, HolderSpec{Name: "P1", Locks: []HolderLock{l1, l2}, Sync: true})
	p2 := startHolder(t, HolderSpec{Name: "P2", Locks: []HolderLock{l2, l1}, Sync: true})
	for _, h := range []*runningHolder{p1, p2} {
		h.expect(t, HolderReady)
		h.send(t, HolderGo)
	}
	if n := p1.expect(t, HolderGot); n.Lock != "lock1" || n.Token == 0 {
		t.Errorf("P1's first grant: %+v", n)
	}
	if n := p2.expect(t, HolderGot); n.Lock != "lock2" {
		t.Errorf("P2's first grant: %+v", n)
	}
	p1.send(t, HolderNext)
	p2.send(t, HolderNext)
	if n := p1.expect(t, HolderWaiting); n.Lock != "lock2" || n.Holder != "P2" || n.Position != 1 {
		t.Errorf("P1 waits: %+v, want lock2 held by P2", n)
	}
	if n := p2.expect(t, HolderWaiting); n.Lock != "lock1" || n.Holder != "P1" {
		t.Errorf("P2 waits: %+v, want lock1 held by P1", n)
	}

	// Both wait in the servers' queues, as a third session sees.
	c, err := lockd.Dial(context.Background(), b, lockd.Options{Client: "observer"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(context.Background(), "lock2")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Locks) != 1 || len(st.Locks[0].Holders) != 1 || st.Locks[0].Holders[0].Client != "P2" ||
		len(st.Locks[0].Waiters) != 1 || st.Locks[0].Waiters[0].Client != "P1" {
		t.Fatalf("lock2 status: %+v", st)
	}

	p1.control.Close()
	p2.control.Close()
	for _, h := range []*runningHolder{p1, p2} {
		if n := h.expect(t, HolderStopped); n.Text != "waiting for lock1" && n.Text != "waiting for lock2" {
			t.Errorf("stopped while %q", n.Text)
		}
		if err := <-h.done; err != nil {
			t.Errorf("RunHolder: %v", err)
		}
	}
}

// TestHolderTimedAcquire: a timed acquire of a lock that stays taken gives
// up, releases the first lock, backs off and starts over; once the lock is
// free it completes and reports its retries.
func TestHolderTimedAcquire(t *testing.T) {
	a, b := startServer(t), startServer(t)
	other, err := lockd.Dial(context.Background(), b, lockd.Options{Client: "other"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lease, err := other.Lock(context.Background(), "lock2", lockd.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	h := startHolder(t, HolderSpec{Name: "P1", Locks: []HolderLock{{"lock1", a}, {"lock2", b}},
		TryTimeout: 20 * time.Millisecond, Backoff: time.Millisecond, Seed: 1})
	h.expect(t, HolderReady)
	h.send(t, HolderGo)
	if n := h.expect(t, HolderWaiting); n.Holder != "other" {
		t.Errorf("waiting note %+v, want lock2 held by other", n)
	}
	if n := h.expect(t, HolderGaveUp); n.Lock != "lock2" || n.Waited < 20*time.Millisecond {
		t.Errorf("gave up: %+v", n)
	}
	if n := h.expect(t, HolderReleased); n.Lock != "lock1" {
		t.Errorf("released %+v, want lock1 after giving up", n)
	}
	h.expect(t, HolderBackoff)
	if err := lease.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := h.expect(t, HolderDone); n.Retries < 1 {
		t.Errorf("done with %d retries, want at least 1", n.Retries)
	}
	if err := <-h.done; err != nil {
		t.Fatal(err)
	}
}

// TestHolderStopsWhenItsLockIsLost: a holder's link to its lock server is
// black-holed while it holds lock1 for a long Hold. The server will close
// the silent session (its idle timeout) and give lock1 to someone else; the
// holder hears nothing, and must notice by its client's own clock and fail,
// naming the lock, rather than hold on for the rest of its Hold.
func TestHolderStopsWhenItsLockIsLost(t *testing.T) {
	srv, err := lockd.NewServer(lockd.Config{IdleTimeout: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	proxy := netfault.Start(t, ln.Addr().String())
	h := startHolder(t, HolderSpec{Name: "P1", Locks: []HolderLock{{"lock1", proxy.Addr()}}, Hold: time.Hour})
	h.expect(t, HolderReady)
	h.send(t, HolderGo)
	h.expect(t, HolderGot)
	proxy.Blackhole()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case n, ok := <-h.notes:
			if !ok {
				t.Fatal("notes ended without a failure")
			}
			if n.Kind != HolderFailed {
				continue
			}
			if !strings.Contains(n.Text, "lost lock1") {
				t.Fatalf("failed with %q, want it to name the lost lock1", n.Text)
			}
			if err := <-h.done; err == nil {
				t.Fatal("RunHolder returned nil after losing its lock")
			}
			return
		case <-timeout:
			t.Fatal("the holder still holds lock1 20s after its link was cut")
		}
	}
}
