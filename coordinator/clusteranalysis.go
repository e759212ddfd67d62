package coordinator

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"mplock/lockd/replica/lincheck"
	"mplock/worker"
)

// What the clients' notes show, computed after the run: the operations by
// kind and outcome, the holds for the timeline, stale checks, double
// grants, the first success after each failover, and (with --check)
// porcupine's verdict.

// clientOf returns the UUID of a session's client name (UUID.generation).
func clientOf(session string) string {
	if i := strings.LastIndexByte(session, '.'); i > 0 {
		return session[:i]
	}
	return session
}

// analyzeNotes fills in what the notes of every client tell: res.Clients'
// operation counts, Holds, Stale, DoubleGrants, each failover's FirstOK,
// and Lin when check is set.
func analyzeNotes(res *ClusterResult, notes []worker.ClusterNote, check bool, checkTimeout time.Duration) {
	since := func(ns int64) time.Duration { return time.Unix(0, ns).Sub(res.Start) }
	byID := map[string]*ClusterClientResult{}
	for i := range res.Clients {
		c := &res.Clients[i]
		if c.Ops == nil {
			c.Ops = map[string]int{}
		}
		byID[c.ID] = c
	}
	ops := slices.Clone(notes)
	ops = slices.DeleteFunc(ops, func(n worker.ClusterNote) bool { return n.Kind != worker.ClusterNoteOp })
	slices.SortStableFunc(ops, func(a, b worker.ClusterNote) int { return cmpInt64(a.Call, b.Call) })

	// Holds: from a grant's return to the release's call (or the expiry's
	// return, when the session lapsed), by session and name.
	type key struct{ session, name string }
	open := map[key]int{} // index in res.Holds
	end := since(time.Now().UnixNano())
	for _, n := range ops {
		if c := byID[clientOf(n.Client)]; c != nil && n.Op != "expire" {
			c.Ops[n.Op+" "+string(n.Outcome)]++
		}
		k := key{n.Client, n.Name}
		switch {
		case n.Op == "preempt" && n.Outcome == worker.OutcomeOK && n.Reply.OK:
			res.Holds = append(res.Holds, HoldSpan{Client: clientOf(n.Client), Name: n.Name, Token: n.Reply.Token, From: since(n.Return), To: -1})
			open[k] = len(res.Holds) - 1
		case (n.Op == "release" && n.Outcome != worker.OutcomeDropped) || n.Op == "expire":
			if i, ok := open[k]; ok {
				to := since(n.Call)
				if n.Op == "expire" || n.Outcome == worker.OutcomeUnknown {
					to = since(n.Return)
				}
				res.Holds[i].To = max(to, res.Holds[i].From)
				delete(open, k)
			}
		case n.Op == "check" && n.Outcome == worker.OutcomeOK && n.Reply.Consistency == worker.Stale:
			res.Stale.Count++
			res.Stale.LargestLag = max(res.Stale.LargestLag, n.Reply.Contact)
		}
	}
	for i := range res.Holds {
		if res.Holds[i].To < 0 {
			res.Holds[i].To = end
		}
	}
	res.DoubleGrants = doubleGrants(ops, since)
	for i := range res.Failovers {
		f := &res.Failovers[i]
		f.FirstOK = -1
		for _, n := range ops {
			if since(n.Call) >= f.At && n.Outcome == worker.OutcomeOK && n.Op != "expire" && n.Op != "check" {
				if d := since(n.Return) - f.At; f.FirstOK < 0 || d < f.FirstOK {
					f.FirstOK = d
				}
			}
		}
	}
	if check {
		res.Lin = checkHistory(notes, res.Start, checkTimeout)
	}
}

// checkHistory checks the clients' operations with porcupine and, on a
// violation, finds the smallest failing slice.
func checkHistory(notes []worker.ClusterNote, start time.Time, timeout time.Duration) *Linearizability {
	h := lincheck.NewHistoryAt(start)
	for _, n := range notes {
		if in, out, call, ret, ok := n.HistoryOp(); ok {
			h.Record(in, out, call, ret)
		}
	}
	ops := h.Operations()
	v := lincheck.CheckOperations(ops, timeout)
	lin := &Linearizability{Result: strings.ToLower(string(v.Result)), Operations: v.Operations, Took: v.Took}
	if v.Result != porcupine.Illegal {
		return lin
	}
	if s, ok := lincheck.FailingSlice(ops, timeout); ok {
		lin.SliceName, lin.SliceOps, lin.SliceOpen, lin.SliceOf = s.Name, len(s.Operations)-s.Open, s.Open, s.Of
		var b bytes.Buffer
		s.Write(&b)
		lin.SliceLines = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		b.Reset()
		if s.Verdict.Visualize(&b) == nil {
			lin.HTML = b.Bytes()
		}
	}
	return lin
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// doubleGrants finds grants made while another session surely held the
// name: a preempt called after another session's grant returned, and
// returned granted before that session's release (or the earliest moment
// its session could have lapsed) was called. ops are in call order.
func doubleGrants(ops []worker.ClusterNote, since func(int64) time.Duration) []DoubleGrant {
	type hold struct {
		session string
		call    int64 // the grant's call
		from    int64 // the grant's return
		to      int64 // the release's or expiry's call; 0: still held
		token   uint64
	}
	holds := map[string][]*hold{} // by name
	open := map[[2]string]*hold{}
	for _, n := range ops {
		k := [2]string{n.Client, n.Name}
		switch {
		case n.Op == "preempt" && n.Outcome == worker.OutcomeOK && n.Reply.OK:
			h := &hold{session: n.Client, call: n.Call, from: n.Return, token: n.Reply.Token}
			holds[n.Name] = append(holds[n.Name], h)
			open[k] = h
		case n.Op == "release" || n.Op == "expire":
			if h := open[k]; h != nil && n.Outcome != worker.OutcomeDropped {
				h.to = n.Call
				delete(open, k)
			}
		}
	}
	var out []DoubleGrant
	for name, hs := range holds {
		for _, b := range hs {
			for _, a := range hs {
				// b's grant, call to return, lies wholly inside a's
				// sure hold.
				if a.session != b.session && b.call > a.from && (a.to == 0 || b.from < a.to) {
					out = append(out, DoubleGrant{Name: name, First: clientOf(a.session), Second: clientOf(b.session),
						At: since(b.from), Tokens: [2]uint64{a.token, b.token}})
				}
			}
		}
	}
	slices.SortFunc(out, func(x, y DoubleGrant) int { return cmpDur(x.At, y.At) })
	return out
}
