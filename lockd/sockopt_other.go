//go:build !linux

package lockd

import (
	"net"
	"syscall"
	"time"
)

// peerDid cannot tell here: it says neither.
func peerDid(rc syscall.RawConn, askSpoke bool) (spoke, hungUp bool) { return false, false }

// deferAccept does nothing here.
func deferAccept(ln net.Listener, d time.Duration) {}

// sendBufferSize cannot tell here: it says 0.
func sendBufferSize(rc syscall.RawConn) int { return 0 }
