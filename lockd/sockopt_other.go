//go:build !linux

package lockd

import (
	"net"
	"syscall"
	"time"
)

// peerSpoke cannot tell here: it says no.
func peerSpoke(rc syscall.RawConn) bool { return false }

// deferAccept does nothing here.
func deferAccept(ln net.Listener, d time.Duration) {}

// sendBufferSize cannot tell here: it says 0.
func sendBufferSize(c net.Conn) int { return 0 }
