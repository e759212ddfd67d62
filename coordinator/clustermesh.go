package coordinator

import (
	"context"
	"fmt"
	"strings"

	"mplock/internal/freeport"
	"mplock/netproxy"
)

// mesh is the network between the nodes of a cluster run: one TCP proxy
// per ordered pair of nodes, through which the first dials the second's
// raft port (raft and the forwarding of requests share it). Node i is
// started with `--peer-addr` naming, for every other node j, the proxy
// of the link i->j; cutting every link to and from a node isolates it the
// way a partition does (package netproxy: no FIN, no RST).
type mesh struct {
	ids     []string
	proxies [][]*netproxy.Proxy // [from][to]; nil on the diagonal
}

// newMesh starts the proxies of the links between nodes whose raft
// listeners are at raftAddrs, on free loopback ports.
func newMesh(ctx context.Context, ids, raftAddrs []string) (*mesh, error) {
	m := &mesh{ids: ids, proxies: make([][]*netproxy.Proxy, len(ids))}
	for i := range ids {
		m.proxies[i] = make([]*netproxy.Proxy, len(ids))
		for j := range ids {
			if i == j {
				continue
			}
			p, err := netproxy.Listen(ctx, "127.0.0.1:0", raftAddrs[j])
			if err != nil {
				m.close()
				return nil, fmt.Errorf("coordinator: the link %s->%s: %w", ids[i], ids[j], err)
			}
			m.proxies[i][j] = p
		}
	}
	return m, nil
}

// peerAddrs is node from's --peer-addr: "n2=127.0.0.1:P,n3=...".
func (m *mesh) peerAddrs(from int) string {
	var b strings.Builder
	for j, p := range m.proxies[from] {
		if p == nil {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.ids[j] + "=" + p.Addr())
	}
	return b.String()
}

// isolate cuts every link to and from node k.
func (m *mesh) isolate(k int) {
	for j := range m.ids {
		if j != k {
			m.proxies[k][j].Cut()
			m.proxies[j][k].Cut()
		}
	}
}

// heal restores every link.
func (m *mesh) heal() {
	for i := range m.proxies {
		for _, p := range m.proxies[i] {
			if p != nil {
				p.Heal()
			}
		}
	}
}

// cut reports whether the link from->to is cut.
func (m *mesh) cut(from, to int) bool { return m.proxies[from][to].IsCut() }

// close stops every proxy and waits for their goroutines.
func (m *mesh) close() {
	for i := range m.proxies {
		for _, p := range m.proxies[i] {
			if p != nil {
				p.Close()
			}
		}
	}
	for i := range m.proxies {
		for _, p := range m.proxies[i] {
			if p != nil {
				p.Wait()
			}
		}
	}
}

// freePorts returns n loopback addresses with ports free a moment ago,
// below the kernel's ephemeral range (internal/freeport). Another program
// can take one before the node binds it: the node then fails to start, and
// the run says so.
func freePorts(n int) ([]string, error) {
	addrs, err := freeport.Loopback(n)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return addrs, nil
}
