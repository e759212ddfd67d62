package replica

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// One TCP port carries raft and the cluster's RPC (forwarded writes, read
// indexes, keepalives, joins), as rqlite's tcp.Mux does: the first byte of
// every connection says which, and the next 32 bytes prove the dialer knows
// the cluster secret. Forwarding thus takes the same path, through the same
// per-link address overrides, as raft itself: a partition cuts both.
const (
	connRaft byte = 'R'
	connRPC  byte = 'C'
	// handshakeTimeout bounds how long an accepted connection may take to
	// send its kind and proof.
	handshakeTimeout = 5 * time.Second
	// maxHandshakes bounds the connections in their handshake at once; a
	// new one beyond it closes the one that has waited longest. A peer
	// sends its handshake as soon as it connects, so a flood of silent
	// connections costs a bounded number of goroutines and never keeps
	// peers out.
	maxHandshakes = 64
)

// proof is what a dialer sends after the kind byte: SHA-256 of a fixed
// label and the secret. The proof of no secret is a public constant, so a
// mux must never be given "": NewNode refuses a Config without a secret
// (ErrNoSecret) before it makes one. It keeps out peers that do not know
// the secret; it is not encryption, and an eavesdropper can replay it.
func proof(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte("mplock-cluster-v1\x00" + secret))
}

// mux accepts connections on the raft port and hands each to raft's stream
// layer or to the RPC server, by its first byte.
type mux struct {
	ln      net.Listener
	proof   [sha256.Size]byte
	log     *slog.Logger
	raft    chan net.Conn
	rpc     func(net.Conn)
	shaking *list.List // connections in their handshake, oldest first (under mu)
	closed  chan struct{}
	once    sync.Once
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{} // accepted, not yet handed to raft; RPC conns until they end
	// refusals counts connections refused for a wrong secret since the
	// last log line about them (lastRefusal): one line a second at most.
	refusals    int
	lastRefusal time.Time
}

func newMux(ln net.Listener, secret string, log *slog.Logger) *mux {
	return &mux{ln: ln, proof: proof(secret), log: log, raft: make(chan net.Conn), shaking: list.New(),
		closed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
}

// serve accepts until the listener is closed; rpc serves each RPC
// connection (and must return when the connection is closed).
func (m *mux) serve(rpc func(net.Conn)) {
	m.rpc = rpc
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			c, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.closed:
					return
				default:
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				m.log.Error("replica: accept on the raft port failed; no longer accepting", "err", err)
				return
			}
			m.track(c, true)
			e := m.startHandshake(c)
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				m.handle(c, e)
			}()
		}
	}()
}

func (m *mux) track(c net.Conn, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.conns[c] = struct{}{}
	} else {
		delete(m.conns, c)
	}
}

// startHandshake records c as in its handshake, closing the oldest such
// connection if there are too many.
func (m *mux) startHandshake(c net.Conn) *list.Element {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shaking.Len() >= maxHandshakes {
		m.shaking.Front().Value.(net.Conn).Close()
		m.shaking.Remove(m.shaking.Front())
	}
	return m.shaking.PushBack(c)
}

func (m *mux) endHandshake(e *list.Element) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.shaking.Remove(e) // a no-op if it was evicted
}

func (m *mux) handle(c net.Conn, e *list.Element) {
	var hdr [1 + sha256.Size]byte
	c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	_, err := io.ReadFull(c, hdr[:])
	m.endHandshake(e)
	if err != nil {
		m.track(c, false)
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	if subtle.ConstantTimeCompare(hdr[1:], m.proof[:]) != 1 {
		m.mu.Lock()
		m.refusals++
		n, now := m.refusals, time.Now()
		log := now.Sub(m.lastRefusal) >= time.Second
		if log {
			m.refusals, m.lastRefusal = 0, now
		}
		m.mu.Unlock()
		if log {
			m.log.Warn("replica: refused a connection on the raft port: wrong cluster secret", "remote", c.RemoteAddr().String(),
				"refused_since_last_line", n)
		}
		m.track(c, false)
		c.Close()
		return
	}
	switch hdr[0] {
	case connRaft:
		// raft's transport owns it now; it stays tracked until raft closes
		// it, so that closing the mux cuts raft's inbound links too.
		select {
		case m.raft <- &trackedConn{Conn: c, m: m}:
		case <-m.closed:
			m.track(c, false)
			c.Close()
		}
	case connRPC:
		m.rpc(c)
		m.track(c, false)
		c.Close()
	default:
		m.log.Warn("replica: refused a connection on the raft port: unknown kind", "kind", hdr[0], "remote", c.RemoteAddr().String())
		m.track(c, false)
		c.Close()
	}
}

// trackedConn leaves the mux's set when raft closes it.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.m.track(c.Conn, false) })
	return c.Conn.Close()
}

// close stops accepting, closes every connection it still owns, and waits
// for its goroutines (the RPC handlers return once their connections close).
func (m *mux) close() {
	m.once.Do(func() {
		close(m.closed)
		m.ln.Close()
		m.mu.Lock()
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.wg.Wait()
	})
}

// dial connects to a node's raft port as kind.
func dialKind(kind byte, secret, addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	p := proof(secret)
	hdr := append([]byte{kind}, p[:]...)
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(hdr); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// streamLayer is raft's side of the mux (raft.StreamLayer).
type streamLayer struct {
	m      *mux
	secret string
	addr   net.Addr
	closed chan struct{}
	once   sync.Once
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raft:
		return c, nil
	case <-s.closed:
		return nil, errors.New("replica: raft stream closed")
	case <-s.m.closed:
		return nil, errors.New("replica: raft port closed")
	}
}

func (s *streamLayer) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

func (s *streamLayer) Addr() net.Addr { return s.addr }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialKind(connRaft, s.secret, string(addr), timeout)
}

// advertisedAddr is a net.Addr for a configured advertise address.
type advertisedAddr string

func (a advertisedAddr) Network() string { return "tcp" }
func (a advertisedAddr) String() string  { return string(a) }

// addrProvider lets raft's transport dial each peer at the address
// Config.PeerAddr gives (raft falls back to the member's own address on an
// error).
type addrProvider struct {
	peerAddr func(string) (string, bool)
}

var errNoOverride = errors.New("replica: no address override")

func (p addrProvider) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if p.peerAddr != nil {
		if a, ok := p.peerAddr(string(id)); ok {
			return raft.ServerAddress(a), nil
		}
	}
	return "", errNoOverride
}

// resolve is the address to dial for node id, whose own address is addr.
func resolve(peerAddr func(string) (string, bool), id raft.ServerID, addr raft.ServerAddress) string {
	if peerAddr != nil && id != "" {
		if a, ok := peerAddr(string(id)); ok {
			return a
		}
	}
	return string(addr)
}

// listenRaft binds the raft port.
func listenRaft(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("replica: raft listen %s: %w", addr, err)
	}
	return ln, nil
}
