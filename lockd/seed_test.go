package lockd

import (
	"strings"
	"testing"
)

// TestSeedVerbsOnOneServer: the seed's PREEMPT, RELEASE and CHECK on a
// single server: a preempt takes a free name and fails at once on a taken
// one, naming the holder; only the owner's RELEASE releases; CHECK lists
// the holders to anyone, and needs no cluster. The cluster verbs say that
// this server is none.
func TestSeedVerbsOnOneServer(t *testing.T) {
	_, addr := startServer(t, Config{})
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.send("HELLO alice")
	a.expect("OK HELLO ")
	a.send("PREEMPT file_A")
	tok := tokenOf(t, a.expect("OK LOCKED file_A WRITE token="))
	b.send("PREEMPT file_A")
	b.expect("ERR locked file_A is locked by session 1 (alice) WRITE")
	b.send("RELEASE file_A")
	b.expect("ERR notheld ")
	b.send("CHECK file_A consistency=stale")
	h := b.expect("HOLDER file_A WRITE token=" + tok + " session=1 client=alice ")
	if !strings.Contains(h, " since=") {
		t.Fatalf("CHECK's holder line %q is not STATUS's", h)
	}
	b.expect("OK CHECK file_A held=true index=0 consistency=consistent node=- leader=-")
	a.send("RELEASE file_A")
	a.expect("OK UNLOCKED file_A token=" + tok)
	b.send("CHECK file_A")
	b.expect("OK CHECK file_A held=false ")
	b.send("PREEMPT file_A req=1")
	b.expect("OK LOCKED file_A WRITE ")
	for _, verb := range []string{"MEMBERS", "RESUME 1 secret", "MEMBER REMOVE n1"} {
		b.send(verb)
		b.expect("ERR unknown " + strings.Fields(verb)[0])
	}
}
