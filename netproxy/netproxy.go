// Package netproxy is a TCP proxy for one link of a network, that can cut
// the link the way a partition does and heal it again. It is what lets
// `mplock cluster` partition a cluster of real processes on one machine
// without root: every node dials every peer through a proxy of its own
// (replica.Config.PeerAddr, `mplock serve --peer-addr`), and the
// coordinator cuts the proxies of the links it wants down.
//
// A cut forwards nothing, in either direction, on any connection, and
// closes nothing: neither end gets a FIN, an RST or an error, and the
// proxy's kernel goes on acknowledging what it receives until its socket
// buffers fill, so TCP's own retransmission timeouts do not fire either.
// Only a peer's own clock can tell it that the link is gone, as with a
// pulled cable. Connections made during a cut are accepted and never
// forwarded. Heal closes every connection that lived through the cut
// (their streams lost bytes, and no protocol could resume them) and
// forwards new ones again: raft and the client protocol redial.
//
// This is internal/netfault's proxy grown up for non-test code: a
// context, errors instead of t.Fatal, and Heal. See also Jepsen's and
// toxiproxy's "timeout" toxic, which drops data and closes nothing the same
// way.
package netproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the proxy's own connect to its target.
const dialTimeout = 2 * time.Second

// Proxy forwards every connection made to Addr to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	stop func() bool // unhooks Close from the context

	mu     sync.Mutex
	cut    chan struct{} // set (closed) while the link is cut; nil when it is up
	conns  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup
}

// link is one proxied connection: the accepted side and the dialled one.
type link struct {
	in, out net.Conn
	// cut is the cut this link lived through (nil: none yet); Heal closes
	// such links.
	cut chan struct{}
	// halves counts the directions that ended with an end of file; at 2
	// the link is done.
	halves int
}

// Listen starts a proxy on addr (host:port; port 0 for a free one) that
// forwards to target. It runs until ctx ends or Close.
func Listen(ctx context.Context, addr, target string) (*Proxy, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netproxy: listen for %s: %w", target, err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}}
	p.stop = context.AfterFunc(ctx, func() { p.Close() })
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Cut stops all forwarding, both ways, on every connection, now and until
// Heal. Bytes in flight are dropped. Cutting a cut link does nothing.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut != nil || p.closed {
		return
	}
	p.cut = make(chan struct{})
	close(p.cut)
	for l := range p.conns {
		l.cut = p.cut
	}
}

// Heal ends a cut: the connections that lived through it are closed, and
// new ones are forwarded. Healing a link that is up does nothing.
func (p *Proxy) Heal() {
	p.mu.Lock()
	var stale []*link
	if p.cut != nil {
		for l := range p.conns {
			if l.cut != nil {
				stale = append(stale, l)
				delete(p.conns, l)
			}
		}
		p.cut = nil
	}
	p.mu.Unlock()
	for _, l := range stale {
		l.close()
	}
}

// IsCut reports whether the link is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut != nil
}

// Conns is the number of connections the proxy holds open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, closes every connection, and waits for the
// proxy's goroutines. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stop()
	conns := p.conns
	p.conns = map[*link]struct{}{}
	p.mu.Unlock()
	err := p.ln.Close()
	for l := range conns {
		l.close()
	}
	return err
}

// Wait waits until a closed proxy's goroutines have all returned.
func (p *Proxy) Wait() { p.wg.Wait() }

func (l *link) close() {
	l.in.Close()
	if l.out != nil {
		l.out.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve dials the target for an accepted connection (not while the link
// is cut: a connection made during a cut hangs, as a SYN into a partition
// would, until Heal closes it) and pipes both ways.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	l := &link{in: c}
	cut, ok := p.track(l)
	if !ok {
		return
	}
	if cut != nil {
		return // held open and silent; Heal or Close closes it
	}
	s, err := net.DialTimeout("tcp", p.target, dialTimeout)
	if err != nil {
		p.drop(l)
		return
	}
	p.mu.Lock()
	if p.closed || l.cut != nil {
		// Closed or cut while dialling: the same as above.
		closed := p.closed
		l.out = s
		p.mu.Unlock()
		if closed {
			l.close()
		}
		return
	}
	l.out = s
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pipe(l, s, c)
	go p.pipe(l, c, s)
}

// track records l; it returns the current cut (nil if the link is up), and
// false if the proxy is closed.
func (p *Proxy) track(l *link) (chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		l.close()
		return nil, false
	}
	p.conns[l] = struct{}{}
	l.cut = p.cut
	return p.cut, true
}

func (p *Proxy) drop(l *link) {
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
	l.close()
}

// halfDone counts one direction of l as ended; it reports whether the
// other had ended too, and then forgets l (the caller closes it).
func (p *Proxy) halfDone(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.halves++
	return l.halves == 2
}

// cutOf returns the cut l lives through, or nil.
func (p *Proxy) cutOf(l *link) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return l.cut
}

// pipe copies src to dst until either side closes or the link is cut;
// after a cut it returns without closing anything (Heal or Close does).
func (p *Proxy) pipe(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		if p.cutOf(l) != nil {
			return
		}
		n, err := src.Read(buf)
		if p.cutOf(l) != nil {
			return // what was read is dropped
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				p.drop(l)
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok && !p.halfDone(l) {
					tc.CloseWrite() // pass the FIN on; the other way may go on
					return
				}
			}
			p.drop(l)
			return
		}
	}
}
