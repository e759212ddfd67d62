package lincheck

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestExpire: a lapsed session frees its client's lock at some moment in
// the expiry's interval, and only that client's.
func TestExpire(t *testing.T) {
	pa := Input{Kind: Preempt, Client: "A", Name: "x"}
	pb := Input{Kind: Preempt, Client: "B", Name: "x"}
	ea := Input{Kind: Expire, Client: "A", Name: "x"}
	eb := Input{Kind: Expire, Client: "B", Name: "x"}
	ok := []porcupine.Operation{
		op(0, pa, Output{OK: true, Token: 1}, 0, 1),
		op(0, ea, Output{}, 2, 10),
		op(1, pb, Output{OK: true, Token: 2}, 5, 6), // inside the expiry: fine
	}
	if !CheckOperations(ok, 0).Linearizable() {
		t.Fatal("a grant to B during A's expiry rejected")
	}
	bad := []porcupine.Operation{
		op(0, pa, Output{OK: true, Token: 1}, 0, 1),
		op(0, eb, Output{}, 2, 10), // someone else's session
		op(1, pb, Output{OK: true, Token: 2}, 5, 6),
	}
	if CheckOperations(bad, 0).Linearizable() {
		t.Fatal("B's expiry freed A's lock")
	}
	early := []porcupine.Operation{
		op(0, pa, Output{OK: true, Token: 1}, 0, 1),
		op(1, pb, Output{OK: true, Token: 2}, 2, 3), // before A's session could lapse
		op(0, ea, Output{}, 4, 10),
	}
	if CheckOperations(early, 0).Linearizable() {
		t.Fatal("a grant before the expiry's interval accepted")
	}
}

// TestRecordAndFailingSlice: operations recorded from notes (wall-clock
// times) are checked like called ones; a double grant among many good
// operations is reduced to the shortest prefix of its name that fails.
func TestRecordAndFailingSlice(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	h := NewHistoryAt(t0)
	// y: a long, good history.
	for i := range 20 {
		c := string(rune('A' + i%3))
		h.Record(Input{Kind: Preempt, Client: c, Name: "y"}, Output{OK: true, Token: uint64(i + 1)}, at(10*i), at(10*i+2))
		h.Record(Input{Kind: Release, Client: c, Name: "y"}, Output{OK: true}, at(10*i+3), at(10*i+4))
	}
	// x: two good rounds, then B granted while A holds, then more.
	x := func(kind Kind, c string, out Output, call int) {
		h.Record(Input{Kind: kind, Client: c, Name: "x"}, out, at(call), at(call+2))
	}
	x(Preempt, "A", Output{OK: true, Token: 100}, 0)
	x(Release, "A", Output{OK: true}, 5)
	x(Preempt, "B", Output{OK: true, Token: 101}, 10)
	x(Release, "B", Output{OK: true}, 15)
	x(Preempt, "A", Output{OK: true, Token: 102}, 20)
	x(Check, "C", Output{Owner: "A"}, 25)
	x(Preempt, "B", Output{OK: true, Token: 103}, 30) // the double grant
	x(Release, "A", Output{OK: true}, 35)
	x(Release, "B", Output{OK: true}, 40)
	h.Record(Input{Kind: Check, Client: "C", Name: "x"}, Output{}, at(45), time.Time{}) // never returned
	ops := h.Operations()
	if v := CheckOperations(ops, 0); v.Linearizable() {
		t.Fatal("a double grant passed the check")
	}
	s, ok := FailingSlice(ops, 0)
	if !ok {
		t.Fatal("no failing slice found")
	}
	if s.Name != "x" || len(s.Operations) != 7 || s.Of != 10 {
		t.Fatalf("slice of %q, %d of %d operations; want x, the first 7 of 10", s.Name, len(s.Operations), s.Of)
	}
	var buf bytes.Buffer
	if err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "B preempt x -> granted, token 103") {
		t.Fatalf("slice printed without the double grant:\n%s", buf.String())
	}
	var html bytes.Buffer
	if err := s.Verdict.Visualize(&html); err != nil || !strings.Contains(html.String(), "<html") {
		t.Fatalf("visualize the slice: %v", err)
	}
	good := NewHistoryAt(t0)
	good.Record(Input{Kind: Preempt, Client: "A", Name: "x"}, Output{OK: true, Token: 1}, at(0), at(1))
	if _, ok := FailingSlice(good.Operations(), 0); ok {
		t.Fatal("a failing slice in a linearizable history")
	}
}

// TestFailingSliceDoesNotFailByTheCut: cutting a history in call order
// can drop a release that the next grant's answer waited for (called
// after the cut, linearized before the grant returned); such a prefix
// fails for no fault of the service. The slice keeps that release with
// its outcome open, and goes on to the real double grant.
func TestFailingSliceDoesNotFailByTheCut(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	h := NewHistoryAt(t0)
	rec := func(kind Kind, c string, out Output, call, ret int) {
		h.Record(Input{Kind: kind, Client: c, Name: "x"}, out, at(call), at(ret))
	}
	rec(Preempt, "A", Output{OK: true, Token: 1}, 0, 2)
	rec(Preempt, "B", Output{OK: true, Token: 2}, 5, 40) // granted once A's release went through
	rec(Release, "A", Output{OK: true}, 10, 20)
	rec(Preempt, "C", Output{OK: true, Token: 3}, 50, 52) // B never released: the double grant
	ops := h.Operations()
	s, ok := FailingSlice(ops, 0)
	if !ok {
		t.Fatal("no failing slice found")
	}
	var buf bytes.Buffer
	s.Write(&buf)
	if !strings.Contains(buf.String(), "C preempt x -> granted, token 3") {
		t.Fatalf("the slice does not reach the double grant:\n%s", buf.String())
	}
	// Every prefix before C's grant, with what it leaves open, passes.
	for n := 1; n < 4; n++ {
		part := slices.Clone(ops)
		slices.SortStableFunc(part, func(a, b porcupine.Operation) int { return cmpInt(a.Call, b.Call) })
		if p, _ := prefix(part, n); !CheckOperations(p, 0).Linearizable() {
			t.Fatalf("the first %d operations, with those left open, fail", n)
		}
	}
}
