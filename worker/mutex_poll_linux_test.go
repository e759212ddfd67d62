package worker

import (
	"context"
	"fmt"
	"testing"

	"mplock/dmutex"
)

// TestMeshWaiting: a message counts as waiting from the moment the kernel
// holds it, before any reader has run (the loop of a process that enters
// without messages must see it, or it never lets its reader run); after it
// is handled nothing waits; a link that ended waits no more once the loop
// has seen its end, though its socket stays readable.
func TestMeshWaiting(t *testing.T) {
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
	p0 := dial(t, fmt.Sprintf("HELLO 0 %d\n", spec.Secret))
	defer p0.Close()
	res := <-done
	if res.err != nil {
		t.Fatalf("connect: %v", res.err)
	}
	m := res.m
	defer m.close()
	if m.waiting() {
		t.Fatal("waiting before anything was sent")
	}
	// A write on a Unix stream socket is in the receiver's queue when it
	// returns.
	if _, err := p0.Write([]byte("REQUEST 0 1\n")); err != nil {
		t.Fatal(err)
	}
	if !m.waiting() {
		t.Fatal("a message the kernel holds is not waiting (no reader has run yet)")
	}
	m.start()
	if in := <-m.in; in.m != (dmutex.Message{Kind: dmutex.Request, From: 0, To: 1, TS: 1}) {
		t.Fatalf("received %+v", in)
	}
	if m.waiting() {
		t.Fatal("waiting after the only message was handled")
	}
	p0.Close()
	if !m.waiting() {
		t.Fatal("the end of a link is not waiting")
	}
	if in := <-m.in; in.down == nil {
		t.Fatalf("received %+v, want the end of the link", in)
	}
	m.ended(0)
	if m.waiting() {
		t.Fatal("an ended link still waiting")
	}
}
