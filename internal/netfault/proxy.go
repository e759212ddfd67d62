// Package netfault is a TCP proxy for tests that can cut a link the way a
// network partition does: with nothing at all. After Blackhole the proxy
// forwards nothing in either direction, but keeps every socket open, so
// neither end gets a FIN, an RST or an error; its kernel even goes on
// acknowledging what it receives, so that TCP's own retransmission timeouts
// never fire. Only a peer's own clock can tell it that the link is gone.
package netfault

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards every connection made to Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	holed  chan struct{} // closed by Blackhole
	once   sync.Once

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target until the
// test ends, when it closes every connection.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, holed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackhole stops all forwarding, both ways, on every connection, now and
// for good; new connections are accepted and never forwarded. Bytes read
// but not yet written are dropped.
func (p *Proxy) Blackhole() { p.once.Do(func() { close(p.holed) }) }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			return
		}
		p.wg.Add(2)
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// track records c and s for close; false if the proxy is closing.
func (p *Proxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		s.Close()
		return false
	}
	p.conns = append(p.conns, c, s)
	return true
}

// pipe copies from src to dst until the link is black-holed (then it
// stops reading and waits, leaving both sockets open) or either side
// closes.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-p.holed:
			return
		default:
		}
		n, err := src.Read(buf)
		select {
		case <-p.holed:
			return // what was read is dropped
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			}
			return
		}
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}
