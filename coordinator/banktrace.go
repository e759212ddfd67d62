package coordinator

import (
	"math"
	"sort"
	"time"

	"mplock/shm"
	"mplock/worker"
)

// TraceOp is one read-modify-write of the balance as a worker's trace
// recorded it (shm.Trace), decoded: times are since the run's start
// barrier, versions count the writes the balance descends from.
type TraceOp struct {
	Slot int
	Pid  int
	Role worker.Role

	ReadVersion  uint32
	ReadBalance  int64
	WroteVersion uint32
	WroteBalance int64
	// Read and Wrote bracket the operation's window (see shm.TraceRecord).
	Read, Wrote time.Duration
	// Overwrote is set when the write replaced a balance this operation had
	// not read: another worker's write, landed in between (SeenVersion and
	// SeenBalance).
	Overwrote   bool
	SeenVersion uint32
	SeenBalance int64

	read, wrote, seen uint64 // the account words
}

// BankTrace is what the workers' traces recorded: each worker's latest
// operations around the moment the traces froze (the first overwritten
// write, or the first worker done), and a lost update among them.
type BankTrace struct {
	Workers [][]TraceOp // per worker slot, oldest first
	// Frozen is when the traces froze, since the start; -1 if they did not.
	Frozen time.Duration
	// Lost is an update the run lost, shown as it happened; nil when the
	// traces hold none that can be shown for certain.
	Lost *LostUpdate
}

// LostUpdate is a write that another overwrote and that no one had read:
// its update is gone. Overwritten read the balance and wrote it; By read the
// balance before that write landed and wrote after it, replacing it.
type LostUpdate struct {
	Overwritten, By TraceOp
	// SameRead is the textbook case: both read the same balance (the same
	// version), so both wrote the same version.
	SameRead bool
	// Writes is how many writes By's write erased: every write since the
	// balance By read, Overwritten's the last of them. Below 1 when
	// Overwritten was itself a stale write (its worker read before the
	// balance By read, so the versions cross): report.LostUpdateText
	// tells that story.
	Writes int64
}

// span is the stretch of time in which a worker's trace holds every one of
// its operations: from its oldest kept operation (or the start, if its ring
// never wrapped) to its last recorded one (or the end, if it recorded all).
type span struct{ from, to time.Duration }

const (
	never  = time.Duration(math.MinInt64)
	always = time.Duration(math.MaxInt64)
)

// traceOf decodes the workers' traces of a run that started at startNs.
func traceOf(b *shm.Bank, procs []ProcResult, startNs int64) *BankTrace {
	initial, amount := b.Control.Initial, b.Control.Amount
	balance := func(w uint64) (uint32, int64) {
		v, net := shm.UnpackAccount(w)
		return v, initial + amount*int64(net)
	}
	tr := &BankTrace{Frozen: -1}
	var spans []span
	for i := range b.Workers() {
		t := b.Trace(i)
		delta := shm.Deposit
		if worker.RoleOf(i) == worker.Withdrawer {
			delta = shm.Withdraw
		}
		var ops []TraceOp
		for _, rec := range t.Snapshot() {
			op := TraceOp{Slot: i, Role: worker.RoleOf(i), read: rec.Read, wrote: rec.Read + delta, seen: rec.Seen,
				Read: time.Duration(rec.ReadNs - startNs), Wrote: time.Duration(rec.WriteNs - startNs), Overwrote: rec.Seen != rec.Read}
			if i < len(procs) {
				op.Pid = procs[i].Pid
			}
			op.ReadVersion, op.ReadBalance = balance(op.read)
			op.WroteVersion, op.WroteBalance = balance(op.wrote)
			op.SeenVersion, op.SeenBalance = balance(op.seen)
			ops = append(ops, op)
		}
		tr.Workers = append(tr.Workers, ops)
		sp := span{never, always}
		n := t.Count.Load()
		if n > shm.TraceLen {
			sp.from = ops[0].Read
		}
		if i >= len(procs) || int64(n) != procs[i].Ops {
			sp.to = never
			if len(ops) > 0 {
				sp.to = ops[len(ops)-1].Wrote
			}
		}
		spans = append(spans, sp)
	}
	if ns := b.Control.FrozenNs.Load(); b.Control.TraceFreeze.Load() != 0 && ns != 0 {
		tr.Frozen = time.Duration(ns - startNs)
	}
	tr.Lost = findLost(tr.Workers, spans)
	return tr
}

// findLost picks, among the traced writes that overwrote another's (By), one
// whose overwritten write is lost for certain, preferring the textbook case
// of two workers reading the same balance, then the earliest.
//
// A write X overwritten by By is lost unless someone read X's balance
// before By replaced it, and carried it on. That is known only when every
// read between X's write and By's is in the traces: each worker's span
// (traceOf) must cover the time from X's read to By's write.
func findLost(workers [][]TraceOp, spans []span) *LostUpdate {
	var all []TraceOp
	for _, ops := range workers {
		all = append(all, ops...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Wrote < all[j].Wrote })
	var best *LostUpdate
	for _, by := range all {
		if !by.Overwrote {
			continue
		}
		// The overwritten write: the latest before By's that wrote what By saw.
		var x *TraceOp
		for i := range all {
			if op := &all[i]; op.Slot != by.Slot && op.wrote == by.seen && op.Read <= by.Wrote {
				x = op
			}
		}
		if x == nil || !covered(spans, x.Read, by.Wrote) || carried(all, *x, by) {
			continue
		}
		lu := &LostUpdate{Overwritten: *x, By: by, SameRead: x.read == by.read,
			Writes: int64(x.WroteVersion) - int64(by.ReadVersion)}
		if best == nil || lu.SameRead && !best.SameRead {
			best = lu
		}
		if best.SameRead {
			break
		}
	}
	return best
}

// covered reports whether every worker's trace holds all its operations
// from from to to.
func covered(spans []span, from, to time.Duration) bool {
	for _, sp := range spans {
		if sp.from > from || sp.to < to {
			return false
		}
	}
	return true
}

// carried reports whether an operation other than by read x's balance after
// x wrote it: then x's update lived on in that operation's write.
func carried(all []TraceOp, x, by TraceOp) bool {
	for _, z := range all {
		if z.read == x.wrote && z.Wrote > x.Read && !(z.Slot == by.Slot && z.Read == by.Read) {
			return true
		}
	}
	return false
}
