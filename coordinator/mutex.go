package coordinator

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"mplock/dmutex"
	"mplock/reexec"
	"mplock/shm"
	"mplock/worker"
)

// RunMutex runs one mutex plan: it creates the shared region and (for Unix
// sockets) a private run directory, starts plan.Procs peer processes (and
// the central algorithm's lock server), hands every one the others'
// addresses, opens the start barrier once all are connected, and supervises
// them until the duration ends, ctx is cancelled, or the run fails. Every
// process it started has exited and every resource it made is removed when
// it returns, on every path.
//
// A process that dies, or a run in which nobody enters while someone waits
// for StallTimeout, fails the run: the result's Failure names the process
// everyone waits for. A cancelled ctx stops the run gracefully (every
// outstanding request is served, then the processes exit) and sets
// Interrupted. Errors wrap ErrPlan for an invalid plan; other errors mean
// the run could not start.
func RunMutex(ctx context.Context, plan MutexPlan) (res *MutexResult, err error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	var rs resources
	defer func() {
		if rerr := rs.release(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	nodes := plan.Procs
	if plan.Algorithm.HasServer() {
		nodes++
	}
	region, err := shm.Create(shm.CreateOptions{Size: shm.MutexSize(nodes, plan.LogCap)})
	if err != nil {
		return nil, err
	}
	rs.onRelease(region.Close)
	mx, err := shm.NewMutex(region, nodes, plan.LogCap)
	if err != nil {
		return nil, err
	}
	var dir string
	if plan.Network == worker.NetworkUnix {
		if dir, err = rs.runDir(); err != nil {
			return nil, err
		}
	}
	r := &mutexRun{plan: plan, mx: mx, exited: make(chan *child, nodes), addrs: make(chan addrNote, nodes), dead: -1}
	if plan.Log != nil {
		r.live = newLiveLog(plan.Log)
		defer r.closeLog()
	}
	defer r.reapAll()
	if err := r.start(region, dir); err != nil {
		return nil, err
	}
	if err := r.introduce(ctx); err != nil {
		return nil, err
	}
	if err := r.barrier(ctx); err != nil {
		return nil, err
	}
	r.supervise(ctx)
	r.reapAll()
	res = r.result()
	r.closeLog()
	return res, nil
}

// closeLog passes on what the live log still holds, once every process's
// notes are read; it does nothing the second time.
func (r *mutexRun) closeLog() {
	if r.live != nil {
		r.notes.Wait()
		r.live.close()
		r.live = nil
	}
}

// mutexRun is the state of one run between start and result.
type mutexRun struct {
	plan  MutexPlan
	mx    *shm.Mutex
	procs []*mutexChild // peers in id order, then the server
	phase shm.MutexPhase

	exited chan *child
	addrs  chan addrNote
	notes  sync.WaitGroup

	mu           sync.Mutex // guards what the note readers collect
	delivery     *worker.Delivery
	deliveryIdle *worker.Delivery
	events       []TimedEvent
	problems     []Problem
	live         *liveLog // nil unless the plan asks for the live log

	startNs, endNs int64
	dead           int // id of the first process that died before the exit phase; -1 if none
	deadAt         time.Time
	deadAtNs       int64
	deadEntries    int64
	faultFired     bool
	failure        *MutexFailure
	interrupted    bool
}

type mutexChild struct {
	*child
	id, slot int
	stdin    io.WriteCloser
	cpu      time.Duration
	lateExit bool // exited before the exit phase
}

type addrNote struct {
	id   int
	addr string
}

func (r *mutexRun) start(region *shm.Region, dir string) error {
	var secret [8]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return fmt.Errorf("coordinator: secret: %w", err)
	}
	seed := r.plan.Seed
	if seed == 0 {
		seed = binary.LittleEndian.Uint64(secret[:]) ^ uint64(time.Now().UnixNano())
	}
	spec := worker.MutexSpec{
		N: r.plan.Procs, Algorithm: r.plan.Algorithm, CS: r.plan.CS,
		ThinkMin: r.plan.ThinkMin, ThinkMax: r.plan.ThinkMax, Network: r.plan.Network,
		Secret: binary.LittleEndian.Uint64(secret[:]), Seed: seed, Verbose: r.plan.Verbose,
	}
	ids := make([]int, 0, r.plan.Procs+1)
	for i := range r.plan.Procs {
		ids = append(ids, i)
	}
	if r.plan.Algorithm.HasServer() {
		ids = append(ids, dmutex.ServerID)
	}
	for slot, id := range ids {
		s := spec
		s.ID, s.Slot, s.Role = id, slot, worker.MutexPeer
		if id == dmutex.ServerID {
			s.Role = worker.MutexServer
		}
		if id == 0 {
			s.Pings = r.plan.Pings
		}
		if f := r.plan.Fault; f != nil && f.Kind == FaultGarbage && f.Peer == id {
			s.Garbage = true
		}
		if err := r.startOne(region, dir, s); err != nil {
			return err
		}
	}
	return nil
}

func (r *mutexRun) startOne(region *shm.Region, dir string, spec worker.MutexSpec) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("coordinator: report pipe: %w", err)
	}
	cmd := reexec.Command(reexec.Options{}, "worker", "mutex", string(spec.Role))
	cmd.Dir = dir // Unix socket names are relative to it, to stay short
	cmd.ExtraFiles = []*os.File{region.File(), pw}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("coordinator: stdin pipe: %w", err)
	}
	c, err := startChild(dmutex.Name(spec.ID), cmd, r.exited)
	pw.Close()
	if err != nil {
		pr.Close()
		return err
	}
	mc := &mutexChild{child: c, id: spec.ID, slot: spec.Slot, stdin: stdin}
	r.procs = append(r.procs, mc)
	r.notes.Add(1)
	go r.readNotes(mc, pr)
	line, _ := json.Marshal(spec)
	if _, err := stdin.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("coordinator: send %s its spec: %w", c.name, err)
	}
	return nil
}

// readNotes collects one process's report lines until it exits.
func (r *mutexRun) readNotes(c *mutexChild, pr *os.File) {
	defer r.notes.Done()
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n, err := worker.ParseNote(sc.Text())
		if err != nil {
			continue
		}
		r.mu.Lock()
		switch n.Kind {
		case worker.NoteListening:
			select {
			case r.addrs <- addrNote{id: c.id, addr: n.Addr}:
			default: // a second one: ignored
			}
		case worker.NoteDelivery:
			d := n.Delivery
			if d.When == "idle" {
				r.deliveryIdle = &d
			} else {
				r.delivery = &d
			}
		case worker.NoteEvent:
			r.events = append(r.events, TimedEvent{At: time.Duration(n.At), Event: n.Event})
			if r.live != nil {
				e := n.Event
				r.live.add(n.At, MutexLogEntry{Event: &e})
			}
		case worker.NoteRejected, worker.NoteLost:
			pr := Problem{At: time.Duration(n.At), Kind: n.Kind.String(), Text: n.Text}
			r.problems = append(r.problems, pr)
			if r.live != nil {
				r.live.add(n.At, MutexLogEntry{Problem: &pr})
			}
		case worker.NoteDone:
			c.cpu = time.Duration(n.UserNs + n.SysNs)
		}
		r.mu.Unlock()
	}
}

// introduce waits for every process to listen, then sends each the
// addresses of all.
func (r *mutexRun) introduce(ctx context.Context) error {
	addrs := worker.MutexAddrs{}
	deadline := time.NewTimer(barrierTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for len(addrs) < len(r.procs) {
		select {
		case a := <-r.addrs:
			addrs[a.id] = a.addr
		case <-poll.C:
			if err := endedEarly(r.children()); err != nil {
				return err
			}
		case <-deadline.C:
			return fmt.Errorf("coordinator: only %d of %d processes were listening after %v", len(addrs), len(r.procs), barrierTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	line, _ := json.Marshal(addrs)
	line = append(line, '\n')
	for _, c := range r.procs {
		if _, err := c.stdin.Write(line); err != nil {
			return fmt.Errorf("coordinator: send %s the addresses: %w", c.name, err)
		}
	}
	return nil
}

// children returns the run's processes as children, in id order.
func (r *mutexRun) children() []*child {
	procs := make([]*child, len(r.procs))
	for i, p := range r.procs {
		procs[i] = p.child
	}
	return procs
}

// barrier waits until every process is connected and registered, then
// starts the run.
func (r *mutexRun) barrier(ctx context.Context) error {
	if err := waitReady(ctx, &r.mx.Control.Ready, r.children(), "processes"); err != nil {
		return err
	}
	r.startNs = worker.Now()
	if r.live != nil {
		r.live.start(r.startNs)
	}
	return r.setPhase(shm.PhaseRun)
}

func (r *mutexRun) setPhase(ph shm.MutexPhase) error {
	if ph <= r.phase {
		return nil
	}
	r.phase = ph
	r.mx.Control.Phase.Store(uint32(ph))
	// The word is the truth; the line on each control pipe wakes the
	// process up (a dead one's pipe fails, which its death explains).
	line := []byte(ph.String() + "\n")
	for _, c := range r.procs {
		c.stdin.Write(line)
	}
	_, err := shm.Wake(&r.mx.Control.Phase, len(r.procs))
	return err
}

// reapAll kills every process still running and waits for each to be
// reaped.
func (r *mutexRun) reapAll() {
	for _, c := range r.procs {
		c.stdin.Close()
		c.kill()
	}
	for _, c := range r.procs {
		<-c.done
	}
}
