package cluster

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mplock/lockd"
	"mplock/lockd/lockdtest"
	"mplock/lockd/replica"
)

// safety bounds every wait in these tests; nothing waits for it to pass.
const safety = 20 * time.Second

// member is one node: a lockd.Server over a Backend, on loopback.
type member struct {
	id   string
	addr string // client address
	be   *Backend
	srv  *lockd.Server
	ln   net.Listener
	cfg  Config
}

type testCluster struct {
	t       *testing.T
	members []*member
}

// newTestCluster starts n members (short raft timeouts, data on disk),
// adjusted by tune, and stops them when the test ends.
func newTestCluster(t *testing.T, n int, tune func(*Config)) *testCluster {
	t.Helper()
	dir := t.TempDir()
	c := &testCluster{t: t}
	lns, peers := lockdtest.Peers(t, n)
	for i := range n {
		cfg := Config{Replica: replica.Config{NodeID: peers[i].ID, RaftListen: peers[i].Addr, DataDir: filepath.Join(dir, peers[i].ID),
			ClientAddr: lns[i].Addr().String(), InitialCluster: peers, Secret: "cluster-test-secret",
			HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 50 * time.Millisecond,
			SessionTTL: 5 * time.Second}}
		if tune != nil {
			tune(&cfg)
		}
		c.members = append(c.members, &member{id: peers[i].ID, addr: lns[i].Addr().String(), ln: lns[i], cfg: cfg})
	}
	t.Cleanup(c.stop)
	for _, m := range c.members {
		c.start(m)
	}
	return c
}

func (c *testCluster) start(m *member) {
	c.t.Helper()
	be, err := New(m.cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	srv, err := lockd.NewServer(lockd.Config{Replicated: be})
	if err != nil {
		c.t.Fatal(err)
	}
	if m.ln == nil {
		if m.ln, err = net.Listen("tcp", m.addr); err != nil {
			c.t.Fatal(err)
		}
	}
	m.be, m.srv = be, srv
	go srv.Serve(m.ln)
}

// stopMember shuts one member down gracefully (leadership handed over).
func (c *testCluster) stopMember(m *member) {
	if m.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), safety)
	defer cancel()
	m.srv.Shutdown(ctx)
	m.be.Close(ctx)
	m.srv, m.be, m.ln = nil, nil, nil
}

func (c *testCluster) stop() {
	for _, m := range c.members {
		c.stopMember(m)
	}
}

// leader waits until a member leads and is ready, and returns it.
func (c *testCluster) leader() *member {
	c.t.Helper()
	deadline := time.Now().Add(safety)
	for time.Now().Before(deadline) {
		for _, m := range c.members {
			if m.be != nil {
				if st := m.be.node.Status(); st.State == "Leader" && st.Ready {
					return m
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return nil
}

// settled waits until every live member knows every member's client
// address (each records its own once it first sees a leader).
func (c *testCluster) settled() {
	c.t.Helper()
	deadline := time.Now().Add(safety)
	for {
		ok := true
		for _, m := range c.members {
			if m.be == nil {
				continue
			}
			for _, x := range m.be.node.Status().Members {
				ok = ok && x.ClientAddr != ""
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatal("the members never learned each other's client addresses")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *testCluster) follower() *member {
	l := c.leader()
	for _, m := range c.members {
		if m != l && m.be != nil {
			// Ready: it has heard from the leader, and applied what it
			// knows committed (a stale read there is answered).
			for deadline := time.Now().Add(safety); !m.be.node.Status().Ready; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					c.t.Fatalf("follower %s never became ready: %+v", m.id, m.be.node.Status())
				}
			}
			return m
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// line is a connection speaking the protocol by hand.
type line struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialLine(t *testing.T, addr string) *line {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &line{t: t, c: c, br: bufio.NewReader(c)}
}

func (l *line) send(s string) {
	l.t.Helper()
	if _, err := l.c.Write([]byte(s + "\n")); err != nil {
		l.t.Fatalf("send %q: %v", s, err)
	}
}

func (l *line) expect(prefix string) string {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(safety))
	s, err := l.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(s, prefix) {
		l.t.Fatalf("got %q, %v; want a line starting %q", s, err, prefix)
	}
	return strings.TrimSuffix(s, "\n")
}

// field returns key's value in a reply line.
func field(t *testing.T, s, key string) string {
	t.Helper()
	for _, f := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	t.Fatalf("no %s= in %q", key, s)
	return ""
}
