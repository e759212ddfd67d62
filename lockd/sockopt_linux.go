package lockd

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel's TCP states (linux/tcp_states.h) that say the peer has
// hung up: TCP_CLOSE_WAIT, its FIN has arrived and this side has not
// closed yet; TCP_CLOSE, here only after it reset the connection (this
// side closes its socket only at the end of the session).
const (
	tcpClose     = 7
	tcpCloseWait = 8
)

// peerDid reports what the kernel knows the peer has done, whether or
// not the process has read that far: hungUp, whether it has closed its
// side (its FIN has arrived) or reset the connection (TCP_INFO's state);
// and, when askSpoke, spoke, whether it has sent any data (TCP_INFO's
// tcpi_bytes_received, Linux 4.1 and later, which counts a received FIN
// as one byte, taken off here; or else SIOCINQ, FIONREAD: the bytes not
// yet read). Asking the kernel closes the window in which a reader has
// taken a connection's first bytes, or its end, off the socket but not
// yet said so.
func peerDid(rc syscall.RawConn, askSpoke bool) (spoke, hungUp bool) {
	rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			hungUp = ti.State == tcpCloseWait || ti.State == tcpClose
			n := ti.Bytes_received
			if ti.State == tcpCloseWait && n > 0 {
				n--
			}
			spoke = askSpoke && n > 0
		}
		if askSpoke && !spoke {
			n, _ := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
			spoke = n > 0
		}
	})
	return spoke, hungUp
}

// deferAccept has the kernel hand ln's connections to Accept only once
// their first bytes have arrived, or after d (TCP_DEFER_ACCEPT, as
// nginx's "deferred" and haproxy's "defer-accept" listeners): a flood of
// connections that send nothing waits in the kernel instead of taking
// the places of clients that have sent their AUTH. Listeners other than
// TCP's are left alone; a failure only loses the optimisation.
func deferAccept(ln net.Listener, d time.Duration) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	secs := int((d + time.Second - 1) / time.Second)
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
	})
}

// sendBufferSize returns the kernel send buffer (SO_SNDBUF: on Linux
// twice what was set, the share the kernel allows for its bookkeeping
// included) of rc's socket, or 0 when rc is nil or it cannot be read.
func sendBufferSize(rc syscall.RawConn) int {
	if rc == nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil {
			n = v
		}
	})
	return n
}
