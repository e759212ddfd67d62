// Package netlimit bounds how many connections a listener has open at
// once, so that a server's side port (metrics, health) cannot take the
// file descriptors its main port needs.
package netlimit

import (
	"net"
	"sync"
)

// Listener returns a listener that has at most n of l's connections open
// at once: Accept waits while n are open (new connections wait in the
// kernel's accept queue meanwhile, costing this process nothing) and
// goes on when one is closed. Closing the listener ends a waiting Accept
// with net.ErrClosed. This is golang.org/x/net/netutil.LimitListener's
// contract; x/net is not otherwise a dependency of this module.
func Listener(l net.Listener, n int) net.Listener {
	return &listener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type listener struct {
	net.Listener
	sem       chan struct{} // one token per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// conn gives its place back once, on its first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
