package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestLoopback: the ports are distinct, below the ephemeral range, and
// can be bound.
func TestLoopback(t *testing.T) {
	const n = 20
	addrs, err := Loopback(n)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != n {
		t.Fatalf("%d addresses, want %d", len(addrs), n)
	}
	top := ephemeralStart()
	seen := map[string]bool{}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q", a)
		}
		p, _ := strconv.Atoi(port)
		if p < lowest || p >= top {
			t.Errorf("port %d outside [%d, %d)", p, lowest, top)
		}
		if seen[a] {
			t.Errorf("%s twice", a)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s cannot be bound: %v", a, err)
			continue
		}
		ln.Close()
	}
}

// TestPickSkipsBoundPorts: in a range of three ports of which another
// listener holds two, the third is the only one handed out, and asking for
// two fails.
func TestPickSkipsBoundPorts(t *testing.T) {
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	lo := 0
	for p := lowest; p < ephemeralStart()-3 && lo == 0; p += 3 {
		var lns []net.Listener
		for q := p; q < p+3; q++ {
			if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q)); err == nil {
				lns = append(lns, ln)
			}
		}
		if len(lns) == 3 {
			lo = p
			held = append(held, lns[:2]...)
			lns[2].Close()
			break
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	if lo == 0 {
		t.Fatal("no three free ports in a row")
	}
	want := "127.0.0.1:" + strconv.Itoa(lo+2)
	for range 20 {
		got, err := pick(1, lo, lo+3, nil)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Fatalf("pick(1) in [%d, %d) with two held = %v, %v; want [%s]", lo, lo+3, got, err, want)
		}
	}
	if got, err := pick(2, lo, lo+3, nil); err == nil {
		t.Fatalf("pick(2) with one port free = %v, want an error", got)
	}
}

// TestPickSkipsGivenPorts: in a range of three free ports, calls that
// share what they handed out return each port once (as Loopback's calls
// in one process do), then fail; a port handed out and closed is as free
// to a listen as any, so only that record keeps a second call off it.
func TestPickSkipsGivenPorts(t *testing.T) {
	lo := 0
	for p := lowest; p < ephemeralStart()-3 && lo == 0; p += 3 {
		free := 0
		for q := p; q < p+3; q++ {
			if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(q)); err == nil {
				ln.Close()
				free++
			}
		}
		if free == 3 {
			lo = p
		}
	}
	if lo == 0 {
		t.Fatal("no three free ports in a row")
	}
	skip := map[string]bool{}
	seen := map[string]bool{}
	for i := range 3 {
		got, err := pick(1, lo, lo+3, skip)
		if err != nil || len(got) != 1 {
			t.Fatalf("call %d: pick(1) = %v, %v", i+1, got, err)
		}
		if seen[got[0]] {
			t.Fatalf("call %d: %s handed out again (earlier: %v)", i+1, got[0], seen)
		}
		seen[got[0]] = true
	}
	if got, err := pick(1, lo, lo+3, skip); err == nil {
		t.Fatalf("pick(1) after all three were handed out = %v, want an error", got)
	}
}

// TestLoopbackNeverTwice: many calls in one process never hand out the
// same address twice.
func TestLoopbackNeverTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		addrs, err := Loopback(5)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if seen[a] {
				t.Fatalf("%s handed out twice", a)
			}
			seen[a] = true
		}
	}
}
