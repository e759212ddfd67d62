package lockdtest

import (
	"fmt"
	"net"
	"testing"

	"mplock/internal/freeport"
	"mplock/lockd/replica"
)

// Peers prepares the members n1..nN of an in-process cluster: a loopback
// listener for each one's clients (closed when the test ends, unless a
// server closed it first), and each one's raft address, which every member
// must know before any starts: picked below the ephemeral range, where no
// outgoing connection takes one meanwhile (internal/freeport).
func Peers(t testing.TB, n int) ([]net.Listener, []replica.Peer) {
	t.Helper()
	raftAddrs, err := freeport.Loopback(n)
	if err != nil {
		t.Fatal(err)
	}
	var lns []net.Listener
	var peers []replica.Peer
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		lns = append(lns, ln)
		peers = append(peers, replica.Peer{ID: fmt.Sprintf("n%d", i+1), Addr: raftAddrs[i]})
	}
	return lns, peers
}
