package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/internal/freeport"
	"mplock/internal/safefile"
	"mplock/lockd"
	"mplock/lockd/lockbench"
	"mplock/machine"
	"mplock/reexec"
	"mplock/report"
)

// `mplock bench lockd --failover N`: a cluster of three `mplock serve`
// children, whose leader is killed N times, one kill after another.

// failoverMembers is the size of the cluster --failover starts.
const failoverMembers = 3

// failoverWait bounds each wait of a kill: for the cluster to be whole
// again, for a client's first LOCK after the kill.
const failoverWait = 30 * time.Second

// benchMember is one `mplock serve` child of a benchCluster.
type benchMember struct {
	id, client, raft, dataDir, logPath string
	cmd                                *exec.Cmd
	exited                             chan struct{} // closed once cmd.Wait returned
}

// benchCluster is a cluster of `mplock serve` children on fixed loopback
// ports (a restarted member comes back where its peers and clients look
// for it), with data dirs in a private temporary directory.
type benchCluster struct {
	dir     string
	members []*benchMember
	args    []string // every member's flags after its own
	secret  string   // the cluster's secret (its --token-file is dir/secret)
}

// startBenchCluster starts n members with extra flags and waits until
// they have a leader.
func startBenchCluster(ctx context.Context, n int, extra []string) (*benchCluster, error) {
	dir, err := os.MkdirTemp("", "mplock-failover-")
	if err != nil {
		return nil, err
	}
	c := &benchCluster{dir: dir}
	ports, err := freeport.Loopback(2 * n)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var initial []string
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		m := &benchMember{id: id, client: ports[i], raft: ports[n+i], dataDir: filepath.Join(dir, id),
			logPath: filepath.Join(dir, id+".log")}
		c.members = append(c.members, m)
		initial = append(initial, id+"="+m.raft)
	}
	secretFile := filepath.Join(dir, "secret")
	if c.secret, err = safefile.WriteNewSecret(secretFile); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.args = append([]string{"--initial-cluster", strings.Join(initial, ","), "--token-file", secretFile, "--log-level", "warn"}, extra...)
	for i := range c.members {
		if err := c.start(i); err != nil {
			c.stop()
			return nil, err
		}
	}
	if _, err := c.waitWhole(ctx); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// start starts member i (again) and waits for its first line.
func (c *benchCluster) start(i int) error {
	m := c.members[i]
	log, err := os.OpenFile(m.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	args := append([]string{"serve", "--node", m.id, "--listen", m.client, "--raft-listen", m.raft, "--data-dir", m.dataDir}, c.args...)
	cmd := reexec.Command(reexec.Options{}, args...)
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = w, log
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("start member %s: %w", m.id, err)
	}
	w.Close()
	m.cmd, m.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(m.exited) }()
	first := make(chan string, 1)
	go func() {
		defer r.Close()
		br := bufio.NewReader(r)
		line, _ := br.ReadString('\n')
		first <- line
		io.Copy(io.Discard, br)
	}()
	select {
	case line := <-first:
		if strings.HasPrefix(line, "Lock Server started on tcp://") {
			return nil
		}
	case <-time.After(failoverWait):
	}
	c.kill(i)
	return fmt.Errorf("member %s did not start: %s", m.id, c.logTail(i))
}

// kill sends member i SIGKILL and waits until it is gone.
func (c *benchCluster) kill(i int) {
	m := c.members[i]
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exited
	m.cmd = nil
}

// stop ends every member (SIGTERM, then SIGKILL after 5s) and removes the
// data dirs.
func (c *benchCluster) stop() {
	for _, m := range c.members {
		if m.cmd != nil {
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for i, m := range c.members {
		if m.cmd == nil {
			continue
		}
		select {
		case <-m.exited:
			m.cmd = nil
		case <-time.After(5 * time.Second):
			c.kill(i)
		}
	}
	os.RemoveAll(c.dir)
}

// logTail is the end of member i's log, for an error message.
func (c *benchCluster) logTail(i int) string {
	b, _ := os.ReadFile(c.members[i].logPath)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	if s == "" {
		return "(its log is empty)"
	}
	return s
}

func (c *benchCluster) index(id string) int {
	for i, m := range c.members {
		if m.id == id {
			return i
		}
	}
	return -1
}

// memberLine is what waitWhole reads of one MEMBERS line.
type memberLine struct{ role, lag string }

// waitWhole waits until every member runs, one of them leads, and every
// member reports itself a leader or follower that has applied all the
// leader committed; it returns the leader's index.
func (c *benchCluster) waitWhole(ctx context.Context) (int, error) {
	deadline := time.Now().Add(failoverWait)
	var last string
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		for _, m := range c.members {
			if m.cmd == nil {
				continue
			}
			leader, lines, err := rawMembers(m.client, c.secret)
			if err != nil {
				last = err.Error()
				continue
			}
			whole := leader != "" && len(lines) == len(c.members)
			for _, l := range lines {
				whole = whole && (l.role == "leader" || l.role == "follower") && l.lag == "0"
			}
			if i := c.index(leader); whole && i >= 0 && c.members[i].cmd != nil {
				return i, nil
			}
			last = fmt.Sprintf("%s says leader %q, members %v", m.id, leader, lines)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return -1, fmt.Errorf("the cluster was not whole within %v (%s)", failoverWait, last)
}

// rawMembers asks a member MEMBERS on a connection without a session (no
// log entry) and returns the leader it names and each member's role and
// lag.
func rawMembers(addr, secret string) (string, map[string]memberLine, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "AUTH "+secret+"\nMEMBERS\n"); err != nil {
		return "", nil, err
	}
	br := bufio.NewReader(conn)
	lines := map[string]memberLine{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		f := strings.Fields(line)
		kv := map[string]string{}
		for _, x := range f {
			if k, v, ok := strings.Cut(x, "="); ok {
				kv[k] = v
			}
		}
		switch {
		case len(f) > 1 && f[0] == "MEMBER":
			lines[f[1]] = memberLine{role: kv["role"], lag: kv["lag"]}
		case len(f) > 1 && f[0] == "OK" && f[1] == "MEMBERS":
			return strings.TrimPrefix(kv["leader"], "-"), lines, nil
		case len(f) > 0 && f[0] == "ERR":
			return "", nil, fmt.Errorf("MEMBERS at %s: %s", addr, strings.TrimSpace(line))
		}
	}
}

// benchFailover is `mplock bench lockd --failover N`.
func benchFailover(c *cli.Context) error {
	n := c.Int("failover")
	if n < 1 {
		return usageErrorf("bench lockd: --failover %d: want a number of kills such as 30", n)
	}
	for _, f := range []string{"addr", "target", "soak", "reads", "entry", "ttl"} {
		if c.IsSet(f) {
			return usageErrorf("bench lockd: --failover starts and kills a cluster of its own: no --%s", f)
		}
	}
	extra := c.StringSlice("serve-arg")
	ctx := c.Context
	say := benchProgress(c)
	timeouts := "default timeouts"
	if len(extra) > 0 {
		timeouts += ", and " + strings.Join(extra, " ")
	}
	say("starting %d members of mplock serve (%s)...", failoverMembers, timeouts)
	cl, err := startBenchCluster(ctx, failoverMembers, extra)
	if err != nil {
		return fmt.Errorf("bench lockd: --failover: %w", err)
	}
	defer cl.stop()
	res := report.LockdFailover{Where: fmt.Sprintf("a %d-member cluster of mplock serve children on loopback, data dirs in %s", failoverMembers, cl.dir),
		Members: failoverMembers, Serve: cl.args, Machine: machine.Collect(version())}
	for k, tries := 1, 0; k <= n && ctx.Err() == nil; {
		kill, err := failoverOnce(ctx, cl, k)
		if ctx.Err() != nil {
			break
		}
		var again *failoverRetry
		switch {
		case errors.As(err, &again) && tries < 10:
			// Nothing was killed: set up again.
			tries++
			say("kill %d/%d: %v; again", k, n, again.err)
			continue
		case err != nil && kill.Leader == "":
			return fmt.Errorf("bench lockd: --failover: kill %d: %w", k, err)
		case err != nil:
			kill.Err = err.Error()
		}
		res.Kills = append(res.Kills, kill)
		if kill.Err != "" {
			say("kill %d/%d: leader %s: %s", k, n, kill.Leader, kill.Err)
		} else {
			say("kill %d/%d: leader %s: new leader named after %v; first LOCK after %v at a client of %s, %v at a client of %s",
				k, n, kill.Leader, kill.Election.Round(time.Millisecond), kill.AtKilled.Round(time.Millisecond), kill.Leader,
				kill.Elsewhere.Round(time.Millisecond), kill.Follower)
		}
		k, tries = k+1, 0
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, res); err != nil {
			return err
		}
	} else if err := report.WriteLockdFailover(c.App.Writer, res, true); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return withCode(exitInterrupted, nil)
	}
	if n := res.Failed(); n > 0 {
		return withCode(exitFailure, fmt.Errorf("bench lockd: --failover: %d of %d kills failed", n, len(res.Kills)))
	}
	return nil
}

// failoverRetry is a failure before the kill (the leader moved while the
// clients were set up): nothing was killed, the kill is set up again.
type failoverRetry struct{ err error }

func (r *failoverRetry) Error() string { return r.err.Error() }

// failoverOnce waits for the cluster to be whole, connects one client to
// the leader and one to a follower, each locking and unlocking a name of
// its own in a loop, kills the leader, measures, and restarts it. An error
// with kill.Leader empty is the cluster's, not the kill's.
func failoverOnce(ctx context.Context, cl *benchCluster, k int) (report.FailoverKill, error) {
	var kill report.FailoverKill
	li, err := cl.waitWhole(ctx)
	if err != nil {
		return kill, err
	}
	leader := cl.members[li]
	var follower *benchMember
	for _, m := range cl.members {
		if m != leader {
			follower = m
			break
		}
	}
	// Each client dials its member first, then the others (where it
	// resumes its session when its member is killed).
	var topo lockbench.Topology
	for _, m := range cl.members {
		topo.Addrs = append(topo.Addrs, m.client)
	}
	dctx, cancel := context.WithTimeout(ctx, failoverWait)
	defer cancel()
	var clients []*lockd.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var loops []*lockbench.LockLoop
	defer func() {
		for _, l := range loops {
			l.Stop()
		}
	}()
	for _, m := range []*benchMember{leader, follower} {
		c, err := lockd.Dial(dctx, topo.Via(lockbench.Entry{Addr: m.client}), lockd.Options{Client: "failover-" + m.id, Secret: cl.secret})
		if err != nil {
			return kill, &failoverRetry{err}
		}
		clients = append(clients, c)
		if info, _ := c.Cluster(); info.Node != m.id {
			return kill, &failoverRetry{fmt.Errorf("a client meant for %s reached %q", m.id, info.Node)}
		}
		loops = append(loops, lockbench.StartLockLoop(c, fmt.Sprintf("failover-%d-%s", k, m.id)))
	}
	// Both loops under way (a few grants each) before the kill.
	for _, l := range loops {
		for l.Granted() < 3 {
			if _, err := l.FirstGrantAfter(time.Now(), time.Now().Add(failoverWait)); err != nil {
				return kill, &failoverRetry{err}
			}
		}
	}
	// Still the leader? (an election under load may have moved it)
	if now, _, err := rawMembers(follower.client, cl.secret); err != nil || now != leader.id {
		return kill, &failoverRetry{fmt.Errorf("the leader moved before the kill (from %s to %q)", leader.id, now)}
	}
	var survivors []string
	for _, m := range cl.members {
		if m != leader {
			survivors = append(survivors, m.client)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, failoverWait)
	defer wcancel()
	t0 := time.Now()
	elected := lockbench.WatchLeader(wctx, survivors, cl.secret, leader.id, "failover-probe", 5*time.Millisecond)
	cl.kill(li)
	kill.Leader, kill.Follower = leader.id, follower.id
	deadline := t0.Add(failoverWait)
	var errs []error
	if kill.AtKilled, err = loops[0].FirstGrantAfter(t0, deadline); err != nil {
		errs = append(errs, fmt.Errorf("client of %s: %w", leader.id, err))
	}
	if kill.Elsewhere, err = loops[1].FirstGrantAfter(t0, deadline); err != nil {
		errs = append(errs, fmt.Errorf("client of %s: %w", follower.id, err))
	}
	if t, ok := <-elected; ok {
		kill.Election = t.Sub(t0)
	} else {
		errs = append(errs, errors.New("no survivor named a new leader"))
	}
	wcancel()
	if err := cl.start(li); err != nil {
		return report.FailoverKill{}, err
	}
	return kill, errors.Join(errs...)
}
