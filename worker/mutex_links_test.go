package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mplock/dmutex"
)

// twoPeers starts P1's side of a two-peer mesh on a real Unix socket in a
// private directory; the test plays P0 (and strangers) by hand.
func twoPeers(t *testing.T) (spec *MutexSpec, ln net.Listener, rejects chan string) {
	t.Chdir(t.TempDir())
	spec = &MutexSpec{Role: MutexPeer, ID: 1, N: 2, Algorithm: dmutex.RicartAgrawala, Network: NetworkUnix, Secret: 0xfeedface, Timeout: 10 * time.Second}
	ln, err := listen(spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, ln, make(chan string, 16)
}

func dial(t *testing.T, lines ...string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", SocketName(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestConnectRefusesStrangers: connections that do not introduce themselves
// with HELLO and the run's secret are refused and reported, and do not keep
// the real peer out.
func TestConnectRefusesStrangers(t *testing.T) {
	spec, ln, rejects := twoPeers(t)
	type result struct {
		m   *mesh
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := connect(context.Background(), spec, ln, nil, func(s string) { rejects <- s })
		done <- result{m, err}
	}()
	strangers := []struct{ line, want string }{
		{"GET / HTTP/1.0\n", "malformed message"},
		{"HELLO 0 1234\n", "does not know the run's secret"},
		{"REQUEST 0 1\n", "first message REQUEST, want HELLO"},
		{fmt.Sprintf("HELLO 5 %d\n", spec.Secret), "P5 is not expected"},
	}
	for _, s := range strangers {
		c := dial(t, s.line)
		if got := <-rejects; !strings.Contains(got, s.want) {
			t.Errorf("stranger %q: rejection %q, want it to say %q", s.line, got, s.want)
		}
		c.Close()
	}
	p0 := dial(t, fmt.Sprintf("HELLO 0 %d\n", spec.Secret), "REQUEST 0 1\n")
	defer p0.Close()
	res := <-done
	if res.err != nil {
		t.Fatalf("connect: %v", res.err)
	}
	defer res.m.close()
	res.m.start()
	// The message sent right behind the introduction arrives: the reader
	// kept what the introduction's buffer had read ahead.
	if in := <-res.m.in; in.err != nil || in.m != (dmutex.Message{Kind: dmutex.Request, From: 0, To: 1, TS: 1}) {
		t.Fatalf("first message %+v", in)
	}
	if len(rejects) != 0 {
		t.Errorf("extra rejections: %q", <-rejects)
	}
}

// TestLinkRejectsMalformed: every malformed line on an established link is
// handed to the loop as a rejection, and the link goes on working.
func TestLinkRejectsMalformed(t *testing.T) {
	spec, ln, rejects := twoPeers(t)
	go func() {
		// The real peer, after a stranger that says nothing: the stranger
		// must not hold it up.
		silent, err := net.Dial("unix", SocketName(1))
		if err != nil {
			t.Error(err)
			return
		}
		defer silent.Close()
		p0, err := net.Dial("unix", SocketName(1))
		if err != nil {
			t.Error(err)
			return
		}
		fmt.Fprintf(p0, "HELLO 0 %d\n", spec.Secret)
		for _, g := range garbage {
			p0.Write([]byte(g))
		}
		p0.Write([]byte("REPLY 1 7\n")) // forged: P1 is the receiver itself
		p0.Write([]byte("HELLO 0 1\n")) // a second introduction
		p0.Write([]byte("REPLY 0 9\n")) // finally a good one
		p0.Close()
	}()
	m, err := connect(context.Background(), spec, ln, nil, func(s string) { rejects <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	m.start()
	bad := 0
	for {
		in := <-m.in
		if in.down != nil {
			t.Fatalf("link ended after %d rejections without the good message: %v", bad, in.down)
		}
		if in.err != nil {
			if !errors.Is(in.err, dmutex.ErrMalformed) {
				t.Errorf("rejection %v does not wrap ErrMalformed", in.err)
			}
			bad++
			continue
		}
		if in.m != (dmutex.Message{Kind: dmutex.Reply, From: 0, To: 1, TS: 9}) {
			t.Fatalf("accepted %+v", in.m)
		}
		break
	}
	if want := len(garbage) + 2; bad != want {
		t.Errorf("%d lines rejected, want %d", bad, want)
	}
	if in := <-m.in; in.down == nil {
		t.Errorf("after the peer closed: %+v, want the end of the link", in)
	}
}

func TestParseNote(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Note
	}{
		{"listening p3.sock", Note{Kind: NoteListening, Addr: "p3.sock"}},
		{"delivery idle 200 9000 11000 6500", Note{Kind: NoteDelivery, Delivery: Delivery{When: "idle", Rounds: 200, Median: 9000, Mean: 11000, Min: 6500}}},
		{"event 123 deferred 3 7 17 earlier 15 3 0", Note{Kind: NoteEvent, At: 123, Event: dmutex.Event{Kind: dmutex.Deferred, Process: 3, Peer: 7, TS: 17,
			Why: dmutex.BecauseEarlier, Other: dmutex.Stamp{TS: 15, ID: 3}}}},
		{"event 5 passed-token 1 2 4 - 0 0 2", Note{Kind: NoteEvent, At: 5, Event: dmutex.Event{Kind: dmutex.PassedToken, Process: 1, Peer: 2, TS: 4, Count: 2}}},
		{"rejected 5 P0 rejected a message from P1: x y", Note{Kind: NoteRejected, At: 5, Text: "P0 rejected a message from P1: x y"}},
		{"lost 6 P0 lost its link to P2: EOF", Note{Kind: NoteLost, At: 6, Text: "P0 lost its link to P2: EOF"}},
		{"done 100 200", Note{Kind: NoteDone, UserNs: 100, SysNs: 200}},
	} {
		got, err := ParseNote(tc.line)
		if err != nil || got != tc.want {
			t.Errorf("ParseNote(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "listening", "delivery soon 1 2 3 4", "event 1 flew 0 1 2 - 0 0 0", "event 1 deferred 0 1 2", "event 1 deferred 0 1 2 because 0 0 0", "done x y", "hello"} {
		if _, err := ParseNote(bad); err == nil {
			t.Errorf("ParseNote(%q) accepted it", bad)
		}
	}
}
