package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"mplock/lockd"
)

// The cluster RPC: a follower forwards writes, read-index requests and
// keepalives to the leader, and a new node asks a member to admit it. One
// request and one reply per exchange, each a frame: a 4-byte big-endian
// length, then JSON. Connections are pooled per peer and carry one
// exchange at a time, so concurrent callers use concurrent connections and
// never queue behind each other's commits.

type rpcKind string

const (
	rpcApply     rpcKind = "apply"
	rpcReadIndex rpcKind = "readindex"
	rpcKeepalive rpcKind = "keepalive"
	rpcJoin      rpcKind = "join"
	rpcRemove    rpcKind = "remove"
	rpcStatus    rpcKind = "status"
)

type rpcRequest struct {
	Kind rpcKind `json:"kind"`
	// Timeout is how long the caller will wait (ns): the handler bounds its
	// work by it.
	Timeout  time.Duration     `json:"timeout"`
	Entry    []byte            `json:"entry,omitempty"`    // apply: an encoded command
	Verify   bool              `json:"verify,omitempty"`   // readindex: confirm leadership with a quorum
	Sessions []lockd.SessionID `json:"sessions,omitempty"` // keepalive
	ID       string            `json:"id,omitempty"`       // join, remove
	Addr     string            `json:"addr,omitempty"`     // join
}

// rpcCode classifies a failed exchange for the caller's retry decision.
type rpcCode string

const (
	codeOK         rpcCode = ""
	codeNotApplied rpcCode = "notapplied" // known not done; retry is safe
	codeNotLeader  rpcCode = "notleader"  // known not done: ask the leader
	codeAmbiguous  rpcCode = "ambiguous"  // may or may not be done
	codeShutdown   rpcCode = "shutdown"   // the peer is stopping; not done
	codeRefused    rpcCode = "refused"    // a bad request; not done
)

type rpcResponse struct {
	Code    rpcCode           `json:"code,omitempty"`
	Error   string            `json:"error,omitempty"`
	Index   uint64            `json:"index,omitempty"`
	Unknown []lockd.SessionID `json:"unknown,omitempty"`
	Status  *Status           `json:"status,omitempty"`
}

// err turns a response into the caller's error (nil for OK).
func (r *rpcResponse) err() error {
	cause := errors.New(r.Error)
	switch r.Code {
	case codeOK:
		return nil
	case codeNotLeader:
		return notApplied(fmt.Errorf("%w: %s", ErrNotLeader, r.Error))
	case codeShutdown:
		return notApplied(fmt.Errorf("%w: %s", ErrShutdown, r.Error))
	case codeRefused:
		return fmt.Errorf("%w: %w: %s", ErrNotApplied, ErrBadCommand, r.Error)
	case codeAmbiguous:
		return ambiguous(cause)
	default:
		return notApplied(cause)
	}
}

// responseFor classifies err (from a local call) for a remote caller.
func responseFor(err error) *rpcResponse {
	r := &rpcResponse{Error: err.Error()}
	switch {
	case errors.Is(err, ErrNotLeader):
		r.Code = codeNotLeader
	case errors.Is(err, ErrShutdown):
		r.Code = codeShutdown
	case errors.Is(err, ErrBadCommand), errors.Is(err, ErrUnknownCommand):
		r.Code = codeRefused
	case errors.Is(err, ErrAmbiguous):
		r.Code = codeAmbiguous
	default:
		r.Code = codeNotApplied
	}
	return r
}

// maxFrame bounds a frame: commands are small, a status lists members.
const maxFrame = 1 << 20

// defaultRPCTimeout bounds an exchange whose context has no deadline.
const defaultRPCTimeout = 30 * time.Second

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("replica: rpc frame of %d bytes, at most %d", len(b), maxFrame)
	}
	buf := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("replica: rpc frame of %d bytes, at most %d", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// errNotSent: the request never left in full, so the peer cannot have
// acted on it.
var errNotSent = errors.New("replica: request not sent")

// peerNet carries RPCs to other nodes: over TCP (tcpPeers), or in memory
// for tests (memNet). call returns an error wrapping errNotSent when the
// request surely did not reach the peer's handler.
type peerNet interface {
	call(ctx context.Context, id raft.ServerID, addr raft.ServerAddress, req *rpcRequest) (*rpcResponse, error)
	close()
}

// tcpPeers is the TCP peerNet: per address, a pool of idle connections.
type tcpPeers struct {
	secret   string
	peerAddr func(string) (string, bool)

	mu     sync.Mutex
	idle   map[string][]*pooled
	closed bool
}

type pooled struct {
	c    net.Conn
	r    *bufio.Reader
	used time.Time
}

// maxIdlePerPeer bounds the idle connections kept per peer.
const maxIdlePerPeer = 32

// idleConnTTL: an idle connection older than this is closed rather than
// reused (the peer may have gone); the server side waits longer.
const idleConnTTL = time.Minute

func newTCPPeers(secret string, peerAddr func(string) (string, bool)) *tcpPeers {
	return &tcpPeers{secret: secret, peerAddr: peerAddr, idle: map[string][]*pooled{}}
}

func (p *tcpPeers) get(addr string, timeout time.Duration) (*pooled, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrShutdown
	}
	for list := p.idle[addr]; len(list) > 0; list = p.idle[addr] {
		pc := list[len(list)-1]
		p.idle[addr] = list[:len(list)-1]
		if time.Since(pc.used) < idleConnTTL {
			p.mu.Unlock()
			return pc, nil
		}
		pc.c.Close()
	}
	p.mu.Unlock()
	c, err := dialKind(connRPC, p.secret, addr, timeout)
	if err != nil {
		return nil, err
	}
	return &pooled{c: c, r: bufio.NewReader(c)}, nil
}

func (p *tcpPeers) put(addr string, pc *pooled) {
	pc.c.SetDeadline(time.Time{})
	pc.used = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[addr]) >= maxIdlePerPeer {
		pc.c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], pc)
}

func (p *tcpPeers) call(ctx context.Context, id raft.ServerID, addr raft.ServerAddress, req *rpcRequest) (*rpcResponse, error) {
	target := resolve(p.peerAddr, id, addr)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultRPCTimeout)
	}
	req.Timeout = time.Until(deadline)
	if req.Timeout <= 0 {
		return nil, fmt.Errorf("%w: %w", errNotSent, context.DeadlineExceeded)
	}
	pc, err := p.get(target, min(req.Timeout, 5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s (%s): %w", errNotSent, id, target, err)
	}
	// The context's end closes the connection, which ends the exchange.
	stop := context.AfterFunc(ctx, func() { pc.c.Close() })
	defer stop()
	pc.c.SetDeadline(deadline)
	if err := writeFrame(pc.c, req); err != nil {
		pc.c.Close()
		return nil, fmt.Errorf("%w: to %s (%s): %w", errNotSent, id, target, err)
	}
	var resp rpcResponse
	if err := readFrame(pc.r, &resp); err != nil {
		pc.c.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("replica: rpc %s to %s (%s): %w", req.Kind, id, target, err)
	}
	if !stop() {
		pc.c.Close() // the context ended just as the reply came
	} else {
		p.put(target, pc)
	}
	return &resp, nil
}

func (p *tcpPeers) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, list := range p.idle {
		for _, pc := range list {
			pc.c.Close()
		}
	}
	p.idle = nil
}

// rpcIdleTimeout closes a server-side RPC connection idle this long.
const rpcIdleTimeout = 2 * idleConnTTL

// maxRPCTimeout caps the work a handler does for one request, whatever the
// caller's deadline.
const maxRPCTimeout = time.Minute

// serveRPC answers requests on one connection until it closes, errs or
// idles out. handle does the work, under a context that ends at the
// caller's deadline (capped by maxRPCTimeout) or when base ends (the node
// shuts down).
func serveRPC(base context.Context, c net.Conn, handle func(context.Context, *rpcRequest) *rpcResponse) {
	r := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(rpcIdleTimeout))
		var req rpcRequest
		if err := readFrame(r, &req); err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(base, min(max(req.Timeout, 0), maxRPCTimeout))
		resp := handle(ctx, &req)
		cancel()
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := writeFrame(c, resp); err != nil {
			return
		}
	}
}
