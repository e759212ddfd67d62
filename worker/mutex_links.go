package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"mplock/dmutex"
)

// readBuffer bounds what a link buffers: a line longer than this is garbage
// and is rejected without being kept.
const readBuffer = 4096

// inbound is what a link's reader hands the process's loop: a message, a
// rejected line (err), or the end of the link (down).
type inbound struct {
	m    dmutex.Message
	from int
	err  error
	down error
}

// link is one connection to another process of the run, used both ways.
type link struct {
	peer int
	conn net.Conn
	br   *bufio.Reader
	buf  []byte
	down bool
}

// mesh is a process's links to its neighbours. Send is called only by the
// process's loop; each link has a reader goroutine feeding in.
type mesh struct {
	me    int
	links [dmutex.MaxIDs]*link
	in    chan inbound
	done  chan struct{}
	watch []watched // the links' descriptors, for readable
	poll  []pollFD  // scratch for readable
}

// watched is a link's socket descriptor, -1 once its reader has stopped.
// The descriptor stays valid while the mesh is open: links are closed only
// by close.
type watched struct {
	peer int
	fd   int
}

var _ dmutex.Transport = (*mesh)(nil)

// listen opens the process's listener: a Unix socket named SocketName(id)
// in the working directory, or a loopback TCP port.
func listen(spec *MutexSpec) (net.Listener, error) {
	var ln net.Listener
	var err error
	if spec.Network == NetworkUnix {
		ln, err = net.Listen("unix", SocketName(spec.ID))
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("worker: listen: %w", err)
	}
	return ln, nil
}

// connect builds the mesh: it dials every neighbour with a higher id and
// introduces itself with HELLO and the run's secret, then accepts one link
// from every neighbour with a lower id. Connections that do not introduce
// themselves properly are refused and reported to reject; the others are not
// affected. The listener is closed when connect returns.
func connect(ctx context.Context, spec *MutexSpec, ln net.Listener, addrs MutexAddrs, reject func(string)) (*mesh, error) {
	defer ln.Close()
	m := &mesh{me: spec.ID, in: make(chan inbound, 4096), done: make(chan struct{})}
	deadline := time.Now().Add(spec.Timeout)
	pending := map[int]bool{}
	for _, j := range spec.Algorithm.Neighbors(spec.ID, spec.N) {
		if j < spec.ID {
			pending[j] = true
			continue
		}
		addr, ok := addrs[j]
		if !ok {
			m.close()
			return nil, fmt.Errorf("worker: no address for %s", dmutex.Name(j))
		}
		conn, err := net.DialTimeout(spec.Network, addr, time.Until(deadline))
		if err != nil {
			m.close()
			return nil, fmt.Errorf("worker: connect to %s at %s: %w", dmutex.Name(j), addr, err)
		}
		hello := dmutex.AppendMessage(nil, dmutex.Message{Kind: dmutex.Hello, From: spec.ID, TS: spec.Secret})
		if _, err := conn.Write(hello); err != nil {
			conn.Close()
			m.close()
			return nil, fmt.Errorf("worker: introduce to %s: %w", dmutex.Name(j), err)
		}
		m.links[j] = &link{peer: j, conn: conn, br: bufio.NewReaderSize(conn, readBuffer)}
	}
	if err := m.accept(ctx, spec, ln, pending, deadline, reject); err != nil {
		m.close()
		return nil, err
	}
	m.watchLinks()
	return m, nil
}

type hello struct {
	conn net.Conn
	br   *bufio.Reader
	from int
	err  error
}

func (m *mesh) accept(ctx context.Context, spec *MutexSpec, ln net.Listener, pending map[int]bool, deadline time.Time, reject func(string)) error {
	if len(pending) == 0 {
		return nil
	}
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(deadline)
	}
	hellos := make(chan hello)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				select {
				case hellos <- hello{err: err}:
				case <-stop:
				}
				return
			}
			// Each newcomer gets its own goroutine, so that one that
			// connects and says nothing cannot hold up the others.
			go func() {
				h := readHello(conn, spec.Secret, deadline)
				select {
				case hellos <- h:
				case <-stop:
					conn.Close()
				}
			}()
		}
	}()
	for len(pending) > 0 {
		var h hello
		select {
		case h = <-hellos:
		case <-ctx.Done():
			return ctx.Err()
		}
		if h.conn == nil {
			var missing []string
			for j := range pending {
				missing = append(missing, dmutex.Name(j))
			}
			return fmt.Errorf("worker: waiting for %s to connect: %w", strings.Join(missing, ", "), h.err)
		}
		if h.err == nil && !pending[h.from] {
			h.err = fmt.Errorf("%s is not expected (or already connected)", dmutex.Name(h.from))
		}
		if h.err != nil {
			reject(fmt.Sprintf("refused a connection: %v", h.err))
			h.conn.Close()
			continue
		}
		delete(pending, h.from)
		m.links[h.from] = &link{peer: h.from, conn: h.conn, br: h.br}
	}
	return nil
}

// readHello reads a newcomer's first line, which must be HELLO with the
// run's secret.
func readHello(conn net.Conn, secret uint64, deadline time.Time) hello {
	conn.SetReadDeadline(deadline)
	defer conn.SetReadDeadline(time.Time{})
	br := bufio.NewReaderSize(conn, readBuffer)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return hello{conn: conn, err: fmt.Errorf("no introduction: %w", err)}
	}
	msg, err := dmutex.ParseMessage(line)
	switch {
	case err != nil:
		return hello{conn: conn, err: err}
	case msg.Kind != dmutex.Hello:
		return hello{conn: conn, err: fmt.Errorf("first message %v, want HELLO", msg.Kind)}
	case msg.TS != secret:
		return hello{conn: conn, err: fmt.Errorf("%s does not know the run's secret", dmutex.Name(msg.From))}
	}
	return hello{conn: conn, br: br, from: msg.From}
}

// start launches a reader goroutine per link.
func (m *mesh) start() {
	for _, l := range m.links {
		if l != nil {
			go m.read(l)
		}
	}
}

// watchLinks notes the links' descriptors, for readable.
func (m *mesh) watchLinks() {
	for _, l := range m.links {
		if l == nil {
			continue
		}
		fd := -1
		if sc, ok := l.conn.(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				rc.Control(func(d uintptr) { fd = int(d) })
			}
		}
		m.watch = append(m.watch, watched{peer: l.peer, fd: fd})
	}
}

// read turns a link's lines into inbound values until the link ends. Every
// line is parsed strictly, and must come from the process at the other end.
func (m *mesh) read(l *link) {
	send := func(in inbound) bool {
		select {
		case m.in <- in:
			return true
		case <-m.done:
			return false
		}
	}
	for {
		line, err := l.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = l.br.ReadSlice('\n')
			}
			if !send(inbound{from: l.peer, err: fmt.Errorf("%w: a line longer than %d bytes", dmutex.ErrMalformed, readBuffer)}) {
				return
			}
			if err != nil {
				send(inbound{from: l.peer, down: err})
				return
			}
			continue
		}
		if err != nil {
			if len(line) > 0 {
				send(inbound{from: l.peer, err: fmt.Errorf("%w: %q cut off", dmutex.ErrMalformed, line)})
			}
			send(inbound{from: l.peer, down: err})
			return
		}
		msg, err := dmutex.ParseMessage(line)
		if err == nil && msg.From != l.peer {
			err = fmt.Errorf("%w: %q claims to come from %s", dmutex.ErrMalformed, line, dmutex.Name(msg.From))
		}
		if err == nil && msg.Kind == dmutex.Hello {
			err = fmt.Errorf("%w: a second HELLO", dmutex.ErrMalformed)
		}
		msg.To = m.me
		if !send(inbound{m: msg, from: l.peer, err: err}) {
			return
		}
	}
}

// Send writes m on the link to m.To. A link that failed once stays down:
// the process at the other end is gone.
func (m *mesh) Send(msg dmutex.Message) error {
	if msg.To < 0 || msg.To >= len(m.links) || m.links[msg.To] == nil {
		return fmt.Errorf("worker: no link to %s", dmutex.Name(msg.To))
	}
	l := m.links[msg.To]
	if l.down {
		return fmt.Errorf("worker: send %v to %s: %w", msg.Kind, dmutex.Name(msg.To), errLinkDown)
	}
	l.buf = dmutex.AppendMessage(l.buf[:0], msg)
	if _, err := l.conn.Write(l.buf); err != nil {
		l.down = true
		return fmt.Errorf("worker: send %v to %s: %w", msg.Kind, dmutex.Name(msg.To), err)
	}
	return nil
}

var errLinkDown = errors.New("link is down")

// writeRaw writes bytes on the link to id as they are: the garbage fault.
func (m *mesh) writeRaw(id int, b []byte) error {
	_, err := m.links[id].conn.Write(b)
	return err
}

// close ends every link and stops the readers.
func (m *mesh) close() {
	select {
	case <-m.done:
		return
	default:
	}
	close(m.done)
	for _, l := range m.links {
		if l != nil {
			l.conn.Close()
		}
	}
}

// neighbors returns the ids of the linked processes.
func (m *mesh) neighbors() []int {
	var ids []int
	for _, l := range m.links {
		if l != nil {
			ids = append(ids, l.peer)
		}
	}
	return ids
}

// waiting reports whether a message has reached the process and is not
// handled yet: one a reader has passed on, or bytes the kernel holds on a
// link whose reader has not run yet. Such a reader runs as soon as the loop
// waits: the runtime polls the network when it has nothing else to run (or
// every 10 ms), so a loop that never waits would leave it asleep.
func (m *mesh) waiting() bool {
	return len(m.in) > 0 || m.readable()
}

// ended forgets a link whose reader has stopped: its end stays readable.
func (m *mesh) ended(id int) {
	for i := range m.watch {
		if m.watch[i].peer == id {
			m.watch[i].fd = -1
		}
	}
}
