package coordinator

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMeshIsolatesOneNode: with three echo servers standing for the
// nodes' raft ports, the mesh forwards every link; isolating n2 silences
// n1->n2, n2->n3 and n3->n2 and leaves n1<->n3 alone; heal restores it.
func TestMeshIsolatesOneNode(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	var targets []string
	for range ids {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					sc := bufio.NewScanner(c)
					for sc.Scan() {
						c.Write([]byte(sc.Text() + "\n"))
					}
				}()
			}
		}()
		targets = append(targets, ln.Addr().String())
	}
	m, err := newMesh(context.Background(), ids, targets)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	if got := m.peerAddrs(0); !strings.HasPrefix(got, "n2=127.0.0.1:") || !strings.Contains(got, ",n3=127.0.0.1:") {
		t.Fatalf("peerAddrs(n1) = %q", got)
	}
	reaches := func(from, to int) bool {
		c, err := net.Dial("tcp", m.proxies[from][to].Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		c.Write([]byte("hi\n"))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s->%s: %v; want an answer or silence, never an error", ids[from], ids[to], err)
		}
		return line == "hi\n"
	}
	all := func(want func(i, j int) bool) {
		t.Helper()
		for i := range ids {
			for j := range ids {
				if i != j && reaches(i, j) != want(i, j) {
					t.Errorf("%s->%s reaches: %v, want %v", ids[i], ids[j], !want(i, j), want(i, j))
				}
			}
		}
	}
	all(func(i, j int) bool { return true })
	m.isolate(1)
	all(func(i, j int) bool { return i != 1 && j != 1 })
	m.heal()
	all(func(i, j int) bool { return true })
}
