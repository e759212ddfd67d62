package lockd

import (
	"net"
	"syscall"
)

// sendBuffer is the kernel send buffer (SO_SNDBUF) asked for each
// session's socket. Left alone, Linux grows a socket's send buffer up to
// net.ipv4.tcp_wmem's maximum (4 MiB by default; over loopback a new
// connection starts at megabytes), and none of it was counted by the
// outbox: 300 clients that each asked for one STATUS page of 10,000 names
// and did not read it held 550 MB of kernel memory until their write
// timeout. With the buffer fixed, the kernel holds at most about twice
// this for a session (Linux doubles the value for its bookkeeping) and
// the rest waits in the outbox, under its bound.
//
// 128 KiB is twice the most a session's reader writes at once before it
// waits for the client (outboxSoft), so a client that reads never finds a
// lock reply held up by it, and a STATUS page streams at full speed over
// any link whose bandwidth-delay product is under it (a LAN; loopback).
const sendBuffer = 128 << 10

// boundSendBuffer fixes c's kernel send buffer at sendBuffer, or at a
// quarter of maxPending when that is less (a server configured with a
// small output bound), and returns how many bytes the kernel may hold for
// c: what it reports through rc, c's raw connection or nil
// (sendBufferSize), or the size asked for where it does not say; 0 when c
// has no send buffer to set. Setting it turns off the kernel's growing of
// the buffer for this socket.
func boundSendBuffer(c net.Conn, rc syscall.RawConn, maxPending int) int {
	wb, ok := c.(interface{ SetWriteBuffer(int) error })
	if !ok {
		return 0
	}
	want := max(min(sendBuffer, maxPending/4), 1)
	if err := wb.SetWriteBuffer(want); err != nil {
		return 0
	}
	if n := sendBufferSize(rc); n > 0 {
		return n
	}
	return want
}

// outboxBound is what a session's outbox may hold when the kernel may
// hold inKernel bytes of its output: maxPending less that, so that all the
// output waiting for the client, wherever it waits, stays under
// maxPending. But never less than twice outboxSoft (or maxPending, if
// that is less): the outbox of a client that reads must have room for
// the replies to a batch of pipelined requests, which its reader writes
// only once they pass outboxSoft.
func outboxBound(maxPending, inKernel int) int {
	return max(maxPending-inKernel, min(maxPending, 2*outboxSoft))
}
