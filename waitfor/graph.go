package waitfor

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"mplock/lockd"
)

// Proc identifies a process across lock servers: the name and pid it gave
// every server in HELLO. The zero Proc is a session that never said HELLO.
type Proc struct {
	Name string
	PID  int
}

// String formats p as reports say it: "P1 (pid 4242)".
func (p Proc) String() string {
	if p.PID == 0 {
		return p.Name
	}
	return p.Name + " (pid " + strconv.Itoa(p.PID) + ")"
}

func (p Proc) compare(q Proc) int {
	return cmp.Or(cmp.Compare(p.Name, q.Name), cmp.Compare(p.PID, q.PID))
}

// Lock is one named lock on one server.
type Lock struct {
	Server string // the server's address, host:port
	Name   string
}

// String formats l as "lock1 at 127.0.0.1:6000".
func (l Lock) String() string { return l.Name + " at " + l.Server }

func (l Lock) compare(m Lock) int {
	return cmp.Or(cmp.Compare(l.Name, m.Name), cmp.Compare(l.Server, m.Server))
}

// Holder is one holder of a lock.
type Holder struct {
	Proc    Proc
	Session lockd.SessionID
	Mode    lockd.Mode
	Token   lockd.Token // the grant's fencing token: a new grant, a new token
	Since   time.Time
}

// Waiter is one queued request for a lock.
type Waiter struct {
	Proc     Proc
	Session  lockd.SessionID
	Mode     lockd.Mode
	Position int // 1: next in line
	Since    time.Time
	// Deadline is when the wait ends by itself (a timed acquire); zero when
	// it waits for as long as it takes.
	Deadline time.Time
}

// LockState is what one server said about one lock: its holders, and its
// waiters in queue order.
type LockState struct {
	Lock    Lock
	Holders []Holder
	Waiters []Waiter
}

// FromStatus turns one server's STATUS answer into LockStates.
func FromStatus(server string, st lockd.Status) []LockState {
	out := make([]LockState, 0, len(st.Locks))
	for _, l := range st.Locks {
		ls := LockState{Lock: Lock{Server: server, Name: l.Name}}
		for _, h := range l.Holders {
			ls.Holders = append(ls.Holders, Holder{Proc: Proc{h.Client, h.PID}, Session: h.Session, Mode: h.Mode, Token: h.Token, Since: h.Since})
		}
		for _, w := range l.Waiters {
			ls.Waiters = append(ls.Waiters, Waiter{Proc: Proc{w.Client, w.PID}, Session: w.Session, Mode: w.Mode,
				Position: w.Position, Since: w.Since, Deadline: w.Deadline})
		}
		out = append(out, ls)
	}
	return out
}

// EdgeKind says why a waiter waits for another process.
type EdgeKind uint8

// Edge kinds.
const (
	// HeldBy: the other process holds the lock in a conflicting mode.
	HeldBy EdgeKind = iota + 1
	// QueuedBehind: the other process is ahead in the lock's FIFO queue,
	// in a conflicting mode, and will be granted first.
	QueuedBehind
)

func (k EdgeKind) String() string {
	switch k {
	case HeldBy:
		return "held by"
	case QueuedBehind:
		return "queued behind"
	}
	return fmt.Sprintf("edge(%d)", uint8(k))
}

// Edge is one wait-for edge: Waiter waits for Lock, which Holder holds
// (HeldBy) or for which Ahead is queued earlier (QueuedBehind).
type Edge struct {
	Lock   Lock
	Kind   EdgeKind
	Waiter Waiter
	Holder Holder // HeldBy
	Ahead  Waiter // QueuedBehind
}

// From is the waiting process.
func (e Edge) From() Proc { return e.Waiter.Proc }

// To is the process waited for.
func (e Edge) To() Proc {
	if e.Kind == QueuedBehind {
		return e.Ahead.Proc
	}
	return e.Holder.Proc
}

// Bounded reports whether the wait ends by itself at a deadline.
func (e Edge) Bounded() bool { return !e.Waiter.Deadline.IsZero() }

// Key identifies the edge across looks: the same wait (session and start)
// for the same lock, blocked by the same grant (token) or the same earlier
// wait. Two looks that both show an edge with the same key saw it exist
// without interruption in between.
func (e Edge) Key() string {
	k := fmt.Sprintf("%s|%s|%d@%d", e.Lock.Server, e.Lock.Name, e.Waiter.Session, e.Waiter.Since.UnixNano())
	if e.Kind == QueuedBehind {
		return k + fmt.Sprintf(">q%d@%d", e.Ahead.Session, e.Ahead.Since.UnixNano())
	}
	return k + fmt.Sprintf(">h%d#%d", e.Holder.Session, e.Holder.Token)
}

// Graph is one look at every server: the locks as the servers described
// them, and the wait-for edges between processes.
type Graph struct {
	Locks []LockState // in lock order (name, then server)
	Edges []Edge      // by waiting process, then lock, then process waited for
}

// New builds the graph of one look from the lock states of every server.
func New(locks []LockState) Graph {
	g := Graph{Locks: slices.Clone(locks)}
	slices.SortStableFunc(g.Locks, func(a, b LockState) int { return a.Lock.compare(b.Lock) })
	for _, ls := range g.Locks {
		for i, w := range ls.Waiters {
			for _, h := range ls.Holders {
				if conflicts(w.Mode, h.Mode) {
					g.Edges = append(g.Edges, Edge{Lock: ls.Lock, Kind: HeldBy, Waiter: w, Holder: h})
				}
			}
			for _, a := range ls.Waiters[:i] {
				if conflicts(w.Mode, a.Mode) {
					g.Edges = append(g.Edges, Edge{Lock: ls.Lock, Kind: QueuedBehind, Waiter: w, Ahead: a})
				}
			}
		}
	}
	slices.SortStableFunc(g.Edges, compareEdges)
	return g
}

// conflicts reports whether two modes exclude each other: anything but two
// readers. A zero mode counts as exclusive, as the server takes it.
func conflicts(a, b lockd.Mode) bool { return a != lockd.Shared || b != lockd.Shared }

func compareEdges(a, b Edge) int {
	return cmp.Or(a.From().compare(b.From()), a.Lock.compare(b.Lock), a.To().compare(b.To()), cmp.Compare(a.Kind, b.Kind))
}

// Procs returns every process the look mentions, holding or waiting, in
// order.
func (g Graph) Procs() []Proc {
	var ps []Proc
	for _, ls := range g.Locks {
		for _, h := range ls.Holders {
			ps = append(ps, h.Proc)
		}
		for _, w := range ls.Waiters {
			ps = append(ps, w.Proc)
		}
	}
	slices.SortFunc(ps, Proc.compare)
	return slices.Compact(ps)
}

// Held returns the locks p holds in this look, in lock order.
func (g Graph) Held(p Proc) []Holding {
	var out []Holding
	for _, ls := range g.Locks {
		for _, h := range ls.Holders {
			if h.Proc == p {
				out = append(out, Holding{Lock: ls.Lock, Holder: h})
			}
		}
	}
	return out
}

// Holding is a lock and how one process holds it.
type Holding struct {
	Lock   Lock
	Holder Holder
}

// Without returns the graph with every hold and wait of the given processes
// left out, as if they were gone (a killed process whose connections the
// servers have not yet seen drop).
func (g Graph) Without(gone func(Proc) bool) Graph {
	locks := make([]LockState, 0, len(g.Locks))
	for _, ls := range g.Locks {
		n := LockState{Lock: ls.Lock}
		for _, h := range ls.Holders {
			if !gone(h.Proc) {
				n.Holders = append(n.Holders, h)
			}
		}
		for _, w := range ls.Waiters {
			if !gone(w.Proc) {
				n.Waiters = append(n.Waiters, w)
			}
		}
		locks = append(locks, n)
	}
	return New(locks)
}
