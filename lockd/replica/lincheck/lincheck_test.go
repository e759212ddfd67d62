package lincheck

import (
	"bytes"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// op builds an operation called at call and returned at ret.
func op(client int, in Input, out Output, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
}

func TestModel(t *testing.T) {
	pa := Input{Kind: Preempt, Client: "A", Name: "x"}
	pb := Input{Kind: Preempt, Client: "B", Name: "x"}
	ra := Input{Kind: Release, Client: "A", Name: "x"}
	rb := Input{Kind: Release, Client: "B", Name: "x"}
	chk := Input{Kind: Check, Client: "C", Name: "x"}
	cases := []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"sequential grant, check, release, grant", []porcupine.Operation{
			op(0, pa, Output{OK: true, Token: 5}, 0, 1),
			op(2, chk, Output{Owner: "A"}, 2, 3),
			op(0, ra, Output{OK: true}, 4, 5),
			op(1, pb, Output{OK: true, Token: 6}, 6, 7),
		}, true},
		{"two owners at once", []porcupine.Operation{
			op(0, pa, Output{OK: true, Token: 5}, 0, 1),
			op(1, pb, Output{OK: true, Token: 6}, 2, 3),
		}, false},
		{"overlapping preempts, one wins", []porcupine.Operation{
			op(0, pa, Output{OK: true, Token: 5}, 0, 10),
			op(1, pb, Output{OK: false}, 1, 9),
		}, true},
		{"a token that does not rise", []porcupine.Operation{
			op(0, pa, Output{OK: true, Token: 5}, 0, 1),
			op(0, ra, Output{OK: true}, 2, 3),
			op(1, pb, Output{OK: true, Token: 5}, 4, 5),
		}, false},
		{"release by a non-owner succeeds", []porcupine.Operation{
			op(0, pa, Output{OK: true, Token: 5}, 0, 1),
			op(1, rb, Output{OK: true}, 2, 3),
		}, false},
		{"a check that misses a completed grant", []porcupine.Operation{
			op(0, pa, Output{OK: true, Token: 5}, 0, 1),
			op(2, chk, Output{Owner: ""}, 2, 3),
		}, false},
		{"refused preempt of a free name", []porcupine.Operation{
			op(1, pb, Output{OK: false}, 0, 1),
		}, false},
		{"an unknown preempt explains a later refusal", []porcupine.Operation{
			op(0, pa, Output{Unknown: true}, 0, 100),
			op(1, pb, Output{OK: false}, 5, 6),
		}, true},
		{"an unknown preempt may have had no effect", []porcupine.Operation{
			op(0, pa, Output{Unknown: true}, 0, 100),
			op(1, pb, Output{OK: true, Token: 3}, 5, 6),
		}, true},
	}
	for _, c := range cases {
		v := CheckOperations(c.ops, 0)
		if v.Linearizable() != c.ok {
			t.Errorf("%s: linearizable %v, want %v", c.name, v.Linearizable(), c.ok)
		}
	}
}

// TestModelPartitionsByName: a grant of y does not conflict with a grant
// of x.
func TestModelPartitionsByName(t *testing.T) {
	ops := []porcupine.Operation{
		op(0, Input{Kind: Preempt, Client: "A", Name: "x"}, Output{OK: true, Token: 1}, 0, 1),
		op(1, Input{Kind: Preempt, Client: "B", Name: "y"}, Output{OK: true, Token: 2}, 2, 3),
	}
	if v := CheckOperations(ops, 0); !v.Linearizable() {
		t.Fatal("grants of two names conflict")
	}
}

func TestHistoryAndVisualize(t *testing.T) {
	h := NewHistory()
	p := h.Call(Input{Kind: Preempt, Client: "A", Name: "x"})
	q := h.Call(Input{Kind: Preempt, Client: "B", Name: "x"})
	d := h.Call(Input{Kind: Check, Client: "C", Name: "x"})
	p.Return(Output{OK: true, Token: 1})
	q.Unknown()
	d.Drop()
	h.Call(Input{Kind: Release, Client: "A", Name: "x"}) // still pending
	ops := h.Operations()
	if len(ops) != 3 {
		t.Fatalf("%d operations, want 3 (the check dropped)", len(ops))
	}
	for _, o := range ops {
		if o.Return <= o.Call {
			t.Fatalf("operation %+v returns before its call", o)
		}
	}
	if !ops[1].Output.(Output).Unknown || !ops[2].Output.(Output).Unknown {
		t.Fatal("unknown and pending operations must be Unknown")
	}
	v := CheckOperations(ops, 0)
	if !v.Linearizable() {
		t.Fatal("history not linearizable")
	}
	var buf bytes.Buffer
	if err := v.Visualize(&buf); err != nil || !strings.Contains(buf.String(), "<html") {
		t.Fatalf("visualize: %v (%d bytes)", err, buf.Len())
	}
}
