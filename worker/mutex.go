package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"syscall"
	"time"

	"mplock/dmutex"
	"mplock/shm"
)

// Delivery measurement. Before the start, peer 0 times warmupPings+Pings
// round trips in a row with every other process idle; during the run it
// keeps one ping in flight every runPingEvery, so that the delivery time is
// also known under the run's own load, where the synchronization delay is
// measured.
const (
	warmupPings  = 20
	runPingEvery = 5 * time.Millisecond
	runPingBase  = 1 << 32 // sequence numbers of in-run pings start here

	// eventFlushEvery is how often a verbose process sends its buffered
	// events to the coordinator, which shows them as they come.
	eventFlushEvery = 20 * time.Millisecond
)

// RunMutex is the whole life of one process of a mutex run (a peer, or the
// central algorithm's lock server), and takes the process over: it sets
// GOMAXPROCS to 1. It reads its MutexSpec from control, opens its listener
// and reports the address on report, reads the others' addresses from
// control, connects, registers in its slot and waits at the barrier; peer 0
// first measures one message's delivery time with pings. After that, each
// line on control means the phase word in the region changed (see
// OpenControl for making control pollable); its end means the coordinator
// is gone.
//
// A peer then loops until the coordinator's phase says exit: think, request
// the critical section, enter (marking entry and exit in the shared region,
// the independent safety check), stay for spec.CS, release. It answers the
// others' messages all the while, and after the stop phase it asks no more
// but keeps answering, so that nobody is left waiting for it. Between two
// entries it always handles the messages that have reached it, even when
// nothing makes it wait (no think time, no time inside, and an algorithm
// that lets it enter again without a message).
//
// Malformed messages and refused connections are reported and counted in
// the slot; they do not stop the process. A broken link is reported; the
// coordinator, which sees the process at the other end die, decides what
// happens to the run. ctx's cancellation ends the process at once.
func RunMutex(ctx context.Context, role MutexRole, region *shm.Region, control io.Reader, report io.Writer) error {
	// A process is one sequential actor: its loop and one reader per link
	// take turns. On one scheduler slot a message goes from the reader to
	// the loop without waking a second thread, which on a machine with
	// fewer CPUs than processes is most of a message's cost.
	runtime.GOMAXPROCS(1)
	cr := bufio.NewReader(control)
	var spec MutexSpec
	if err := readJSONLine(cr, &spec); err != nil {
		return fmt.Errorf("worker: mutex spec: %w", err)
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	if spec.Role != role {
		return fmt.Errorf("worker: mutex: started as %s with a %s's spec", role, spec.Role)
	}
	mx, err := shm.OpenMutex(region)
	if err != nil {
		return err
	}
	if spec.Slot < 0 || spec.Slot >= mx.Slots() {
		return fmt.Errorf("worker: slot %d outside the region's %d slots", spec.Slot, mx.Slots())
	}
	p := &mutexPeer{spec: spec, mx: mx, slot: mx.Slot(spec.Slot), control: cr, notes: noteWriter{bufio.NewWriterSize(report, 64<<10)},
		rng: rand.New(rand.NewPCG(spec.Seed, uint64(spec.ID)))}
	p.slot.Pid.Store(int32(syscall.Getpid()))

	ln, err := listen(&spec)
	if err != nil {
		return err
	}
	p.notes.listening(ln.Addr().String())
	var addrs MutexAddrs
	if err := readJSONLine(cr, &addrs); err != nil {
		ln.Close()
		return fmt.Errorf("worker: mutex addresses: %w", err)
	}
	p.mesh, err = connect(ctx, &spec, ln, addrs, func(s string) { p.reject(s) })
	if err != nil {
		return err
	}
	defer p.mesh.close()
	if err := p.build(); err != nil {
		return err
	}
	p.mesh.start()
	if spec.Garbage {
		p.sendGarbage()
	}
	if spec.Role == MutexPeer && spec.ID == 0 && spec.Pings > 0 {
		if err := p.measureDelivery(ctx); err != nil {
			return err
		}
	}
	p.slot.State.Store(uint32(shm.SlotReady))
	ctl := mx.Control
	ctl.Ready.Add(1)
	if _, err := shm.Wake(&ctl.Ready, 1); err != nil {
		return err
	}
	if err := p.loop(ctx); err != nil {
		return err
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return p.notes.done(ru.Utime.Nano(), ru.Stime.Nano())
}

// mutexPeer is the state of one process's loop.
type mutexPeer struct {
	spec    MutexSpec
	mx      *shm.Mutex
	slot    *shm.MutexSlot
	mesh    *mesh
	control *bufio.Reader
	notes   noteWriter
	rng     *rand.Rand

	node dmutex.Node
	proc dmutex.Process // nil for the server

	phase       shm.MutexPhase
	entry       shm.Entry
	inside      bool
	requestedAt int64
	finished    bool
	timer       *time.Timer
	timerC      <-chan time.Time // think (Released) or stay (Held) timer
	due         bool             // a request with no think time is to be made from the loop
	now         chan struct{}    // closed: the loop's case for what is due now
	reported    [dmutex.MaxIDs]bool

	// In-run delivery measurement (peer 0).
	pingTicker *time.Ticker
	pingC      <-chan time.Time
	pingTarget int
	pingSeq    uint64
	pingSentAt int64 // 0 when no ping is in flight
	pingRTT    []int64
}

func (p *mutexPeer) build() error {
	cfg := dmutex.Config{ID: p.spec.ID, N: p.spec.N, Transport: counted{p}}
	if p.spec.Verbose {
		cfg.Observe = func(e dmutex.Event) { p.notes.event(Now(), e) }
	}
	var err error
	if p.spec.Role == MutexServer {
		p.node, err = dmutex.NewServer(cfg)
	} else {
		p.proc, err = dmutex.New(p.spec.Algorithm, cfg)
		p.node = p.proc
	}
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	p.now = make(chan struct{})
	close(p.now)
	return err
}

// counted is the process's transport: the mesh, counting the algorithm's
// messages in the slot.
type counted struct{ p *mutexPeer }

func (c counted) Send(m dmutex.Message) error {
	err := c.p.mesh.Send(m)
	if err == nil && m.Kind.Algorithmic() {
		c.p.slot.Sent.Add(1)
	}
	return err
}

// loop runs the process until the exit phase.
func (p *mutexPeer) loop(ctx context.Context) error {
	lines := make(chan bool, 4)
	go watchControl(p.control, lines, p.mesh.done)
	var flushC <-chan time.Time
	if p.spec.Verbose {
		t := time.NewTicker(eventFlushEvery)
		defer t.Stop()
		flushC = t.C
	}
	for p.phase != shm.PhaseExit {
		// A request due now is one more event, offered only when no message
		// has reached the process: between two entries the loop takes what
		// the others sent, even when the algorithm lets it enter again
		// without a message (kept permissions, a token it holds), so a
		// request that has arrived makes it give them up.
		var dueC <-chan struct{}
		if p.due && !p.mesh.waiting() {
			dueC = p.now
		}
		select {
		case <-dueC:
			p.due = false
			p.syncPhase() // a process that never waits still sees a stop
			p.timerFired()
		case in := <-p.mesh.in:
			p.receive(in)
		case ok := <-lines:
			// The phase word is read here, in the goroutine that returns:
			// the region is unmapped once RunMutex returns, and a goroutine
			// left blocked on the control pipe must never touch it.
			ph := shm.PhaseExit
			if ok {
				ph = p.mx.Phase()
			}
			p.setPhase(ph)
		case <-p.timerC:
			p.timerC = nil
			p.timerFired()
		case <-p.pingC:
			p.ping()
		case <-flushC:
			p.notes.w.Flush()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// watchControl reads the coordinator's control lines (one per phase change)
// and reports each with true; the end of the control pipe, which means the
// coordinator is gone, is reported with false. The pipe is polled by the
// runtime's network poller: no thread and no scheduler slot is held while
// waiting, which a blocking futex wait would do. It touches no shared
// memory: it may outlive the region's mapping, blocked on the pipe.
func watchControl(cr *bufio.Reader, lines chan<- bool, done <-chan struct{}) {
	for {
		_, err := cr.ReadString('\n')
		select {
		case lines <- err == nil:
		case <-done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (p *mutexPeer) setPhase(ph shm.MutexPhase) {
	if ph <= p.phase {
		return
	}
	prev := p.phase
	p.phase = ph
	if prev == shm.PhaseBarrier && ph < shm.PhaseExit {
		p.slot.State.Store(uint32(shm.SlotRunning))
		if err := p.node.Start(); err != nil {
			p.sendFailed(err)
		}
		if ph == shm.PhaseRun && p.proc != nil {
			p.think()
		}
		if ph == shm.PhaseRun && p.spec.Pings > 0 {
			p.pingTarget = p.mesh.neighbors()[0]
			p.pingSeq = runPingBase
			p.pingTicker = time.NewTicker(runPingEvery)
			p.pingC = p.pingTicker.C
		}
	}
	if ph >= shm.PhaseStop && p.pingTicker != nil {
		p.pingTicker.Stop()
		p.pingC = nil
		p.pingTicker = nil
		if len(p.pingRTT) > 0 {
			p.notes.delivery("run", deliveryOf(p.pingRTT))
		}
	}
	switch ph {
	case shm.PhaseStop:
		if p.proc == nil || p.proc.State() == dmutex.Released {
			p.stopTimer()
			p.finish()
		}
	case shm.PhaseExit:
		p.stopTimer()
		p.finish()
		p.notes.w.Flush()
	}
	p.publish()
}

func (p *mutexPeer) finish() {
	if !p.finished {
		p.finished = true
		p.slot.State.Store(uint32(shm.SlotDone))
	}
}

// think waits a random time in [ThinkMin, ThinkMax], then requests. With
// no think time the request is due at once, and the loop makes it: never
// from here, because a process that enters without a message (and, with no
// time in the critical section, releases at once) would otherwise request,
// enter and release again by recursion, never handling a message.
func (p *mutexPeer) think() {
	d := p.spec.ThinkMin
	if span := p.spec.ThinkMax - p.spec.ThinkMin; span > 0 {
		d += time.Duration(p.rng.Int64N(int64(span) + 1))
	}
	if d <= 0 {
		p.due = true
		return
	}
	p.startTimer(d)
}

func (p *mutexPeer) startTimer(d time.Duration) {
	p.timer.Reset(d)
	p.timerC = p.timer.C
}

// stopTimer cancels the pending think or stay, and a request due at once.
func (p *mutexPeer) stopTimer() {
	p.timer.Stop()
	p.timerC = nil
	p.due = false
}

func (p *mutexPeer) timerFired() {
	switch {
	case p.proc == nil:
	case p.inside:
		p.release()
	case p.proc.State() == dmutex.Released && p.phase == shm.PhaseRun:
		p.request()
	}
}

func (p *mutexPeer) request() {
	p.requestedAt = Now()
	p.slot.RequestedAt.Store(p.requestedAt)
	if err := p.proc.Request(); err != nil {
		p.sendFailed(err)
	}
	p.afterStep()
}

// afterStep enters the critical section if the algorithm now allows it, and
// publishes the process's state in its slot.
func (p *mutexPeer) afterStep() {
	if p.proc != nil && !p.inside && p.proc.State() == dmutex.Held {
		p.enter()
	}
	p.publish()
}

func (p *mutexPeer) enter() {
	p.inside = true
	p.entry, _ = p.mx.Enter(p.spec.ID, p.proc.RequestTS(), p.requestedAt, Now())
	p.slot.Entries.Add(1)
	if p.spec.CS > 0 {
		p.startTimer(p.spec.CS)
		return
	}
	p.release()
}

func (p *mutexPeer) release() {
	p.mx.Exit(p.entry, Now())
	p.inside = false
	p.slot.RequestedAt.Store(0)
	if err := p.proc.Release(); err != nil {
		p.sendFailed(err)
	}
	if p.phase == shm.PhaseRun {
		p.think()
		return
	}
	p.finish()
	p.publish()
}

func (p *mutexPeer) publish() {
	s := p.slot
	s.Clock.Store(p.node.Clock())
	if p.proc == nil {
		if srv, ok := p.node.(dmutex.LockServer); ok {
			var w dmutex.Set
			if h := srv.Holder(); h >= 0 {
				w.Add(h)
			}
			words := w.Words()
			s.Awaiting[0].Store(words[0])
			s.Awaiting[1].Store(words[1])
		}
		return
	}
	s.Proc.Store(uint32(p.proc.State()))
	if t, ok := p.proc.(interface{ HasToken() bool }); ok {
		var v uint32
		if t.HasToken() {
			v = 1
		}
		s.Token.Store(v)
	}
	words := p.proc.Awaiting().Words()
	s.Awaiting[0].Store(words[0])
	s.Awaiting[1].Store(words[1])
}

// syncPhase catches up with the phase word before the watcher reports it: a
// process that saw the run start may already have sent us a request, and one
// that saw the exit may already have closed its links.
func (p *mutexPeer) syncPhase() {
	if ph := p.mx.Phase(); ph > p.phase {
		p.setPhase(ph)
	}
}

func (p *mutexPeer) receive(in inbound) {
	if p.phase == shm.PhaseBarrier || in.down != nil {
		p.syncPhase()
	}
	switch {
	case in.down != nil:
		p.mesh.ended(in.from)
		if p.phase < shm.PhaseExit && !p.reported[in.from] {
			p.reported[in.from] = true
			p.notes.problem(NoteLost, Now(), fmt.Sprintf("%s lost its link to %s: %v", dmutex.Name(p.spec.ID), dmutex.Name(in.from), in.down))
		}
		return
	case in.err != nil:
		p.reject(fmt.Sprintf("rejected a message from %s: %v", dmutex.Name(in.from), in.err))
		return
	}
	switch in.m.Kind {
	case dmutex.Ping:
		if err := p.mesh.Send(dmutex.Message{Kind: dmutex.Pong, From: p.spec.ID, To: in.from, TS: in.m.TS}); err != nil {
			p.sendFailed(err)
		}
		return
	case dmutex.Pong:
		if p.pingSentAt == 0 || in.m.TS != p.pingSeq || in.from != p.pingTarget {
			p.reject(fmt.Sprintf("rejected a message from %s: PONG to no ping", dmutex.Name(in.from)))
			return
		}
		p.pingRTT = append(p.pingRTT, Now()-p.pingSentAt)
		p.pingSentAt = 0
		return
	}
	if p.phase == shm.PhaseBarrier {
		p.reject(fmt.Sprintf("rejected a message from %s: %v before the start", dmutex.Name(in.from), in.m.Kind))
		return
	}
	if err := p.node.Handle(in.m); err != nil {
		if errors.Is(err, dmutex.ErrUnexpected) {
			p.reject(fmt.Sprintf("rejected a message from %s: %v", dmutex.Name(in.from), err))
			return
		}
		p.sendFailed(err)
	}
	p.afterStep()
}

// reject reports and counts a refused message or connection.
func (p *mutexPeer) reject(text string) {
	p.slot.Rejected.Add(1)
	p.notes.problem(NoteRejected, Now(), fmt.Sprintf("%s %s", dmutex.Name(p.spec.ID), text))
}

// sendFailed reports a failed send once per link; the coordinator, which
// sees the other process end, decides about the run.
func (p *mutexPeer) sendFailed(err error) {
	if p.syncPhase(); p.phase >= shm.PhaseExit {
		return
	}
	for _, j := range p.mesh.neighbors() {
		if l := p.mesh.links[j]; l.down && !p.reported[j] {
			p.reported[j] = true
			p.notes.problem(NoteLost, Now(), fmt.Sprintf("%s could not send to %s: %v", dmutex.Name(p.spec.ID), dmutex.Name(j), err))
		}
	}
}

func readJSONLine(r *bufio.Reader, v any) error {
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return err
	}
	return json.Unmarshal(line, v)
}
