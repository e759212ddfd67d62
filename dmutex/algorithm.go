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

// The algorithms. Broken and MaekawaNaive are hidden from users' lists: they
// exist to show that the safety check and the explorer catch what they get
// wrong.
const (
	RicartAgrawala    Algorithm = iota + 1 // permission from every other process, Lamport-ordered
	Central                                // one lock server granting in FIFO order
	TokenRing                              // a token passed around the ring
	Broken                                 // Ricart-Agrawala that never defers a reply: not mutually exclusive
	Lamport                                // request queues replicated at every process, 3(N-1) messages
	RoucairolCarvalho                      // Ricart-Agrawala that keeps the permissions it got
	Maekawa                                // votes from a grid quorum, with INQUIRE/RELINQUISH/FAILED
	SuzukiKasami                           // a token asked for by broadcast, carrying who was served
	Raymond                                // a token on a spanning tree, asked for along the tree
	MaekawaNaive                           // Maekawa without INQUIRE/RELINQUISH/FAILED: can deadlock
	maxAlgorithm
)

// facts is what the package knows about an algorithm, in one place.
type facts struct {
	name    string
	aliases []string
	title   string
	how     string // one line: how a process gets in
	source  string // the paper
	hidden  bool
	// fifo: the algorithm needs first-in first-out links (stream sockets
	// are; the in-memory network can be told to be).
	fifo bool
	// clocked: the algorithm decides on Lamport timestamps. The others
	// keep a clock for the event log only, and the explorer leaves it out
	// of their state.
	clocked bool
	// ordered: entries are granted in (timestamp, id) order, and a run is
	// checked for it.
	ordered bool
	server  bool
	token   bool
}

var algorithms = [maxAlgorithm]facts{
	RicartAgrawala: {
		name: "ricart-agrawala", aliases: []string{"ra"}, title: "Ricart-Agrawala",
		how:     "ask every other process; enter after all N-1 replied; a process inside or ahead of you (by Lamport timestamp) defers its reply until it leaves",
		source:  "G. Ricart and A. K. Agrawala, \"An Optimal Algorithm for Mutual Exclusion in Computer Networks\", Communications of the ACM 24(1):9-17, 1981",
		clocked: true, ordered: true,
	},
	Lamport: {
		name: "lamport", title: "Lamport",
		how:    "every process keeps a queue of all requests in timestamp order; ask everyone, who acknowledge; enter when yours heads your queue and everyone has answered; tell everyone when you leave",
		source: "L. Lamport, \"Time, Clocks, and the Ordering of Events in a Distributed System\", Communications of the ACM 21(7):558-565, 1978",
		fifo:   true, clocked: true, ordered: true,
	},
	RoucairolCarvalho: {
		name: "roucairol-carvalho", aliases: []string{"carvalho-roucairol", "rc"}, title: "Roucairol-Carvalho",
		how:     "Ricart-Agrawala, but a permission once received is kept until its giver asks for it: ask only those you gave yours to since",
		source:  "O. S. F. Carvalho and G. Roucairol, \"On Mutual Exclusion in Computer Networks\", Communications of the ACM 26(2):146-148, 1983",
		clocked: true,
	},
	Maekawa: {
		name: "maekawa", title: "Maekawa",
		how:    "ask only your quorum (your row and column of a grid): each member votes for one request at a time; an earlier request makes a member ask its vote back (INQUIRE), which a requester that cannot win yet gives (RELINQUISH)",
		source: "M. Maekawa, \"A sqrt(N) Algorithm for Mutual Exclusion in Decentralized Systems\", ACM Transactions on Computer Systems 3(2):145-159, 1985",
		fifo:   true, clocked: true,
	},
	SuzukiKasami: {
		name: "suzuki-kasami", aliases: []string{"sk"}, title: "Suzuki-Kasami",
		how:    "one token; without it, broadcast a numbered request; the holder sends the token on when it leaves, to the queue the token carries",
		source: "I. Suzuki and T. Kasami, \"A Distributed Mutual Exclusion Algorithm\", ACM Transactions on Computer Systems 3(4):344-349, 1985",
		token:  true,
	},
	Raymond: {
		name: "raymond", title: "Raymond's tree",
		how:    "one token on a spanning tree (a binary heap of the ids); ask your neighbour towards the token, which asks on, once; the token comes back along the path",
		source: "K. Raymond, \"A Tree-Based Algorithm for Distributed Mutual Exclusion\", ACM Transactions on Computer Systems 7(1):61-77, 1989",
		token:  true,
	},
	Central: {
		name: "central", title: "central lock server",
		how:    "ask one lock server process; it grants in arrival (FIFO) order and you tell it when you leave",
		source: "the textbook baseline (e.g. Tanenbaum and van Steen, Distributed Systems, section on mutual exclusion)",
		server: true,
	},
	TokenRing: {
		name: "token-ring", aliases: []string{"ring"}, title: "token ring",
		how:    "one token travels around the ring; hold it to enter, pass it on when you leave (or at once if you do not want it)",
		source: "the textbook baseline (e.g. Tanenbaum and van Steen, Distributed Systems, section on mutual exclusion)",
		token:  true,
	},
	Broken: {
		name: "broken", title: "broken Ricart-Agrawala (no deferral)", hidden: true,
		how:     "Ricart-Agrawala that replies at once instead of deferring: two processes can be inside together",
		source:  "a deliberate bug, to show that the checks catch it",
		clocked: true,
	},
	MaekawaNaive: {
		name: "maekawa-naive", title: "Maekawa without INQUIRE (naive)", hidden: true,
		how:    "each quorum member votes for the first request it hears and queues the rest; nobody gives a vote back, so two requesters can each hold a vote the other needs",
		source: "the deadlock Maekawa's INQUIRE/RELINQUISH/FAILED messages prevent (Maekawa 1985, section 4)",
		fifo:   true, clocked: true,
	},
}

func (a Algorithm) facts() facts {
	if a > 0 && a < maxAlgorithm {
		return algorithms[a]
	}
	return facts{}
}

// Algorithms returns the algorithms a user can choose, in the order reports
// list them: the permission-based ones, the token-based ones, then the two
// baselines. Broken and MaekawaNaive are not among them.
func Algorithms() []Algorithm {
	return []Algorithm{RicartAgrawala, Lamport, RoucairolCarvalho, Maekawa, SuzukiKasami, Raymond, Central, TokenRing}
}

// Hidden returns the deliberately wrong variants, for tests and
// demonstrations.
func Hidden() []Algorithm { return []Algorithm{Broken, MaekawaNaive} }

func (a Algorithm) String() string {
	if f := a.facts(); f.name != "" {
		return f.name
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

// Title is the algorithm's name in prose.
func (a Algorithm) Title() string {
	if f := a.facts(); f.title != "" {
		return f.title
	}
	return a.String()
}

// Description says in one line how the algorithm works.
func (a Algorithm) Description() string { return a.facts().how }

// Source cites the paper the algorithm comes from: authors, title, venue,
// year.
func (a Algorithm) Source() string { return a.facts().source }

// IsHidden reports whether the algorithm is a deliberately wrong variant.
func (a Algorithm) IsHidden() bool { return a.facts().hidden }

// NeedsFIFO reports whether the algorithm is correct only over first-in
// first-out links, as its paper assumes. Stream sockets are; the in-memory
// network and the explorer keep every link FIFO unless told otherwise.
func (a Algorithm) NeedsFIFO() bool { return a.facts().fifo }

// Clocked reports whether the algorithm decides anything on Lamport
// timestamps. The others keep a clock only for the event log.
func (a Algorithm) Clocked() bool { return a.facts().clocked }

// GrantsInOrder reports whether the algorithm grants entries in
// (timestamp, id) order, so that an entry out of that order is a bug.
func (a Algorithm) GrantsInOrder() bool { return a.facts().ordered }

// HasServer reports whether the algorithm needs the lock server process.
func (a Algorithm) HasServer() bool { return a.facts().server }

// TokenBased reports whether a process needs the (single) token to enter.
func (a Algorithm) TokenBased() bool { return a.facts().token }

// ParseAlgorithm accepts an algorithm's name or one of its short names (ra,
// rc, sk, ring).
func ParseAlgorithm(s string) (Algorithm, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for a := RicartAgrawala; a < maxAlgorithm; a++ {
		f := algorithms[a]
		if s == f.name {
			return a, nil
		}
		for _, alias := range f.aliases {
			if s == alias {
				return a, nil
			}
		}
	}
	return 0, fmt.Errorf("dmutex: unknown algorithm %q (want %s)", s, Names())
}

// Names lists the names a user can choose, for messages: "a, b or c".
func Names() string {
	var names []string
	for _, a := range Algorithms() {
		names = append(names, a.String())
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Neighbors returns the ids process id exchanges messages with in a run of n
// peers, in increasing order: every other peer (Ricart-Agrawala, Lamport,
// Roucairol-Carvalho, Suzuki-Kasami), the server (central; for the server,
// every peer), the two ring neighbours, the members of its quorum and of
// the quorums it belongs to (Maekawa: the same set, on a grid), or its
// parent and children in the tree (Raymond). The relation is symmetric.
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
		out = append(out, min(next, prev))
		if prev != next {
			out = append(out, max(next, prev))
		}
		return out
	case Maekawa, MaekawaNaive:
		for _, j := range NewGrid(n).Quorum(id) {
			if j != id {
				out = append(out, j)
			}
		}
		return out
	case Raymond:
		return treeNeighbors(id, n)
	}
	for j := range n {
		if j != id {
			out = append(out, j)
		}
	}
	return out
}

// New returns process cfg.ID of algorithm a, in state Released.
func New(a Algorithm, cfg Config) (Process, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	nd := node{cfg: cfg}
	switch a {
	case RicartAgrawala:
		return &ricartAgrawala{node: nd}, nil
	case Broken:
		return &ricartAgrawala{node: nd, skipDeferral: true}, nil
	case Lamport:
		return newLamport(nd), nil
	case RoucairolCarvalho:
		return newRoucairolCarvalho(nd), nil
	case Maekawa:
		return newMaekawa(nd, true), nil
	case MaekawaNaive:
		return newMaekawa(nd, false), nil
	case SuzukiKasami:
		return newSuzukiKasami(nd), nil
	case Raymond:
		return newRaymond(nd), nil
	case Central:
		return &centralClient{node: nd}, nil
	case TokenRing:
		return &tokenRing{node: nd}, nil
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
