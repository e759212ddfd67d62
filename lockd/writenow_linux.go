package lockd

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// writeNow writes as much of buf to rc as the socket takes without
// waiting, and returns how much that was. A full socket is not an error.
func writeNow(rc syscall.RawConn, buf []byte) (int, error) {
	n := 0
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(buf) {
			m, err := unix.Write(int(fd), buf[n:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				werr = err
				break
			}
			n += m
		}
		return true // never wait for the socket: the writer goroutine will
	})
	if err == nil && werr != unix.EAGAIN {
		err = werr
	}
	return n, err
}
