package coordinator

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"mplock/reexec"
	"mplock/register"
	"mplock/worker"
)

// probeEvery is how often the coordinator asks every node for its role:
// the resolution of the failover times it reports.
const probeEvery = 50 * time.Millisecond

// RunCluster runs one cluster plan: it starts plan.Nodes `mplock serve`
// nodes in cluster mode (private data dirs in a private run directory,
// free loopback ports, every raft link through a proxy of the mesh),
// waits for a leader, starts plan.Clients client processes (`mplock worker
// cluster`, a UUID each) that do the seed's operations at random nodes
// and update the fenced registers, injects the plan's faults on schedule,
// and after plan.Duration stops everything and analyses what the clients
// saw. Every process it started has exited, every port is free and the
// run directory is removed when it returns, on every path (a SIGKILL of
// this process included: children die with it, the janitor removes the
// directory).
//
// A cancelled ctx stops the run early and returns what happened so far
// with Interrupted set. Errors wrap ErrPlan for an invalid plan; other
// errors mean the run could not start (a node that did not start is a
// result with Failure set, not an error).
func RunCluster(ctx context.Context, plan ClusterPlan) (*ClusterResult, error) {
	plan.Defaults()
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if plan.Seed == 0 {
		plan.Seed = mrand.Uint64()
	}
	r := &clusterRun{plan: plan, rng: mrand.New(mrand.NewPCG(plan.Seed, 1)),
		probes:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}},
		nodeExited: make(chan *child, 4*plan.Nodes), notes: make(chan clusterMsg, 256), quit: make(chan struct{})}
	r.res = &ClusterResult{Plan: plan}
	r.res.Plan.OnEvent = nil
	defer r.reapAll()
	r.start = time.Now().Round(0)
	if err := r.setup(ctx); err != nil {
		if r.failure == "" {
			return nil, err
		}
	}
	if r.failure == "" && ctx.Err() == nil {
		r.supervise(ctx)
	}
	if ctx.Err() != nil {
		r.interrupted = true
	}
	r.endFaults()
	r.stopClients()
	r.stopNodes()
	return r.result(), nil
}

type clusterRun struct {
	plan  ClusterPlan
	rng   *mrand.Rand
	res   *ClusterResult
	start time.Time
	files resources
	regs  string // the registers' directory
	// secret is the file of the cluster's secret, in the private run
	// directory: every node's --token-file, and the clients' too.
	secret string
	// peerSecret is the file of the members' own secret (every node's
	// --peer-token-file), which no client is given.
	peerSecret string

	nodes []*clusterNode
	mesh  *mesh
	// probes keeps a connection to every node's metrics listener, not one
	// per probe; its idle connections are closed at the end.
	probes     *http.Client
	clients    []*clusterClientProc
	nodeExited chan *child
	notes      chan clusterMsg
	quit       chan struct{}

	events    []ClusterEvent
	allNotes  []worker.ClusterNote
	leader    int // index of the leader the probes saw last; -1: none
	term      uint64
	pending   []int // failovers waiting for a new leader
	roles     []RoleSpan
	actions   []clusterAction
	nextFault int
	schedule  []ScheduledFault
	stallFor  *clusterClientProc

	interrupted bool
	failure     string
}

// clusterAction is a step of a fault to take at a time: undoing it.
type clusterAction struct {
	at time.Duration
	do func()
}

// clusterClientProc is one client process.
type clusterClientProc struct {
	*child
	spec   worker.ClusterSpec
	stdin  io.WriteCloser
	ready  bool
	ended  bool
	paused bool
	// lateWrite: continued after a pause, its write not noted yet.
	lateWrite bool
}

type clusterMsg struct {
	c    *clusterClientProc
	note worker.ClusterNote
	eof  bool
}

func (r *clusterRun) since(t time.Time) time.Duration { return t.Round(0).Sub(r.start) }

func (r *clusterRun) event(e ClusterEvent) {
	e.Setup = r.res.Start.IsZero()
	r.events = append(r.events, e)
	if r.plan.OnEvent != nil {
		r.plan.OnEvent(e)
	}
}

func (r *clusterRun) fail(why string) {
	if r.failure == "" {
		r.failure = why
		r.event(ClusterEvent{At: r.since(time.Now()), Kind: ClusterAbort, Text: why})
	}
}

// setup makes the run directory, the registers, the mesh, the nodes, and
// the clients, and waits for a leader and for every client to be ready.
func (r *clusterRun) setup(ctx context.Context) error {
	dir, err := r.files.runDir()
	if err != nil {
		return err
	}
	r.regs = filepath.Join(dir, "registers")
	if err := os.Mkdir(r.regs, 0o700); err != nil {
		return fmt.Errorf("coordinator: registers: %w", err)
	}
	var names []string
	for i := range r.plan.Names {
		names = append(names, ClusterName(i))
		if err := register.Create(filepath.Join(r.regs, ClusterName(i)), r.plan.Fencing); err != nil {
			return err
		}
	}
	r.secret = filepath.Join(dir, "secret")
	if err := writeSecretFile(r.secret); err != nil {
		return err
	}
	r.peerSecret = filepath.Join(dir, "peer-secret")
	if err := writeSecretFile(r.peerSecret); err != nil {
		return err
	}
	addrs, err := freePorts(3 * r.plan.Nodes)
	if err != nil {
		return err
	}
	var ids, raftAddrs []string
	for i := range r.plan.Nodes {
		n := &clusterNode{idx: i, id: NodeName(i), clientAddr: addrs[3*i], raftAddr: addrs[3*i+1], metricsAddr: addrs[3*i+2],
			dataDir: dataDir(dir, NodeName(i))}
		r.nodes = append(r.nodes, n)
		ids, raftAddrs = append(ids, n.id), append(raftAddrs, n.raftAddr)
	}
	if r.mesh, err = newMesh(context.Background(), ids, raftAddrs); err != nil {
		return err
	}
	for i, n := range r.nodes {
		n.args = r.nodeArgs(i)
		if err := r.startNode(ctx, i); err != nil {
			r.fail(err.Error())
			return err
		}
	}
	r.leader = -1
	if err := r.awaitLeader(ctx); err != nil {
		r.fail(err.Error())
		return err
	}
	var servers []string
	for _, n := range r.nodes {
		servers = append(servers, n.clientAddr)
	}
	for i := range r.plan.Clients {
		spec := worker.ClusterSpec{ID: newUUID(), Servers: servers, Names: names, Consistency: r.plan.Consistency,
			Registers: r.regs, Think: r.plan.Think, Hold: r.plan.Hold, Stall: r.plan.ElectionTimeout,
			Timeout: r.plan.opTimeout(), Seed: r.plan.Seed + uint64(i) + 1, TokenFile: r.secret}
		if err := r.startClient(spec); err != nil {
			return err
		}
	}
	return r.clientsReady(ctx)
}

// awaitLeader probes the nodes until one says it leads.
func (r *clusterRun) awaitLeader(ctx context.Context) error {
	deadline := time.Now().Add(barrierTimeout)
	for time.Now().Before(deadline) {
		r.observe(r.probeAll(ctx))
		if r.leader >= 0 {
			return nil
		}
		select {
		case <-time.After(probeEvery):
		case c := <-r.nodeExited:
			return fmt.Errorf("coordinator: %s (pid %d) ended before the cluster had a leader: %s", c.name, c.pid(), c.describe())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("coordinator: no leader within %v", barrierTimeout)
}

// probeAll asks every node at once.
//
// It runs beside the supervising goroutine, so it reads nothing of a node
// that changes (its state, its process): a killed node refuses the
// connection, a stopped one does not answer in time, and observe, in the
// supervising goroutine, knows what was done to each.
func (r *clusterRun) probeAll(ctx context.Context) []nodeView {
	out := make(chan nodeView, len(r.nodes))
	for _, n := range r.nodes {
		go func() { out <- probe(ctx, r.probes, n, 4*probeEvery) }()
	}
	views := make([]nodeView, len(r.nodes))
	for range r.nodes {
		v := <-out
		views[v.idx] = v
	}
	return views
}

// observe takes the probes' answers: each node's role, and the leader
// (the highest term that a node claims to lead); a new leader ends the
// failovers waiting for one.
func (r *clusterRun) observe(views []nodeView) {
	now := r.since(time.Now())
	best, term := -1, uint64(0)
	for _, v := range views {
		n := r.nodes[v.idx]
		if !v.ok {
			continue
		}
		n.role, n.term, n.applied = v.role, v.term, max(n.applied, v.applied)
		if v.role == "leader" && v.term >= term && n.state == nodeUp {
			best, term = v.idx, v.term
		}
	}
	for _, n := range r.nodes {
		r.setRole(n, now)
	}
	if best < 0 || (best == r.leader && term == r.term) {
		return
	}
	r.leader, r.term = best, term
	e := ClusterEvent{At: now, Kind: ClusterLeader, Node: r.nodes[best].id, Term: term}
	for _, i := range r.pending {
		f := &r.res.Failovers[i]
		if f.Node == e.Node {
			continue // the old leader again: not a failover (yet)
		}
		f.NewLeader, f.Term, f.Elected = e.Node, term, now-f.At
		e.Took = now - f.At
	}
	r.pending = slices.DeleteFunc(r.pending, func(i int) bool { return r.res.Failovers[i].NewLeader != "" })
	r.event(e)
}

// setRole records node n's role over time, for the timeline.
func (r *clusterRun) setRole(n *clusterNode, now time.Duration) {
	role := n.role
	switch n.state {
	case nodeKilled:
		role = "down"
	case nodePaused:
		role = "paused"
	case nodeCut:
		role = "cut off (" + n.role + ")"
	}
	if role == "" {
		return
	}
	for i := len(r.roles) - 1; i >= 0; i-- {
		if r.roles[i].Node == n.id && r.roles[i].To < 0 {
			if r.roles[i].Role == role {
				return
			}
			r.roles[i].To = now
			break
		}
	}
	r.roles = append(r.roles, RoleSpan{Node: n.id, Role: role, From: now, To: -1})
}

func (r *clusterRun) startClient(spec worker.ClusterSpec) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("coordinator: report pipe: %w", err)
	}
	cmd := reexec.Command(reexec.Options{}, append([]string{"worker", "cluster"}, spec.Args()...)...)
	cmd.ExtraFiles = []*os.File{pw} // fd 3
	stdin, err := cmd.StdinPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("coordinator: stdin pipe: %w", err)
	}
	c, err := startChild("client "+spec.ID[:4], cmd, nil)
	pw.Close()
	if err != nil {
		pr.Close()
		return err
	}
	p := &clusterClientProc{child: c, spec: spec, stdin: stdin}
	r.clients = append(r.clients, p)
	r.res.Clients = append(r.res.Clients, ClusterClientResult{ID: spec.ID, PID: c.pid(), Ops: map[string]int{}})
	go r.readClientNotes(p, pr)
	return nil
}

func (r *clusterRun) readClientNotes(p *clusterClientProc, pr *os.File) {
	defer pr.Close()
	forward := func(m clusterMsg) bool {
		select {
		case r.notes <- m:
			return true
		case <-r.quit:
			return false
		}
	}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		n, err := worker.ParseClusterNote(sc.Text())
		if err != nil {
			n = worker.ClusterNote{Kind: worker.ClusterNoteFailed, Text: err.Error()}
		}
		if !forward(clusterMsg{c: p, note: n}) {
			return
		}
	}
	<-p.done
	forward(clusterMsg{c: p, eof: true})
}

func (r *clusterRun) clientsReady(ctx context.Context) error {
	deadline := time.NewTimer(barrierTimeout)
	defer deadline.Stop()
	for n := 0; n < len(r.clients); {
		select {
		case m := <-r.notes:
			switch {
			case m.eof:
				m.c.ended = true
				r.fail(fmt.Sprintf("%s (pid %d) ended before the start: %s", m.c.name, m.c.pid(), m.c.describe()))
				return nil
			case m.note.Kind == worker.ClusterNoteReady:
				m.c.ready = true
				n++
			}
		case c := <-r.nodeExited:
			r.fail(fmt.Sprintf("%s (pid %d) ended before the start: %s", c.name, c.pid(), c.describe()))
			return nil
		case <-deadline.C:
			return fmt.Errorf("coordinator: only %d of %d clients had a session after %v", n, len(r.clients), barrierTimeout)
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// supervise runs the operations: it sends go, probes the nodes, takes the
// clients' notes, injects and undoes faults, until the duration passes,
// a process fails, or ctx ends.
func (r *clusterRun) supervise(ctx context.Context) {
	r.schedule = r.plan.Schedule()
	r.start = time.Now().Round(0) // the operations start now: times of the run count from here
	r.res.Start = r.start
	for i := range r.events {
		r.events[i].At = 0 // setup happened before the start
	}
	for i := range r.roles {
		r.roles[i].From = 0
	}
	r.send(worker.ClusterGo)
	views := make(chan []nodeView, 1)
	pctx, stopProbes := context.WithCancel(ctx)
	defer stopProbes()
	go func() {
		t := time.NewTicker(probeEvery)
		defer t.Stop()
		for {
			select {
			case views <- r.probeAll(pctx):
			case <-pctx.Done():
				return
			}
			select {
			case <-t.C:
			case <-pctx.Done():
				return
			}
		}
	}()
	end := time.NewTimer(r.plan.Duration)
	defer end.Stop()
	ending := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for r.failure == "" {
		select {
		case v := <-views:
			r.observe(v)
		case m := <-r.notes:
			r.onNote(m)
		case c := <-r.nodeExited:
			if !r.expectedExit(c) {
				r.fail(fmt.Sprintf("%s (pid %d) ended during the run: %s", c.name, c.pid(), c.describe()))
			}
		case <-tick.C:
			r.runDue()
			if ending && !r.clientPauseUnderWay() {
				return
			}
		case <-end.C:
			if ending {
				return
			}
			// A client's pause under way is seen to its end, its late
			// write included (what the fault is for).
			if !r.clientPauseUnderWay() {
				return
			}
			ending = true
			end.Reset(r.plan.faultLength(PauseClient) + r.plan.SessionTTL)
		case <-ctx.Done():
			r.event(ClusterEvent{At: r.since(time.Now()), Kind: ClusterAbort, Text: "interrupted"})
			return
		}
	}
}

// expectedExit reports whether c is a node process the run killed.
func (r *clusterRun) expectedExit(c *child) bool {
	for _, n := range r.nodes {
		if n.child == c {
			return n.state == nodeKilled
		}
	}
	return true // an earlier process of a restarted node, which the run killed
}

// runDue injects the faults whose time has come and takes the actions
// that undo them.
func (r *clusterRun) runDue() {
	now := r.since(time.Now())
	for r.nextFault < len(r.schedule) && r.schedule[r.nextFault].At <= now {
		r.inject(r.schedule[r.nextFault].Kind, now)
		r.nextFault++
	}
	for len(r.actions) > 0 && r.actions[0].at <= now {
		a := r.actions[0]
		r.actions = r.actions[1:]
		a.do()
	}
}

func (r *clusterRun) later(d time.Duration, do func()) {
	r.actions = append(r.actions, clusterAction{at: r.since(time.Now()) + d, do: do})
	slices.SortStableFunc(r.actions, func(a, b clusterAction) int { return cmpDur(a.at, b.at) })
}

// inject starts one fault.
func (r *clusterRun) inject(k ClusterFault, now time.Duration) {
	if k == PauseClient {
		r.pauseClient(now)
		return
	}
	if r.leader < 0 || r.nodes[r.leader].state != nodeUp {
		r.event(ClusterEvent{At: now, Kind: ClusterFaultStart, Fault: k, Text: "skipped: no leader to fault right now"})
		return
	}
	n := r.nodes[r.leader]
	r.res.Failovers = append(r.res.Failovers, Failover{Fault: k, Node: n.id, At: now, Elected: -1, FirstOK: -1})
	r.pending = append(r.pending, len(r.res.Failovers)-1)
	n.downSince = now
	length := r.plan.faultLength(k)
	e := ClusterEvent{At: now, Kind: ClusterFaultStart, Fault: k, Node: n.id, PID: n.pid(), Term: r.term}
	switch k {
	case KillLeader:
		n.state = nodeKilled
		n.signal(syscall.SIGKILL)
		r.later(length, func() {
			n.downtime += r.since(time.Now()) - n.downSince
			if err := r.startNode(context.Background(), n.idx); err != nil {
				r.fail(err.Error())
			}
		})
	case PauseLeader:
		n.state = nodePaused
		n.signal(syscall.SIGSTOP)
		r.later(length, func() {
			n.signal(syscall.SIGCONT)
			n.state = nodeUp
			n.downtime += r.since(time.Now()) - n.downSince
			r.event(ClusterEvent{At: r.since(time.Now()), Kind: ClusterFaultEnd, Fault: k, Node: n.id, PID: n.pid()})
		})
	case Partition:
		n.state = nodeCut
		r.mesh.isolate(n.idx)
		r.later(length, func() {
			r.mesh.heal()
			n.state = nodeUp
			n.downtime += r.since(time.Now()) - n.downSince
			r.event(ClusterEvent{At: r.since(time.Now()), Kind: ClusterFaultEnd, Fault: k, Node: n.id})
		})
	}
	r.leader = -1 // until the probes see one
	r.event(e)
}

// pauseClient asks a client to stall its next read-modify-write after the
// read; its stalling note makes the coordinator SIGSTOP it (onNote).
func (r *clusterRun) pauseClient(now time.Duration) {
	var live []*clusterClientProc
	for _, c := range r.clients {
		if !c.ended && !c.paused {
			live = append(live, c)
		}
	}
	if len(live) == 0 || r.stallFor != nil {
		r.event(ClusterEvent{At: now, Kind: ClusterFaultStart, Fault: PauseClient, Text: "skipped: no client to pause right now"})
		return
	}
	c := live[r.rng.IntN(len(live))]
	r.stallFor = c
	io.WriteString(c.stdin, worker.ClusterStall+"\n")
}

func (r *clusterRun) onNote(m clusterMsg) {
	c := m.c
	if m.eof {
		c.ended = true
		if r.failure == "" && !r.stopping() {
			r.fail(fmt.Sprintf("%s (pid %d) ended during the run: %s", c.name, c.pid(), c.describe()))
		}
		return
	}
	n := m.note
	if id := r.nodeID(n.Server); id != "" {
		n.Server = id
	}
	if rep := n.Reply; n.Kind == worker.ClusterNoteOp && rep != nil && rep.Node != "" && rep.Role == "" {
		// A change's answer does not say who leads: as the probes see it.
		if r.leader >= 0 {
			rep.Leader = r.nodes[r.leader].id
		}
		// A candidate does not answer a change; the probes, up to 50 ms
		// behind, have not seen it follow the new leader yet: say nothing.
		if i := slices.IndexFunc(r.nodes, func(x *clusterNode) bool { return x.id == rep.Node }); i >= 0 && r.nodes[i].role != "candidate" {
			rep.Role = r.nodes[i].role
		}
	}
	r.allNotes = append(r.allNotes, n)
	e := ClusterEvent{At: r.since(n.Time()), Client: c.spec.ID, PID: c.pid(), Note: &r.allNotes[len(r.allNotes)-1]}
	switch n.Kind {
	case worker.ClusterNoteOp:
		e.Kind = ClusterOp
	case worker.ClusterNoteRegister:
		e.Kind = ClusterRegister
		c.lateWrite = false
	case worker.ClusterNoteSession:
		e.Kind = ClusterSession
	case worker.ClusterNoteStalling:
		if r.stallFor == c {
			r.stallFor = nil
			c.paused = true
			c.cmd.Process.Signal(syscall.SIGSTOP)
			now := r.since(time.Now())
			r.event(ClusterEvent{At: now, Kind: ClusterFaultStart, Fault: PauseClient, Client: c.spec.ID, PID: c.pid(),
				Text: fmt.Sprintf("holding %s with token %d, read %d", n.Name, n.Token, n.Read)})
			r.later(r.plan.faultLength(PauseClient), func() {
				c.paused, c.lateWrite = false, true
				c.cmd.Process.Signal(syscall.SIGCONT)
				r.event(ClusterEvent{At: r.since(time.Now()), Kind: ClusterFaultEnd, Fault: PauseClient, Client: c.spec.ID, PID: c.pid()})
			})
		}
		return
	case worker.ClusterNoteFailed:
		e.Kind, e.Text = ClusterAbort, "client "+c.spec.ID[:4]+": "+n.Text
	default:
		return
	}
	r.event(e)
}

// nodeID is the id of the node whose client address is addr, "" if none.
func (r *clusterRun) nodeID(addr string) string {
	for _, n := range r.nodes {
		if n.clientAddr == addr {
			return n.id
		}
	}
	return ""
}

// clientPauseUnderWay reports whether a client is paused, or continued
// and has not written yet.
func (r *clusterRun) clientPauseUnderWay() bool {
	return slices.ContainsFunc(r.clients, func(c *clusterClientProc) bool { return !c.ended && (c.paused || c.lateWrite) })
}

func (r *clusterRun) stopping() bool {
	select {
	case <-r.quit:
		return true
	default:
		return false
	}
}

func (r *clusterRun) send(line string) {
	for _, c := range r.clients {
		if !c.ended {
			io.WriteString(c.stdin, line+"\n")
		}
	}
}

// endFaults undoes the faults still in force when the run ends: paused
// nodes continue, cut links heal (a killed node stays down: the others
// are a majority). The clients can then finish their operations.
func (r *clusterRun) endFaults() {
	if r.mesh != nil {
		r.mesh.heal()
	}
	now := r.since(time.Now())
	for _, n := range r.nodes {
		switch n.state {
		case nodePaused:
			n.signal(syscall.SIGCONT)
			fallthrough
		case nodeCut:
			n.state = nodeUp
			n.downtime += now - n.downSince
		case nodeKilled:
			n.downtime += now - n.downSince
		}
	}
	r.actions = nil
	// No client pauses now: one asked to stall does not write when it
	// is told to stop, and is not stopped for it.
	r.stallFor = nil
}

// stopClients tells every client to stop (it finishes its operation,
// releases what it holds and ends its session), waits for them within the
// grace period and a session TTL (an operation under way may wait for its
// session to resume elsewhere), and kills the rest.
func (r *clusterRun) stopClients() {
	for _, c := range r.clients {
		if c.paused {
			c.cmd.Process.Signal(syscall.SIGCONT)
			c.paused = false
		}
		io.WriteString(c.stdin, worker.ClusterStop+"\n")
		c.stdin.Close()
	}
	grace := time.NewTimer(stopGrace + r.plan.SessionTTL)
	defer grace.Stop()
	for !r.clientsEnded() {
		select {
		case m := <-r.notes:
			if m.eof {
				m.c.ended = true
				continue
			}
			r.onNote(m)
		case <-grace.C:
			for _, c := range r.clients {
				c.kill()
			}
			grace.Reset(time.Hour)
		}
	}
}

func (r *clusterRun) clientsEnded() bool {
	for _, c := range r.clients {
		if !c.ended {
			return false
		}
	}
	return true
}

// reapAll kills every process still running and waits for each, closes
// the mesh and removes the run directory: nothing of the run outlives it.
func (r *clusterRun) reapAll() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	for _, c := range r.clients {
		c.kill()
	}
	for _, n := range r.nodes {
		if n.child != nil {
			n.kill()
		}
	}
	for _, c := range r.clients {
		<-c.done
	}
	for _, n := range r.nodes {
		if n.child != nil {
			<-n.done
		}
	}
	if r.mesh != nil {
		r.mesh.close()
	}
	r.probes.CloseIdleConnections()
	r.files.release()
}

// result gathers what the run did; it reads the registers before reapAll
// removes them.
func (r *clusterRun) result() *ClusterResult {
	res := r.res
	res.Elapsed = time.Since(r.start)
	res.Interrupted = r.interrupted
	res.Failure = r.failure
	res.Events = r.events
	now := r.since(time.Now())
	for i := range r.roles {
		if r.roles[i].To < 0 {
			r.roles[i].To = now
		}
	}
	res.Roles = r.roles
	for _, n := range r.nodes {
		nr := ClusterNodeResult{ID: n.id, PIDs: n.pids, Applied: n.applied, Downtime: n.downtime, Exit: "not started"}
		if n.child != nil {
			nr.Exit = n.describe()
		}
		if n.forced {
			nr.Exit = fmt.Sprintf("killed by SIGKILL: still running %v after SIGTERM", nodeStopGrace)
		}
		for _, s := range r.roles {
			if s.Node == n.id && s.Role == "leader" {
				nr.Leader += s.To - s.From
			}
		}
		for _, e := range r.events {
			if e.Kind == ClusterLeader && e.Node == n.id && !slices.Contains(nr.Terms, e.Term) {
				nr.Terms = append(nr.Terms, e.Term)
			}
		}
		res.Nodes = append(res.Nodes, nr)
	}
	for i, c := range r.clients {
		res.Clients[i].Exit = c.describe()
		sessions := map[string]bool{}
		for _, n := range r.allNotes {
			if clientOf(n.Client) == c.spec.ID {
				sessions[n.Client] = true
			}
		}
		res.Clients[i].Sessions = len(sessions)
	}
	for i := range r.plan.Names {
		st, err := register.ReadState(filepath.Join(r.regs, ClusterName(i)))
		if err == nil {
			res.Registers = append(res.Registers, RegisterState{Name: ClusterName(i), Value: st.Value,
				Accepted: st.Accepted, Refused: st.Refused, Lost: st.Lost})
		}
	}
	analyzeNotes(res, r.allNotes, r.plan.Check, r.plan.CheckTimeout)
	return res
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
