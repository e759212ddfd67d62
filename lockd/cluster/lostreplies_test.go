package cluster

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"mplock/internal/proctest"
	"mplock/lockd"
	"mplock/lockd/lockdtest"
)

// replyHolder is a proxy for one client connection to a member that, once
// told to, forwards the client's requests but drops the member's replies
// (the member applies them; the client never hears), and then cuts the
// link both ways without FIN or RST: the client notices only by its own
// clock (an unanswered PING).
type replyHolder struct {
	ln      net.Listener
	target  string
	holding atomic.Bool
	cut     atomic.Bool
	dropped atomic.Int64 // reply lines dropped
	mu      sync.Mutex
	conns   []net.Conn
}

func newReplyHolder(t *testing.T, target string) *replyHolder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyHolder{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(s, c, false)
			go p.pipe(c, s, true)
		}
	}()
	return p
}

// pipe copies src to dst; replies (from the member) are dropped while
// holding, and nothing is forwarded once cut.
func (p *replyHolder) pipe(dst, src net.Conn, replies bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.cut.Load() {
			if replies && p.holding.Load() {
				p.dropped.Add(int64(strings.Count(string(buf[:n]), "\n")))
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // closed, or the test's end
		}
	}
}

// TestClientLostRepliesAgree: one Go client, 30 goroutines each locking
// and unlocking a name of its own, at a member whose replies are then
// withheld (it applies what it is sent; the client hears nothing) and
// whose link is cut without FIN; the client resumes at another member and
// sends again what had no answer. Afterwards the client and the cluster
// agree (consistent CHECKs): the session holds nothing no goroutine knows
// of, no Lease is live on a lock the session does not hold with its
// token, and every name can be locked again. With more changes in flight
// than the cluster keeps results of (RequestWindow), the oldest retries
// were refused: locks leaked, Leases stayed live on released locks, names
// stuck in the client.
func TestClientLostRepliesAgree(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	l := c.leader()
	c.settled()
	var f *member
	for _, m := range c.members {
		if m != l {
			f = m
			break
		}
	}
	p := newReplyHolder(t, f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	var others []string
	for _, m := range c.members {
		if m != f {
			others = append(others, m.addr)
		}
	}
	a, err := lockd.Dial(ctx, p.ln.Addr().String()+","+strings.Join(others, ","), lockd.Options{Client: "many"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	churn := lockdtest.StartChurn(a, 30, "leak", safety)
	proctest.Eventually(t, "rounds before the fault", func() bool { return churn.Rounds() >= 100 })
	p.holding.Store(true)
	proctest.Eventually(t, "replies withheld", func() bool { return p.dropped.Load() >= lockd.RequestWindow })
	p.cut.Store(true)
	after := churn.Rounds()
	proctest.Eventually(t, "rounds after the resume", func() bool { return churn.Rounds() >= after+100 || a.Err() != nil })
	live, _ := churn.Stop()
	if err := a.Err(); err != nil {
		t.Fatalf("the client ended: %v", err)
	}
	if a.Server() == p.ln.Addr().String() {
		t.Fatal("the client never left the member whose replies were withheld")
	}
	checker, err := lockd.Dial(ctx, l.addr, lockd.Options{Client: "checker"})
	if err != nil {
		t.Fatal(err)
	}
	defer checker.Close()
	lockdtest.CheckAgreement(ctx, t, a, checker, churn.Names(), live, safety/2)
}
