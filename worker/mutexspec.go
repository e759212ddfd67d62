package worker

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"mplock/dmutex"
)

// MutexRole is what a process of a mutex run is.
type MutexRole string

// Roles.
const (
	MutexPeer   MutexRole = "peer"   // competes for the critical section
	MutexServer MutexRole = "server" // the central algorithm's lock server
)

// Networks a mutex run's links use.
const (
	NetworkUnix = "unix" // Unix stream sockets in the run's private directory
	NetworkTCP  = "tcp"  // TCP on the loopback interface
)

// MutexSpec is what the coordinator tells one process of a mutex run, as the
// first line (JSON) on its standard input. The second line is the address
// list (MutexAddrs), sent once every process is listening.
type MutexSpec struct {
	Role      MutexRole        `json:"role"`
	ID        int              `json:"id"` // 0 to N-1, or dmutex.ServerID
	N         int              `json:"n"`  // peers in the run
	Slot      int              `json:"slot"`
	Algorithm dmutex.Algorithm `json:"algorithm"`
	CS        time.Duration    `json:"cs"`        // stay in the critical section
	ThinkMin  time.Duration    `json:"think_min"` // pause before each request: uniform in [ThinkMin, ThinkMax]
	ThinkMax  time.Duration    `json:"think_max"`
	Network   string           `json:"network"` // NetworkUnix (socket names relative to the working directory) or NetworkTCP
	Secret    uint64           `json:"secret"`  // every link's HELLO carries it
	Seed      uint64           `json:"seed"`    // think times
	Verbose   bool             `json:"verbose"` // report every event
	Pings     int              `json:"pings"`   // round trips to measure delivery time (P0 only)
	Garbage   bool             `json:"garbage"` // fault: send malformed lines on every link before registering
	Timeout   time.Duration    `json:"timeout"` // for connecting and introducing the links
}

// OpenControl returns the control pipe inherited as fd (the coordinator's
// spec, addresses and phase changes), switched to non-blocking mode so that
// reading it waits in the runtime's network poller instead of holding a
// thread in a system call.
func OpenControl(fd int, name string) (*os.File, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("worker: control pipe: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// MutexAddrs maps process ids to their listening addresses.
type MutexAddrs map[int]string

// Validate checks a spec as a process receives it.
func (s *MutexSpec) Validate() error {
	switch {
	case s.N < 2 || s.N > dmutex.MaxProcs:
		return fmt.Errorf("worker: mutex: %d peers, want 2 to %d", s.N, dmutex.MaxProcs)
	case s.Role == MutexPeer && (s.ID < 0 || s.ID >= s.N):
		return fmt.Errorf("worker: mutex: peer id %d outside 0 to %d", s.ID, s.N-1)
	case s.Role == MutexServer && (s.ID != dmutex.ServerID || !s.Algorithm.HasServer()):
		return fmt.Errorf("worker: mutex: server id %d for %v", s.ID, s.Algorithm)
	case s.Role != MutexPeer && s.Role != MutexServer:
		return fmt.Errorf("worker: mutex: unknown role %q", s.Role)
	case s.Network != NetworkUnix && s.Network != NetworkTCP:
		return fmt.Errorf("worker: mutex: unknown network %q", s.Network)
	case s.CS < 0 || s.ThinkMin < 0 || s.ThinkMax < s.ThinkMin:
		return fmt.Errorf("worker: mutex: bad times: cs %v, think %v-%v", s.CS, s.ThinkMin, s.ThinkMax)
	}
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Second
	}
	return nil
}

// SocketName is the Unix socket file of process id, relative to the run
// directory, where every process of the run has its working directory: the
// names stay short whatever the directory's path (a socket path is limited
// to 107 bytes).
func SocketName(id int) string {
	if id == dmutex.ServerID {
		return "server.sock"
	}
	return fmt.Sprintf("p%d.sock", id)
}
