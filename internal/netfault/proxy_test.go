package netfault

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestBlackholeForwardsNothingAndClosesNothing: before Blackhole, bytes go
// both ways; after it, neither end receives anything, nor an end of file,
// nor an error on write.
func TestBlackholeForwardsNothingAndClosesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := Start(t, ln.Addr().String())
	client, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	cr, sr := bufio.NewReader(client), bufio.NewReader(server)
	client.Write([]byte("ping\n"))
	if line, err := sr.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("server read %q, %v", line, err)
	}
	server.Write([]byte("pong\n"))
	if line, err := cr.ReadString('\n'); err != nil || line != "pong\n" {
		t.Fatalf("client read %q, %v", line, err)
	}

	p.Blackhole()
	if _, err := client.Write([]byte("lost\n")); err != nil {
		t.Fatalf("write into the black hole: %v, want it accepted", err)
	}
	if _, err := server.Write([]byte("lost\n")); err != nil {
		t.Fatalf("write into the black hole: %v, want it accepted", err)
	}
	// Nothing arrives, and no end of file: each read runs into its deadline.
	for name, r := range map[string]*bufio.Reader{"server": sr, "client": cr} {
		c := map[string]net.Conn{"server": server, "client": client}[name]
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		line, err := r.ReadString('\n')
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s read %q, %v after Blackhole; want nothing until its deadline", name, line, err)
		}
	}
}
