package lincheck

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// A violation is easier to understand in a short history. FailingSlice
// finds one: the lock name whose history is not linearizable, and within
// it a short prefix (operations in call order) that is already not
// linearizable. A prefix starts from the model's initial state (every
// name free, no token), which is the true state at the start of a
// recorded run. A later slice would need the state at its start, which a
// history does not tell.
//
// Cutting a history must not make it fail by itself: an operation called
// after the cut may have taken effect before an answer inside the prefix
// (a release called just after the cut, linearized before the next grant
// returned). So the operations called after the prefix's last call but
// before its last answer are kept, with their outcome left open (as if
// unknown: they may take effect at any time after their call, or never).
// Whatever linearizes the whole history then linearizes the slice too: a
// failing slice shows a real violation.

// Slice is a failing part of a history.
type Slice struct {
	Name string // the lock name whose history fails
	// Operations are the failing prefix in call order, then the later
	// operations kept with their outcome left open (Open of them).
	Operations []porcupine.Operation
	Open       int
	Of         int     // operations on that name in the whole history
	Verdict    Verdict // the check of the slice, for Visualize
	answers    []Output
}

// FailingSlice returns the smallest failing slice of ops, or false when
// every name's history is linearizable (or a check ran out of timeout, in
// which case the slice is not shown to fail). Each check it runs is
// bounded by timeout (0: none).
func FailingSlice(ops []porcupine.Operation, timeout time.Duration) (Slice, bool) {
	for _, part := range Model().Partition(ops) {
		if len(part) == 0 {
			continue
		}
		if CheckOperations(part, timeout).Result != porcupine.Illegal {
			continue
		}
		part = slices.Clone(part)
		slices.SortStableFunc(part, func(a, b porcupine.Operation) int { return cmpInt(a.Call, b.Call) })
		// The shortest failing prefix: failing is not monotonic in general
		// (an operation called later can be linearized earlier), so the
		// binary search's answer is checked, and a linear scan up from it
		// finds one that fails when it does not.
		lo, hi := 1, len(part)
		for lo < hi {
			mid := (lo + hi) / 2
			if p, _ := prefix(part, mid); CheckOperations(p, timeout).Result == porcupine.Illegal {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		for n := lo; n <= len(part); n++ {
			p, open := prefix(part, n)
			v := CheckOperations(p, timeout)
			if v.Result == porcupine.Illegal {
				sl := Slice{Name: part[0].Input.(Input).Name, Operations: p, Open: open, Of: len(part), Verdict: v}
				for _, op := range part[n : n+open] {
					sl.answers = append(sl.answers, op.Output.(Output))
				}
				return sl, true
			}
		}
	}
	return Slice{}, false
}

// prefix returns the first n operations of ops (in call order), then the
// open ones: each later operation called before the last known return
// among the first n, with its outcome left open (see FailingSlice). ops
// are in call order.
func prefix(ops []porcupine.Operation, n int) ([]porcupine.Operation, int) {
	out := slices.Clone(ops[:n])
	var last, end int64 // the last known return of the prefix; after every time
	for _, op := range ops {
		end = max(end, op.Return, op.Call)
	}
	for _, op := range out {
		if !op.Output.(Output).Unknown {
			last = max(last, op.Return)
		}
	}
	open := 0
	for _, op := range ops[n:] {
		if op.Call >= last {
			break
		}
		op.Output, op.Return = Output{Unknown: true}, end+1
		out = append(out, op)
		open++
	}
	return out, open
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Write prints the slice, one operation a line in call order, with its
// interval in milliseconds from the start of the history:
//
//	[  1021.4 ..   1023.9 ms] 3f2a preempt file_A -> granted, token 41
//
// The operations whose outcome the slice leaves open follow, each with
// what it was answered: "(left open; answered: ok)".
func (s Slice) Write(w io.Writer) error {
	m := Model()
	first := len(s.Operations) - s.Open
	for i, op := range s.Operations {
		ret := "        ?"
		if out := op.Output.(Output); !out.Unknown {
			ret = fmt.Sprintf("%9.1f", float64(op.Return)/1e6)
		}
		line := m.DescribeOperation(op.Input, op.Output)
		if i >= first && i-first < len(s.answers) {
			a := s.answers[i-first]
			_, answered, _ := strings.Cut(m.DescribeOperation(op.Input, a), " -> ")
			line += " (left open; answered: " + answered + ")"
		}
		if _, err := fmt.Fprintf(w, "[%9.1f .. %s ms] %s\n", float64(op.Call)/1e6, ret, line); err != nil {
			return err
		}
	}
	return nil
}
