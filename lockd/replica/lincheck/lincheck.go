// Package lincheck checks histories of lock operations for
// linearizability, with github.com/anishathalye/porcupine and a model of the
// seed's operations on named locks:
//
//   - preempt: take the lock if it is free, else fail at once; a success
//     carries the grant's fencing token, which must be above every earlier
//     token of that name;
//   - release: only the owner can release; anyone else fails;
//   - check: returns the owner of the lock ("" when free);
//   - expire: the service ended the client's session (its TTL passed
//     without keepalives, as when the client was paused) and so released
//     its lock, at some moment between the call (the earliest the session
//     could have lapsed) and the return (when the client learned it was
//     gone). A client that goes on with a new session is a new client of
//     the model.
//
// A history is recorded with History (safe for concurrent clients): Call
// when an operation starts, then exactly one of Return (the outcome), Unknown
// (the outcome could not be learned: the operation may or may not have taken
// effect, at any time after its call) or Drop (it surely took no effect, as a
// failed read or a request refused before it reached the log). The model is
// partitioned by lock name: names are independent registers, checked apart.
//
// A check result is information, never proof of ownership: that is the
// fencing token's job. The model checks that the service never lets two
// clients own a name at once as seen by any linearization of what they
// observed, and that tokens rise.
package lincheck

import (
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Kind is an operation's kind.
type Kind uint8

const (
	Preempt Kind = iota + 1
	Release
	Check
	Expire
)

func (k Kind) String() string {
	switch k {
	case Preempt:
		return "preempt"
	case Release:
		return "release"
	case Check:
		return "check"
	case Expire:
		return "expire"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Input is an operation as called.
type Input struct {
	Kind   Kind
	Client string
	Name   string
}

// Output is an operation's outcome.
type Output struct {
	// OK: preempt granted, release done. Ignored for check.
	OK bool
	// Token is a granted preempt's fencing token.
	Token uint64
	// Owner is what check saw: the owning client, "" for free.
	Owner string
	// Unknown: the outcome was never learned (set by History.Unknown).
	Unknown bool
}

// state is one name's register: its owner and the last token seen.
type state struct {
	owner string
	token uint64
}

// Model returns the porcupine model of the operations, partitioned by name.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byName := map[string][]porcupine.Operation{}
			var names []string
			for _, op := range history {
				n := op.Input.(Input).Name
				if _, ok := byName[n]; !ok {
					names = append(names, n)
				}
				byName[n] = append(byName[n], op)
			}
			sort.Strings(names)
			out := make([][]porcupine.Operation, 0, len(names))
			for _, n := range names {
				out = append(out, byName[n])
			}
			return out
		},
		Init: func() any { return state{} },
		Step: func(st, input, output any) (bool, any) {
			s, in, out := st.(state), input.(Input), output.(Output)
			return step(s, in, out)
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(Input), output.(Output)
			res := ""
			switch {
			case out.Unknown:
				res = "?"
			case in.Kind == Check:
				res = "owner " + ownerName(out.Owner)
			case in.Kind == Expire:
				res = "session gone"
			case in.Kind == Preempt && out.OK:
				res = fmt.Sprintf("granted, token %d", out.Token)
			case out.OK:
				res = "ok"
			default:
				res = "refused"
			}
			return fmt.Sprintf("%s %s %s -> %s", in.Client, in.Kind, in.Name, res)
		},
		DescribeState: func(st any) string {
			s := st.(state)
			return fmt.Sprintf("owner %s, last token %d", ownerName(s.owner), s.token)
		},
	}
}

func ownerName(o string) string {
	if o == "" {
		return "none"
	}
	return o
}

// step is the model's transition: whether out is a possible outcome of in
// in state s, and the state after it.
func step(s state, in Input, out Output) (bool, any) {
	switch in.Kind {
	case Preempt:
		switch {
		case out.Unknown:
			if s.owner == "" {
				return true, state{owner: in.Client, token: s.token}
			}
			return true, s
		case out.OK:
			return s.owner == "" && out.Token > s.token, state{owner: in.Client, token: out.Token}
		default:
			return s.owner != "", s
		}
	case Release:
		switch {
		case out.Unknown:
			if s.owner == in.Client {
				return true, state{token: s.token}
			}
			return true, s
		case out.OK:
			return s.owner == in.Client, state{token: s.token}
		default:
			return s.owner != in.Client, s
		}
	case Check:
		return out.Unknown || out.Owner == s.owner, s
	case Expire:
		if s.owner == in.Client {
			return true, state{token: s.token}
		}
		return true, s
	}
	return false, s
}

// History records operations from concurrent clients. The zero value is
// not usable; use NewHistory.
type History struct {
	mu      sync.Mutex
	start   time.Time
	ops     []*porcupine.Operation
	clients map[string]int
}

// NewHistory starts a history; times are measured from now on the
// monotonic clock.
func NewHistory() *History {
	return &History{start: time.Now(), clients: map[string]int{}}
}

// NewHistoryAt starts a history whose times are measured from start, for
// operations recorded with Record from the notes of other processes: every
// time given to Record must come from one clock that all of them read (the
// wall clock of one machine).
func NewHistoryAt(start time.Time) *History {
	return &History{start: start, clients: map[string]int{}}
}

// Record adds an operation that another process called at call and saw
// returned at ret with out. A zero ret records the outcome as unknown.
func (h *History) Record(in Input, out Output, call, ret time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.clients[in.Client]
	if !ok {
		id = len(h.clients)
		h.clients[in.Client] = id
	}
	op := &porcupine.Operation{ClientId: id, Input: in, Output: out, Call: int64(call.Sub(h.start))}
	if ret.IsZero() || out.Unknown {
		op.Output, op.Return = Output{Unknown: true}, math.MaxInt64
	} else {
		op.Return = max(int64(ret.Sub(h.start)), op.Call+1)
	}
	h.ops = append(h.ops, op)
}

// Pending is an operation called and not yet returned.
type Pending struct {
	h  *History
	op *porcupine.Operation
}

// Call records the start of an operation.
func (h *History) Call(in Input) *Pending {
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.clients[in.Client]
	if !ok {
		id = len(h.clients)
		h.clients[in.Client] = id
	}
	op := &porcupine.Operation{ClientId: id, Input: in, Call: int64(time.Since(h.start)), Return: -1}
	h.ops = append(h.ops, op)
	return &Pending{h: h, op: op}
}

// Return records the operation's outcome, now.
func (p *Pending) Return(out Output) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	p.op.Output, p.op.Return = out, int64(time.Since(p.h.start))
}

// Unknown records that the outcome was never learned: the operation may
// have taken effect at any time after its call, or never.
func (p *Pending) Unknown() {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	p.op.Output, p.op.Return = Output{Unknown: true}, math.MaxInt64
}

// Drop leaves the operation out of the history: it surely had no effect.
func (p *Pending) Drop() {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	for i, op := range p.h.ops {
		if op == p.op {
			p.h.ops = append(p.h.ops[:i], p.h.ops[i+1:]...)
			return
		}
	}
}

// Operations returns the history for porcupine. Operations still pending
// count as Unknown; unknown outcomes return after everything else.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last int64 // after every known return and every call
	for _, op := range h.ops {
		last = max(last, op.Call)
		if op.Return != math.MaxInt64 {
			last = max(last, op.Return)
		}
	}
	out := make([]porcupine.Operation, 0, len(h.ops))
	for _, op := range h.ops {
		o := *op
		if o.Return < 0 || o.Return == math.MaxInt64 {
			o.Output, o.Return = Output{Unknown: true}, last+1
		}
		out = append(out, o)
	}
	return out
}

// Verdict is the outcome of a check.
type Verdict struct {
	// Result is porcupine's: Ok, Illegal, or Unknown (the check timed out).
	Result     porcupine.CheckResult
	Operations int
	Took       time.Duration
	info       porcupine.LinearizationInfo
}

// Linearizable reports whether the history was shown linearizable.
func (v Verdict) Linearizable() bool { return v.Result == porcupine.Ok }

// CheckOperations checks ops against the model, giving up after timeout (0: no limit).
func CheckOperations(ops []porcupine.Operation, timeout time.Duration) Verdict {
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(Model(), ops, timeout)
	return Verdict{Result: res, Operations: len(ops), Took: time.Since(start), info: info}
}

// Visualize writes porcupine's HTML view of the checked history (on a
// violation, the longest partial linearizations and where they fail).
func (v Verdict) Visualize(w io.Writer) error {
	return porcupine.Visualize(Model(), v.info, w)
}
