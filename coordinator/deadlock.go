package coordinator

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"

	"mplock/waitfor"
	"mplock/worker"
)

// RunDeadlock runs one deadlock plan: it starts plan.Procs lock servers
// (`mplock serve`, one lock each) and as many holders (`mplock worker
// holder`), lets the holders take their locks as the strategy says, and
// meanwhile polls every server to find deadlocks, which it resolves as the
// plan says. It returns when every holder has finished, or the deadlock was
// aborted, or the timeout or ctx ended the run. Every process it started has
// exited when it returns, on every path, and so every port is free again.
//
// A cancelled ctx stops the run and returns a result with Interrupted set.
// Errors wrap ErrPlan for an invalid plan; a port in use is a
// *PortInUseError; other errors mean the run could not start.
func RunDeadlock(ctx context.Context, plan DeadlockPlan) (*DeadlockResult, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	seed := plan.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	// Every time of the run is on the wall clock (Round(0) drops the
	// monotonic reading), the clock the servers' since= and the holders'
	// notes use, so that all of them can be compared.
	r := &deadlockRun{plan: plan, start: time.Now().Round(0), notes: make(chan holderMsg, 64),
		serverExited: make(chan *child, plan.Procs), quit: make(chan struct{})}
	defer r.reapAll()
	if err := r.startServers(ctx); err != nil {
		return nil, err
	}
	det, err := dialDetector(ctx, r.addrs())
	if err != nil {
		return nil, fmt.Errorf("coordinator: detector: %w", err)
	}
	defer det.close()
	det.every = plan.DetectEvery
	r.det = det
	if err := r.startHolders(seed); err != nil {
		return nil, err
	}
	if err := r.ready(ctx); err != nil {
		return nil, err
	}
	dctx, stopDetector := context.WithCancel(context.Background())
	detected := make(chan struct{})
	go func() {
		defer close(detected)
		det.run(dctx)
	}()
	r.send(worker.HolderGo)
	r.supervise(ctx)
	stopDetector()
	<-detected
	r.stopHolders()
	det.close()
	r.stopServers()
	return r.result(), nil
}

// deadlockRun is the state of one run between start and result. Only the
// goroutine of RunDeadlock changes it, except where noted.
type deadlockRun struct {
	plan    DeadlockPlan
	start   time.Time
	servers []*deadlockServer
	holders []*deadlockHolder
	det     *detector

	notes        chan holderMsg
	serverExited chan *child
	quit         chan struct{} // closed by reapAll: note readers stop sending

	events   []DeadlockEvent
	deadlock *Deadlock
	victim   *DeadlockVictim
	graph    waitfor.Graph
	graphAt  time.Time
	firstGot int // holders that got their first lock
	nextSent bool
	stopping bool

	interrupted, timedOut bool
	failure               string
}

// holderMsg is a holder's note, or (eof) the end of its notes once the
// process has exited.
type holderMsg struct {
	h    *deadlockHolder
	note worker.HolderNote
	eof  bool
}

func (r *deadlockRun) event(e DeadlockEvent) {
	r.events = append(r.events, e)
	if r.plan.OnEvent != nil {
		r.plan.OnEvent(e)
	}
}

func (r *deadlockRun) since(t time.Time) time.Duration { return t.Round(0).Sub(r.start) }

func (r *deadlockRun) addrs() []string {
	out := make([]string, len(r.servers))
	for i, s := range r.servers {
		out[i] = s.addr
	}
	return out
}

// supervise runs the run to its end: every holder finished, a deadlock
// aborted, a process died, the timeout, or ctx cancelled.
func (r *deadlockRun) supervise(ctx context.Context) {
	timeout := time.NewTimer(r.plan.Timeout)
	defer timeout.Stop()
	for !r.allEnded() && r.failure == "" {
		select {
		case m := <-r.notes:
			r.onNote(m)
		case f := <-r.det.found:
			if r.onDeadlock(f) {
				return
			}
		case c := <-r.serverExited:
			r.failure = fmt.Sprintf("the %s (pid %d) ended during the run: %s", c.name, c.pid(), c.describe())
			r.abort(r.failure)
		case <-timeout.C:
			r.timedOut = true
			what := "the holders had not finished"
			if r.deadlock != nil {
				what = "the deadlock was left alone as asked"
			}
			r.abort(fmt.Sprintf("--timeout %v reached (%s)", r.plan.Timeout, what))
			return
		case <-ctx.Done():
			r.interrupted = true
			r.abort("interrupted")
			return
		}
	}
}

func (r *deadlockRun) allEnded() bool {
	for _, h := range r.holders {
		if !h.ended {
			return false
		}
	}
	return true
}

func (r *deadlockRun) abort(why string) {
	r.event(DeadlockEvent{At: r.since(time.Now()), Kind: EventAbort, Text: why})
}

// onNote turns a holder's note into the timeline, and keeps the run going:
// the sync barrier, and the end of a holder.
func (r *deadlockRun) onNote(m holderMsg) {
	h := m.h
	if m.eof {
		h.ended = true
		r.det.forget(h.proc())
		if h.finished || r.stopping {
			return // a stop ends every holder; the abort event says so
		}
		how := h.describe()
		if h.failed != "" && !strings.Contains(how, h.failed) {
			how += " (" + h.failed + ")"
		}
		r.event(DeadlockEvent{At: r.since(time.Now()), Kind: EventExited, Proc: h.spec.Name, PID: h.pid(), Text: how})
		if !h.victim && !r.stopping && r.failure == "" {
			r.failure = fmt.Sprintf("%s (pid %d) ended before finishing: %s", h.spec.Name, h.pid(), how)
			r.abort(r.failure)
		}
		return
	}
	n := m.note
	e := DeadlockEvent{At: r.since(n.Time()), Proc: h.spec.Name, PID: h.pid(), Lock: n.Lock, Addr: r.lockAddr(n.Lock)}
	switch n.Kind {
	case worker.HolderGot:
		e.Kind, e.Token, e.Waited = EventGot, n.Token, n.Waited
		h.holding, h.waiting, h.waitSeen = append(h.holding, n.Lock), "", ""
	case worker.HolderWaiting:
		e.Kind, e.Other, e.OtherPID = EventWaiting, n.Holder, n.HolderPID
		h.waiting = n.Lock
		if h.waitSeen == n.Lock {
			return // shown already, from the servers
		}
	case worker.HolderGaveUp:
		e.Kind, e.Waited = EventGaveUp, n.Waited
		h.retries++
		h.waiting, h.waitSeen = "", ""
	case worker.HolderBackoff:
		e.Kind, e.Waited = EventBackoff, n.Backoff
	case worker.HolderReleased:
		e.Kind = EventReleased
		h.holding = slices.DeleteFunc(h.holding, func(l string) bool { return l == n.Lock })
	case worker.HolderDone:
		e.Kind = EventDone
		h.finished, h.retries = true, n.Retries
	case worker.HolderStopped:
		e.Kind, e.Text = EventStopped, n.Text
	case worker.HolderFailed:
		h.failed = n.Text // reported with the process's end
		return
	default:
		return
	}
	r.event(e)
	if n.Kind == worker.HolderGot && !h.gotAny {
		h.gotAny = true
		r.firstGot++
		if h.spec.Sync && r.firstGot == len(r.holders) && !r.nextSent {
			r.nextSent = true
			r.send(worker.HolderNext)
		}
	}
}

func (r *deadlockRun) lockAddr(lock string) string {
	for _, s := range r.servers {
		if s.lock == lock {
			return s.addr
		}
	}
	return ""
}

// onDeadlock reports a confirmed deadlock and resolves it; it returns true
// when the run is to stop (Abort).
func (r *deadlockRun) onDeadlock(f detection) bool {
	d := describeCycle(f.cycle, r.start, f.at, f.look)
	if r.deadlock == nil {
		r.deadlock, r.graph, r.graphAt = d, f.graph, f.at
	}
	// The detector can confirm a cycle before the last holder to queue has
	// said so (it first asks its server who holds the lock): the servers'
	// view of that wait goes on the timeline instead.
	for _, e := range f.cycle.Edges {
		for _, h := range r.holders {
			if h.proc() == e.From() && h.waiting != e.Lock.Name && h.waitSeen != e.Lock.Name {
				h.waiting, h.waitSeen = e.Lock.Name, e.Lock.Name
				r.event(DeadlockEvent{At: r.since(e.Waiter.Since), Kind: EventWaiting, Proc: h.spec.Name, PID: h.pid(),
					Lock: e.Lock.Name, Addr: e.Lock.Server, Other: e.To().Name, OtherPID: e.To().PID, Text: "as its server reports"})
			}
		}
	}
	var chain []string
	for _, e := range d.Cycle {
		chain = append(chain, e.Proc+" waits for "+e.Blocker+" ("+e.WaitsFor+")")
	}
	r.event(DeadlockEvent{At: d.Detected, Kind: EventDeadlock, Text: strings.Join(chain, ", "), Waited: d.Latency})
	switch r.plan.Resolve {
	case Abort:
		r.abort("abort: ending every holder (SIGSTOP, then SIGKILL) and shutting the lock servers down")
		return true
	case None:
		r.event(DeadlockEvent{At: r.since(time.Now()), Kind: EventLeft, Text: fmt.Sprintf("leaving them stuck until --timeout %v, as asked", r.plan.Timeout)})
		return false
	}
	p, reason := chooseVictim(f.cycle, f.graph, r.start)
	for _, h := range r.holders {
		if h.proc() != p {
			continue
		}
		h.victim = true
		r.det.forget(p)
		// The time is taken before the signal: what its death lets through
		// comes after it on the timeline.
		killedAt := r.since(time.Now())
		h.cmd.Process.Signal(syscall.SIGKILL)
		v := &DeadlockVictim{Proc: p.Name, PID: p.PID, Reason: reason}
		for _, held := range f.graph.Held(p) {
			v.Held = append(v.Held, held.Lock.Name)
		}
		if r.victim == nil {
			r.victim = v
		}
		r.event(DeadlockEvent{At: killedAt, Kind: EventVictim, Proc: p.Name, PID: p.PID, Text: reason})
	}
	return false
}

func (r *deadlockRun) result() *DeadlockResult {
	p := r.plan
	p.OnEvent = nil
	res := &DeadlockResult{
		Plan: p, Start: r.start, Elapsed: time.Since(r.start),
		Deadlock: r.deadlock, Victim: r.victim,
		Looks: r.det.looks, TransientCycles: len(r.det.transient),
		Interrupted: r.interrupted, TimedOut: r.timedOut, Failure: r.failure,
	}
	for _, s := range r.servers {
		res.Servers = append(res.Servers, DeadlockServer{Lock: s.lock, Addr: s.addr, PID: s.pid(), Exit: s.describe()})
	}
	for _, h := range r.holders {
		dh := DeadlockHolder{Proc: h.spec.Name, PID: h.pid(), Completed: h.finished, Retries: h.retries,
			Victim: h.victim, Stopped: h.stopped, Exit: h.describe()}
		for _, l := range h.spec.Locks {
			dh.Locks = append(dh.Locks, l.Name)
		}
		res.Holders = append(res.Holders, dh)
	}
	res.Events = slices.Clone(r.events)
	slices.SortStableFunc(res.Events, func(a, b DeadlockEvent) int { return cmpDur(a.At, b.At) })
	if r.deadlock != nil {
		res.Graph, res.GraphAt = r.graph, r.since(r.graphAt)
	} else if len(r.det.shown.Edges) > 0 {
		res.Graph, res.GraphAt = r.det.shown, r.since(r.det.shownAt)
	}
	return res
}
