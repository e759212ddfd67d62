package coordinator

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"mplock/waitfor"
)

// describeCycle turns a confirmed cycle into the report's terms: for each
// process, what it holds that the previous one waits for, what it waits
// for, and who that is. Times count from start.
func describeCycle(c waitfor.Cycle, start time.Time, detected time.Time, look int) *Deadlock {
	d := &Deadlock{
		Servers:  len(c.Servers()),
		Formed:   c.Formed().Sub(start),
		Detected: detected.Sub(start),
		Latency:  detected.Sub(c.Formed()),
		Look:     look,
	}
	n := len(c.Edges)
	for i, e := range c.Edges {
		ce := CycleEdge{
			Proc: e.From().Name, PID: e.From().PID,
			WaitsFor: e.Lock.Name, WaitsAt: e.Lock.Server, WaitsSince: e.Waiter.Since.Sub(start),
			Blocker: e.To().Name, BlockerPID: e.To().PID, Kind: e.Kind,
		}
		if in := c.Edges[(i+n-1)%n]; in.Kind == waitfor.HeldBy {
			ce.Holds, ce.HoldsAt, ce.HoldsToken, ce.HoldsSince = in.Lock.Name, in.Lock.Server, uint64(in.Holder.Token), in.Holder.Since.Sub(start)
		}
		d.Cycle = append(d.Cycle, ce)
	}
	if len(c.Members) > n {
		for _, m := range c.Members {
			d.Members = append(d.Members, m.Name)
		}
	}
	return d
}

// chooseVictim picks the process of the cycle to kill: the one whose wait
// began last. It closed the cycle, and it has waited least, so killing it
// throws away the least waiting; it is what a database does when the
// transaction that completes a cycle is the one that gets the error. Ties
// go to the one that holds fewer locks (less work lost), then to the higher
// pid (the younger process). The reason says all that in the report's
// terms.
func chooseVictim(c waitfor.Cycle, g waitfor.Graph, start time.Time) (waitfor.Proc, string) {
	type candidate struct {
		p    waitfor.Proc
		wait waitfor.Edge
		held []waitfor.Holding
	}
	var cs []candidate
	for _, e := range c.Edges {
		cs = append(cs, candidate{p: e.From(), wait: e, held: g.Held(e.From())})
	}
	best := slices.MaxFunc(cs, func(a, b candidate) int {
		return cmp.Or(a.wait.Waiter.Since.Compare(b.wait.Waiter.Since), cmp.Compare(len(b.held), len(a.held)), cmp.Compare(a.p.PID, b.p.PID))
	})
	var names []string
	for _, h := range best.held {
		names = append(names, h.Lock.Name)
	}
	reason := fmt.Sprintf("its wait for %s began last (%s), so it closed the cycle and had waited least",
		best.wait.Lock.Name, fmtOffset(best.wait.Waiter.Since.Sub(start)))
	tied := 0
	for _, o := range cs {
		if o.wait.Waiter.Since.Equal(best.wait.Waiter.Since) {
			tied++
		}
	}
	if tied > 1 {
		others := fmt.Sprintf("%d others", tied-1)
		if tied == 2 {
			others = "1 other"
		}
		reason = fmt.Sprintf("its wait for %s began last (%s, tied with %s) and it held the fewest locks", best.wait.Lock.Name,
			fmtOffset(best.wait.Waiter.Since.Sub(start)), others)
	}
	switch len(names) {
	case 0:
		reason += "; it held no lock"
	case 1:
		reason += "; it held 1 lock (" + names[0] + ")"
	default:
		reason += fmt.Sprintf("; it held %d locks (%s)", len(names), strings.Join(names, ", "))
	}
	return best.p, reason
}

// fmtOffset formats a time from the start of the run as the timeline does:
// "+0.131s".
func fmtOffset(d time.Duration) string { return fmt.Sprintf("+%.3fs", d.Seconds()) }
