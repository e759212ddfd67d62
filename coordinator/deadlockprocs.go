package coordinator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mplock/reexec"
	"mplock/waitfor"
	"mplock/worker"
)

// The processes of a deadlock run: starting the lock servers and the
// holders, reading the holders' notes, and ending them all.

// PortInUseError says a lock server could not listen because its port is
// taken by another program.
type PortInUseError struct {
	Lock string // the lock the server was to serve
	Addr string // the address it was to listen on
	Port int
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("coordinator: the lock server of %s cannot listen on %s: port %d is already in use", e.Lock, e.Addr, e.Port)
}

// deadlockServer is one `mplock serve` process and the lock it serves.
type deadlockServer struct {
	*child
	lock string
	addr string
}

// deadlockHolder is one holder process and what its notes said so far.
type deadlockHolder struct {
	*child
	spec     worker.HolderSpec
	stdin    io.WriteCloser
	ready    bool
	gotAny   bool
	finished bool // took and released every lock
	ended    bool
	victim   bool
	retries  int
	failed   string
	// What it holds and waits for, from its notes; stopped says it when the
	// run ends the holder before it finished.
	holding []string
	waiting string
	stopped string
	// waitSeen is the lock whose wait the timeline already shows from the
	// detector's look, because the deadlock was confirmed before the
	// holder's own note arrived; that note is then left out.
	waitSeen string
}

// doing says what the holder was doing, from its notes: "waiting for lock2,
// holding lock1".
func (h *deadlockHolder) doing() string {
	held := "holding nothing"
	if len(h.holding) > 0 {
		held = "holding " + strings.Join(h.holding, " and ")
	}
	switch {
	case h.waiting != "":
		return "waiting for " + h.waiting + ", " + held
	case !h.gotAny:
		return "before its first lock"
	}
	return held
}

func (h *deadlockHolder) proc() waitfor.Proc { return waitfor.Proc{Name: h.spec.Name, PID: h.pid()} }

// startServers starts every lock server at once, then waits for each to say
// where it listens ("Lock Server started on tcp://ADDR", its first line).
func (r *deadlockRun) startServers(ctx context.Context) error {
	type listening struct {
		s    *deadlockServer
		addr string
		err  error
	}
	lines := make(chan listening, r.plan.Procs)
	for i := range r.plan.Procs {
		port := 0
		if r.plan.BasePort > 0 {
			port = r.plan.BasePort + i
		}
		want := net.JoinHostPort(r.plan.Host, strconv.Itoa(port))
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("coordinator: server pipe: %w", err)
		}
		cmd := reexec.Command(reexec.Options{}, "serve", "--listen", want, "--log-level", "error")
		cmd.Stdout = pw
		c, err := startChild(LockName(i)+" server", cmd, r.serverExited)
		pw.Close()
		if err != nil {
			pr.Close()
			return err
		}
		s := &deadlockServer{child: c, lock: LockName(i), addr: want}
		r.servers = append(r.servers, s)
		go func() {
			defer pr.Close()
			br := bufio.NewReader(pr)
			line, err := br.ReadString('\n')
			addr, ok := strings.CutPrefix(strings.TrimSpace(line), "Lock Server started on tcp://")
			switch {
			case err != nil:
			case !ok || addr == "":
				err = fmt.Errorf("unexpected first line %q", line)
			}
			lines <- listening{s: s, addr: addr, err: err}
			io.Copy(io.Discard, br) // the server writes nothing more; never let it block
		}()
	}
	deadline := time.NewTimer(barrierTimeout)
	defer deadline.Stop()
	for range r.plan.Procs {
		select {
		case l := <-lines:
			if l.err != nil {
				return r.serverFailed(l.s, l.err)
			}
			l.s.addr = l.addr
			r.event(DeadlockEvent{At: r.since(time.Now()), Kind: EventServerUp, Proc: l.s.lock, PID: l.s.pid(), Addr: l.addr})
		case <-deadline.C:
			return fmt.Errorf("coordinator: the lock servers did not all listen within %v", barrierTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	slices.SortStableFunc(r.events, func(a, b DeadlockEvent) int { return cmpDur(a.At, b.At) })
	return nil
}

// serverFailed explains why a server did not start: above all, a port in
// use.
func (r *deadlockRun) serverFailed(s *deadlockServer, err error) error {
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		s.kill()
		<-s.done
	}
	if strings.Contains(s.stderr.String(), "already in use") {
		_, p, _ := net.SplitHostPort(s.addr)
		port, _ := strconv.Atoi(p)
		return &PortInUseError{Lock: s.lock, Addr: s.addr, Port: port}
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("coordinator: the lock server of %s (pid %d) ended before listening on %s: %s", s.lock, s.pid(), s.addr, s.describe())
	}
	return fmt.Errorf("coordinator: the lock server of %s (pid %d): %v (%s)", s.lock, s.pid(), err, s.describe())
}

func (r *deadlockRun) startHolders(seed uint64) error {
	addrs := r.addrs()
	for i := range r.plan.Procs {
		spec := r.plan.holderSpec(i, addrs, seed)
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("coordinator: report pipe: %w", err)
		}
		cmd := reexec.Command(reexec.Options{}, append([]string{"worker", "holder"}, spec.Args()...)...)
		cmd.ExtraFiles = []*os.File{pw} // worker.HolderReportFD
		stdin, err := cmd.StdinPipe()
		if err != nil {
			pr.Close()
			pw.Close()
			return fmt.Errorf("coordinator: stdin pipe: %w", err)
		}
		c, err := startChild(spec.Name, cmd, nil)
		pw.Close()
		if err != nil {
			pr.Close()
			return err
		}
		h := &deadlockHolder{child: c, spec: spec, stdin: stdin}
		r.holders = append(r.holders, h)
		go r.readNotes(h, pr)
	}
	return nil
}

// readNotes forwards one holder's notes, then, once the process has exited,
// the end of them.
func (r *deadlockRun) readNotes(h *deadlockHolder, pr *os.File) {
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	forward := func(m holderMsg) bool {
		select {
		case r.notes <- m:
			return true
		case <-r.quit:
			return false
		}
	}
	for sc.Scan() {
		n, err := worker.ParseHolderNote(sc.Text())
		if err != nil {
			n = worker.HolderNote{Kind: worker.HolderFailed, At: time.Now().UnixNano(), Text: err.Error()}
		}
		if !forward(holderMsg{h: h, note: n}) {
			return
		}
	}
	<-h.done
	forward(holderMsg{h: h, eof: true})
}

// ready waits until every holder is connected to its servers.
func (r *deadlockRun) ready(ctx context.Context) error {
	deadline := time.NewTimer(barrierTimeout)
	defer deadline.Stop()
	for n := 0; n < len(r.holders); {
		select {
		case m := <-r.notes:
			switch {
			case m.eof:
				return fmt.Errorf("coordinator: %s (pid %d) ended before the start: %s", m.h.name, m.h.pid(), m.h.describe())
			case m.note.Kind == worker.HolderReady:
				m.h.ready = true
				n++
			case m.note.Kind == worker.HolderFailed:
				m.h.failed = m.note.Text
			}
		case c := <-r.serverExited:
			return fmt.Errorf("coordinator: %s (pid %d) ended before the start: %s", c.name, c.pid(), c.describe())
		case <-deadline.C:
			return fmt.Errorf("coordinator: only %d of %d holders were connected after %v", n, len(r.holders), barrierTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// send writes a control line to every holder still running.
func (r *deadlockRun) send(line string) {
	for _, h := range r.holders {
		if !h.ended {
			io.WriteString(h.stdin, line+"\n") // a dead holder's pipe fails; its end explains it
		}
	}
}

// stopHolders ends every holder still running at once: SIGSTOP to all
// first, so that none of them can take (or note) a lock another one's end
// lets through, then SIGKILL; and collects their last notes. The servers
// release the locks of the dead sessions.
func (r *deadlockRun) stopHolders() {
	r.stopping = true
	for _, h := range r.holders {
		if !h.ended {
			h.cmd.Process.Signal(syscall.SIGSTOP)
			h.stopped = h.doing()
		}
	}
	for _, h := range r.holders {
		h.kill()
		h.stdin.Close()
	}
	for !r.allEnded() {
		r.onNote(<-r.notes)
	}
}

// stopServers shuts every server down (SIGTERM: serve closes its sessions
// and exits) and kills those that do not end within the grace period.
func (r *deadlockRun) stopServers() {
	for _, s := range r.servers {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	for _, s := range r.servers {
		select {
		case <-s.done:
		case <-grace.C:
			for _, s := range r.servers {
				s.kill()
			}
			<-s.done
		}
	}
}

// reapAll kills every process still running and waits for each: no run
// returns with a process of its own, or a port, left behind.
func (r *deadlockRun) reapAll() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	for _, h := range r.holders {
		h.kill()
	}
	for _, s := range r.servers {
		s.kill()
	}
	for _, h := range r.holders {
		<-h.done
	}
	for _, s := range r.servers {
		<-s.done
	}
}
