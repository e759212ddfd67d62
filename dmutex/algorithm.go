package dmutex

import (
	"fmt"
	"strings"
)

// Process ids. Peers are numbered 0 to n-1; the central lock server, when the
// algorithm has one, is ServerID whatever n is, so that a message's sender
// says who it is without knowing the size of the run.
const (
	MaxProcs = 64       // peers in one run: a full mesh of 64 is 2,016 links
	ServerID = MaxProcs // the central algorithm's lock server
	MaxIDs   = MaxProcs + 1
)

// Algorithm names a mutual exclusion algorithm.
type Algorithm uint8

// The algorithms. Broken is hidden from users' lists: it exists to show that
// the safety check works.
const (
	RicartAgrawala Algorithm = iota + 1 // permission from every other process, Lamport-ordered
	Central                             // one lock server granting in FIFO order
	TokenRing                           // a token passed around the ring
	Broken                              // Ricart-Agrawala that never defers a reply: not mutually exclusive
)

// Algorithms returns the algorithms a user can choose, in the order reports
// list them. Broken is not among them.
func Algorithms() []Algorithm { return []Algorithm{RicartAgrawala, Central, TokenRing} }

func (a Algorithm) String() string {
	switch a {
	case RicartAgrawala:
		return "ricart-agrawala"
	case Central:
		return "central"
	case TokenRing:
		return "token-ring"
	case Broken:
		return "broken"
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

// Title is the algorithm's name in prose.
func (a Algorithm) Title() string {
	switch a {
	case RicartAgrawala:
		return "Ricart-Agrawala"
	case Central:
		return "central lock server"
	case TokenRing:
		return "token ring"
	case Broken:
		return "broken Ricart-Agrawala (no deferral)"
	}
	return a.String()
}

// Description says in one line how the algorithm works.
func (a Algorithm) Description() string {
	switch a {
	case RicartAgrawala:
		return "ask every other process; enter after all N-1 replied; a process in or ahead of you (by Lamport timestamp) defers its reply"
	case Central:
		return "ask one lock server process; it grants in arrival (FIFO) order and you tell it when you leave"
	case TokenRing:
		return "one token travels around the ring; hold it to enter, pass it on when you leave (or at once if you do not want it)"
	case Broken:
		return "Ricart-Agrawala that replies at once instead of deferring: two processes can be inside together"
	}
	return ""
}

// ParseAlgorithm accepts an algorithm's name, or "ra" and "ring" for short.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "ricart-agrawala", "ra":
		return RicartAgrawala, nil
	case "central":
		return Central, nil
	case "token-ring", "ring":
		return TokenRing, nil
	case "broken":
		return Broken, nil
	}
	return 0, fmt.Errorf("dmutex: unknown algorithm %q (want ricart-agrawala, central or token-ring)", s)
}

// HasServer reports whether the algorithm needs the lock server process.
func (a Algorithm) HasServer() bool { return a == Central }

// Neighbors returns the ids process id exchanges messages with in a run of n
// peers: every other peer (Ricart-Agrawala), the server (central; for the
// server, every peer), or the two ring neighbours.
func (a Algorithm) Neighbors(id, n int) []int {
	var out []int
	switch a {
	case Central:
		if id == ServerID {
			for j := range n {
				out = append(out, j)
			}
			return out
		}
		return []int{ServerID}
	case TokenRing:
		next, prev := (id+1)%n, (id+n-1)%n
		out = append(out, next)
		if prev != next {
			out = append(out, prev)
		}
		return out
	}
	for j := range n {
		if j != id {
			out = append(out, j)
		}
	}
	return out
}

// MessagesPerEntry is the theory's cost of one entry in a run of n peers;
// exact is false when the algorithm has no fixed cost (the token ring: from
// one message per entry when every process wants the token, to any number
// when few do and the token keeps travelling).
func (a Algorithm) MessagesPerEntry(n int) (perEntry float64, exact bool) {
	switch a {
	case RicartAgrawala, Broken:
		return float64(2 * (n - 1)), true
	case Central:
		return 3, true
	}
	return 1, false
}

// Theory is MessagesPerEntry as a formula, for reports.
func (a Algorithm) Theory() string {
	switch a {
	case RicartAgrawala, Broken:
		return "2(N-1)"
	case Central:
		return "3"
	case TokenRing:
		return "1 to unbounded"
	}
	return "?"
}

// SyncDelay is the theory's synchronization delay (from one process's exit
// to the next one's entry, when that one is waiting) in one-message
// delivery times: min and max.
func (a Algorithm) SyncDelay(n int) (lo, hi int) {
	switch a {
	case RicartAgrawala, Broken:
		return 1, 1
	case Central:
		return 2, 2
	case TokenRing:
		return 1, n - 1
	}
	return 0, 0
}

// New returns process cfg.ID of algorithm a, in state Released.
func New(a Algorithm, cfg Config) (Process, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	switch a {
	case RicartAgrawala:
		return &ricartAgrawala{node: node{cfg: cfg}}, nil
	case Broken:
		return &ricartAgrawala{node: node{cfg: cfg}, skipDeferral: true}, nil
	case Central:
		return &centralClient{node: node{cfg: cfg}}, nil
	case TokenRing:
		return &tokenRing{node: node{cfg: cfg}}, nil
	}
	return nil, fmt.Errorf("dmutex: new: unknown algorithm %v", a)
}

// LockServer is the central algorithm's lock server.
type LockServer interface {
	Node
	// Holder is the peer the server last granted the lock to and has not
	// heard a release from; -1 when the lock is free.
	Holder() int
}

// NewServer returns the central algorithm's lock server for cfg.N peers;
// cfg.ID must be ServerID.
func NewServer(cfg Config) (LockServer, error) {
	if cfg.ID != ServerID {
		return nil, fmt.Errorf("dmutex: server id %d, want %d", cfg.ID, ServerID)
	}
	cfg.ID = 0 // check the rest as a peer would
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.ID = ServerID
	return &centralServer{node: node{cfg: cfg}, holder: -1}, nil
}

// MarshalText implements encoding.TextMarshaler.
func (a Algorithm) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Algorithm) UnmarshalText(b []byte) error {
	v, err := ParseAlgorithm(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}
