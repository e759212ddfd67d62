package proctest

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SendQueue returns how many bytes the TCP socket of this machine from
// local to remote holds unsent or unacknowledged (tx_queue in
// /proc/net/tcp), and false when there is no such socket. It skips the
// test where /proc/net/tcp is missing. IPv4 only.
func SendQueue(t testing.TB, local, remote *net.TCPAddr) (int, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp")
	}
	l, r := procAddr(local), procAddr(remote)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 4 && f[1] == l && f[2] == r {
			tx, _, _ := strings.Cut(f[4], ":")
			n, _ := strconv.ParseUint(tx, 16, 64)
			return int(n), true
		}
	}
	return 0, false
}

// WaitSendStuck waits until the socket from local to remote holds unsent
// data that does not move between two looks 50ms apart: its peer is not
// reading, and a blocking write to it would wait. It fails the test if
// that does not happen within 20 seconds.
func WaitSendStuck(t testing.TB, local, remote *net.TCPAddr) {
	t.Helper()
	last := -1
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n, ok := SendQueue(t, local, remote)
		if ok && n > 0 && n == last {
			return
		}
		last = n
	}
	t.Fatalf("the socket from %v to %v never filled", local, remote)
}

// procAddr writes an IPv4 address as /proc/net/tcp does: the address's
// bytes in host (little-endian) order, then the port, in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return strings.ToUpper(hex.EncodeToString([]byte{ip[3], ip[2], ip[1], ip[0]})) + fmt.Sprintf(":%04X", a.Port)
}
