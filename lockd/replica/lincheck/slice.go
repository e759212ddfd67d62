package lincheck

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// A violation is easier to understand in a short history. FailingSlice
// finds one: the lock name whose history is not linearizable, and within
// it the shortest prefix (operations in call order) that is already not
// linearizable. A prefix starts from the model's initial state (every
// name free, no token), which is the true state at the start of a
// recorded run, so the slice fails for the same reason as the whole: it
// holds every operation that led to the failing one. A later slice would
// need the state at its start, which a history does not tell.

// Slice is a failing part of a history.
type Slice struct {
	Name       string                // the lock name whose history fails
	Operations []porcupine.Operation // the shortest failing prefix, in call order
	Of         int                   // operations on that name in the whole history
	Verdict    Verdict               // the check of the slice, for Visualize
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
			if CheckOperations(prefix(part, mid), timeout).Result == porcupine.Illegal {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		for n := lo; n <= len(part); n++ {
			v := CheckOperations(prefix(part, n), timeout)
			if v.Result == porcupine.Illegal {
				return Slice{Name: part[0].Input.(Input).Name, Operations: prefix(part, n), Of: len(part), Verdict: v}, true
			}
		}
	}
	return Slice{}, false
}

// prefix returns the first n operations of ops (in call order); an
// operation that returned after the last call of the prefix keeps its
// return time.
func prefix(ops []porcupine.Operation, n int) []porcupine.Operation {
	return slices.Clone(ops[:n])
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
func (s Slice) Write(w io.Writer) error {
	m := Model()
	for _, op := range s.Operations {
		ret := "        ?"
		if out := op.Output.(Output); !out.Unknown {
			ret = fmt.Sprintf("%9.1f", float64(op.Return)/1e6)
		}
		if _, err := fmt.Fprintf(w, "[%9.1f .. %s ms] %s\n", float64(op.Call)/1e6, ret,
			m.DescribeOperation(op.Input, op.Output)); err != nil {
			return err
		}
	}
	return nil
}
