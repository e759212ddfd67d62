package worker

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mplock/lockd"
	"mplock/register"
)

// Control lines from the coordinator of `mplock cluster` to a client, on
// its stdin. End of file, like ClusterStop, stops the client.
const (
	ClusterGo    = "go"    // start the operations
	ClusterStall = "stall" // stall the next read-modify-write after its read (the coordinator pauses the process then)
	ClusterStop  = "stop"  // release what is held, end the session, exit
)

// ClusterSpec is what one client of `mplock cluster` does.
type ClusterSpec struct {
	ID          string        // the client's UUID
	Servers     []string      // client addresses of the nodes
	Names       []string      // lock names to work on
	Consistency Consistency   // of checks (Mixed: each picks one)
	Registers   string        // directory of the protected registers, one file per name
	Think       time.Duration // pause between operations
	Hold        time.Duration // between the register's read and write
	Stall       time.Duration // a stalled read-modify-write's wait between read and write
	// Timeout bounds each operation. A preempt or release still without
	// an answer then ends the client with an error: the service neither
	// answered nor ended the session (which the Go client notices within
	// a session TTL), so give it well over one.
	Timeout time.Duration
	Seed    uint64
	// TokenFile holds the members' --token-file secret, which the client
	// presents (AUTH); "" for none.
	TokenFile string
}

// Args formats the spec as the worker's command-line arguments.
func (s ClusterSpec) Args() []string {
	return []string{
		"--id", s.ID, "--servers", strings.Join(s.Servers, ","), "--names", strings.Join(s.Names, ","),
		"--consistency", string(s.Consistency), "--registers", s.Registers,
		"--think", s.Think.String(), "--hold", s.Hold.String(), "--stall", s.Stall.String(),
		"--timeout", s.Timeout.String(), "--seed", strconv.FormatUint(s.Seed, 10), "--token-file", s.TokenFile,
	}
}

// ParseClusterSpec reads what Args wrote.
func ParseClusterSpec(args []string) (ClusterSpec, error) {
	var s ClusterSpec
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var servers, names, consistency string
	fs.StringVar(&s.ID, "id", "", "")
	fs.StringVar(&servers, "servers", "", "")
	fs.StringVar(&names, "names", "", "")
	fs.StringVar(&consistency, "consistency", string(Mixed), "")
	fs.StringVar(&s.Registers, "registers", "", "")
	fs.DurationVar(&s.Think, "think", 0, "")
	fs.DurationVar(&s.Hold, "hold", 0, "")
	fs.DurationVar(&s.Stall, "stall", time.Second, "")
	fs.DurationVar(&s.Timeout, "timeout", 10*time.Second, "")
	fs.Uint64Var(&s.Seed, "seed", 0, "")
	fs.StringVar(&s.TokenFile, "token-file", "", "")
	if err := fs.Parse(args); err != nil {
		return s, fmt.Errorf("worker cluster: %w", err)
	}
	var err error
	if s.Consistency, err = ParseConsistency(consistency); err != nil {
		return s, err
	}
	s.Servers, s.Names = splitList(servers), splitList(names)
	switch {
	case s.ID == "":
		return s, errors.New("worker cluster: --id is required")
	case len(s.Servers) == 0 || len(s.Names) == 0:
		return s, errors.New("worker cluster: --servers and --names are required")
	case s.Registers == "":
		return s, errors.New("worker cluster: --registers is required")
	}
	return s, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// RunCluster is one client of `mplock cluster`. It opens a session named
// ID.1 through dial, says ready, and on ClusterGo does the seed's
// operations at random servers until stopped: preempt a name; when
// granted, a read-modify-write of the name's register (the file NAME in
// spec.Registers) under the lock's fencing token (read, hold, write the
// value plus one), then release; and checks
// of names with the spec's consistency. Every operation and register
// access is noted. A lost session is noted as the expiry of its locks,
// and the client goes on with a new session (ID.2, ...): to the history,
// a new client.
//
// The client does not ask its lease clock before writing: it is the naive
// client of Kleppmann's example, and the register's fencing is what stands
// between its late writes and the data.
//
// It returns nil when stopped (ctx cancelled, ClusterStop, control
// closed), after releasing what it holds and closing the session.
func RunCluster(ctx context.Context, spec ClusterSpec, dial ClusterDialer, control io.Reader, notes io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &clusterClient{spec: spec, dial: dial, notes: &clusterNotes{w: notes}, start: make(chan struct{}), mayHold: map[string]bool{},
		rng: rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15))}
	c.regs = map[string]*register.Register{}
	for _, name := range spec.Names {
		reg, err := register.Open(filepath.Join(spec.Registers, name))
		if err != nil {
			return c.fail(err)
		}
		defer reg.Close()
		c.regs[name] = reg
	}
	go c.readControl(control, cancel)
	if err := c.newSession(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return c.fail(err)
	}
	defer func() { c.svc.Close() }()
	c.notes.write(ClusterNote{Kind: ClusterNoteReady, Client: c.client})
	select {
	case <-c.start:
	case <-ctx.Done():
		c.notes.write(ClusterNote{Kind: ClusterNoteDone, Client: c.client})
		return nil
	}
	// An operation under way when the client is told to stop runs to its
	// end (its outcome known), and a lock held is released: the history
	// stays complete.
	for ctx.Err() == nil {
		if err := c.step(ctx); err != nil {
			return c.fail(err)
		}
		if spec.Think > 0 {
			select {
			case <-time.After(spec.Think):
			case <-ctx.Done():
			}
		}
	}
	c.notes.write(ClusterNote{Kind: ClusterNoteDone, Client: c.client})
	return nil
}

type clusterClient struct {
	spec   ClusterSpec
	dial   ClusterDialer
	notes  *clusterNotes
	regs   map[string]*register.Register // by name
	rng    *rand.Rand
	start  chan struct{}
	stall  atomic.Bool
	svc    ClusterService
	gen    int
	client string // ID.gen
	// alive is the call time of the last operation whose reply showed the
	// session alive: the earliest moment it could have lapsed.
	alive int64
	// lastErr is the last operation's error.
	lastErr error
	// mayHold are the names the session may hold: granted, or asked for
	// with an unknown outcome, and not known released since.
	mayHold map[string]bool
}

func (c *clusterClient) readControl(r io.Reader, cancel func()) {
	defer cancel()
	started := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case ClusterGo:
			if !started {
				started = true
				close(c.start)
			}
		case ClusterStall:
			c.stall.Store(true)
		case ClusterStop:
			return
		}
	}
}

func (c *clusterClient) fail(err error) error {
	c.notes.write(ClusterNote{Kind: ClusterNoteFailed, Client: c.client, Text: err.Error()})
	return err
}

// newSession opens the next session: ID.1, ID.2, ...
func (c *clusterClient) newSession(ctx context.Context) error {
	c.gen++
	c.client = fmt.Sprintf("%s.%d", c.spec.ID, c.gen)
	for {
		dctx, cancel := context.WithTimeout(ctx, c.spec.Timeout)
		svc, err := c.dial(dctx, c.spec.Servers, c.client, c.notes.write)
		cancel()
		if err == nil {
			c.svc, c.alive = svc, time.Now().UnixNano()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// No server answered (all down, or no leader yet): try again, as
		// long as the run goes on.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *clusterClient) server() string { return c.spec.Servers[c.rng.IntN(len(c.spec.Servers))] }

func (c *clusterClient) consistency() Consistency {
	if c.spec.Consistency != Mixed {
		return c.spec.Consistency
	}
	return []Consistency{Stale, Default, Consistent}[c.rng.IntN(3)]
}

// step does one round: a preempt (and, granted, the register's update and
// the release) or a check.
func (c *clusterClient) step(ctx context.Context) error {
	name := c.spec.Names[c.rng.IntN(len(c.spec.Names))]
	if c.rng.IntN(3) == 0 {
		cons := c.consistency()
		_, _, err := c.do(ctx, "check", name, func(octx context.Context, at string) (Reply, error) {
			return c.svc.Check(octx, name, at, cons)
		})
		return err
	}
	r, out, err := c.do(ctx, "preempt", name, func(octx context.Context, at string) (Reply, error) {
		return c.svc.Preempt(octx, name, at)
	})
	if err != nil {
		return err
	}
	switch out {
	case OutcomeOK:
		if err := c.update(ctx, name, r.Token); err != nil {
			return err
		}
	case OutcomeUnknown:
		// It may hold the name: release it whatever happened.
	default:
		return nil
	}
	return c.release(ctx, name)
}

// release releases name, again and again while its release was not
// applied (no server took the session, as in a failover) and the session
// lives: otherwise the session would go on holding the lock. It gives up
// when the session holds no lease of name, or is lost.
func (c *clusterClient) release(ctx context.Context, name string) error {
	start, backoff := time.Now(), 20*time.Millisecond
	for {
		session := c.client
		_, out, err := c.do(ctx, "release", name, func(octx context.Context, at string) (Reply, error) {
			return c.svc.Release(octx, name, at)
		})
		if err != nil || out != OutcomeDropped || c.client != session || errors.Is(c.lastErr, ErrNoLease) {
			return err
		}
		if time.Since(start) > c.spec.Timeout {
			return fmt.Errorf("worker cluster: %s could not be released within %v: no server took the session, and it did not end", name, c.spec.Timeout)
		}
		time.Sleep(backoff) // a pause before the next try, not a synchronisation
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// do runs one operation at a random server and notes it; a lost session
// is noted as the expiry of its locks and replaced by a new one. The
// operation is bounded by the spec's Timeout, not by ctx: a client told to
// stop finishes it. A change still unanswered at the timeout is an error
// that ends the client.
func (c *clusterClient) do(ctx context.Context, op, name string, f func(context.Context, string) (Reply, error)) (Reply, Outcome, error) {
	at := c.server()
	octx, cancel := context.WithTimeout(context.Background(), c.spec.Timeout)
	call := time.Now().UnixNano()
	r, err := f(octx, at)
	ret := time.Now().UnixNano()
	c.lastErr = err
	timedOut := octx.Err() != nil
	cancel()
	n := ClusterNote{Kind: ClusterNoteOp, Client: c.client, Op: op, Name: name, Server: at, Call: call}
	switch {
	case err == nil:
		n.Return, n.Reply = ret, &r
		n.Outcome = OutcomeOK
		if !r.OK && op != "check" {
			n.Outcome = OutcomeRefused
		}
		c.alive = call
	case errors.Is(err, ErrNotApplied):
		n.Outcome, n.Err, n.Return = OutcomeDropped, reason(err), ret
	default:
		// The session lost with the request unanswered, or no answer in
		// time: it may have taken effect at any time after its call.
		n.Outcome, n.Err = OutcomeUnknown, reason(err)
	}
	if r.Node != "" && n.Reply == nil {
		n.Reply = &Reply{Node: r.Node}
	}
	switch {
	case op == "preempt" && (n.Outcome == OutcomeUnknown || n.Outcome == OutcomeOK && r.OK):
		c.mayHold[name] = true
	case op == "release" && (n.Outcome == OutcomeOK || n.Outcome == OutcomeRefused):
		delete(c.mayHold, name)
	}
	c.notes.write(n)
	if errors.Is(err, ErrSessionLost) {
		c.sessionLost(ctx, ret, err)
		return r, n.Outcome, nil
	}
	if n.Outcome == OutcomeUnknown && timedOut && op != "check" {
		return r, n.Outcome, fmt.Errorf("worker cluster: %s of %s at %s had no answer within %v, and the session did not end: the service is stuck", op, name, at, c.spec.Timeout)
	}
	return r, n.Outcome, nil
}

// sessionLost notes the expiry of the session's locks (at some moment
// since it was last seen alive) and opens a new session.
func (c *clusterClient) sessionLost(ctx context.Context, now int64, err error) {
	old := c.client
	for _, name := range c.spec.Names {
		if c.mayHold[name] {
			c.notes.write(ClusterNote{Kind: ClusterNoteOp, Client: old, Op: "expire", Name: name, Call: c.alive, Return: now, Outcome: OutcomeOK})
		}
	}
	clear(c.mayHold)
	c.svc.Close()
	if c.newSession(ctx) != nil {
		return // stopped
	}
	c.notes.write(ClusterNote{Kind: ClusterNoteSession, Client: c.client, Previous: old, Text: reason(err)})
}

// reason is err's message without the sentinels' prefixes that say what
// the note already says ("worker: session lost: lockd: ...").
func reason(err error) string {
	s := err.Error()
	for again := true; again; {
		again = false
		for _, p := range []string{ErrSessionLost.Error() + ": ", ErrNotApplied.Error() + ": ", lockd.ErrSessionLost.Error() + ": ", "lockd: "} {
			if t, ok := strings.CutPrefix(s, p); ok {
				s, again = t, true
			}
		}
	}
	return s
}

// update is the read-modify-write of name's register under its lock with
// token: read, hold, write the value plus one.
func (c *clusterClient) update(ctx context.Context, name string, token uint64) error {
	reg := c.regs[name]
	snap, err := reg.Read(token)
	if errors.Is(err, register.ErrStaleToken) {
		var se *register.StaleError
		errors.As(err, &se)
		c.notes.write(ClusterNote{Kind: ClusterNoteRegister, Client: c.client, Name: name, Token: token, Refused: true, Highest: se.Highest, Text: "read"})
		return nil
	} else if err != nil {
		return err
	}
	hold := c.spec.Hold
	if c.stall.CompareAndSwap(true, false) {
		c.notes.write(ClusterNote{Kind: ClusterNoteStalling, Client: c.client, Name: name, Token: token, Read: snap.Value})
		hold = c.spec.Stall
	}
	if hold > 0 {
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil // stopped: the write is not made
		}
	}
	lost, err := reg.Write(token, snap, snap.Value+1)
	n := ClusterNote{Kind: ClusterNoteRegister, Client: c.client, Name: name, Token: token, Read: snap.Value, Wrote: snap.Value + 1, Lost: lost}
	var se *register.StaleError
	switch {
	case errors.As(err, &se):
		n.Refused, n.Highest, n.Wrote = true, se.Highest, 0
	case err != nil:
		return err
	}
	c.notes.write(n)
	return nil
}
