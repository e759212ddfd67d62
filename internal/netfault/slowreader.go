package netfault

import (
	"net"
	"syscall"
	"testing"
)

// DialSlowReader connects to addr with a 4 KiB receive buffer, for a
// client that will not read: the socket fills after a few kilobytes and
// the server's writes to it block. The connection is closed when the test
// ends.
func DialSlowReader(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
