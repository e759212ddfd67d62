package coordinator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mplock/reexec"
)

// The nodes of a cluster run: `mplock serve` processes in cluster mode,
// each with its data dir in the run directory, its client and raft ports
// on loopback, and its peers reached through the mesh's proxies.

// nodeState is what the coordinator did to a node.
type nodeState uint8

const (
	nodeUp     nodeState = iota + 1
	nodeKilled           // SIGKILLed, not restarted yet
	nodePaused           // SIGSTOPped
	nodeCut              // isolated by the mesh
)

// clusterNode is one node and its current process.
type clusterNode struct {
	*child
	idx        int
	id         string
	clientAddr string
	raftAddr   string
	dataDir    string
	args       []string
	pids       []int
	state      nodeState
	downSince  time.Duration
	downtime   time.Duration
	// From the probes: its role, term and applied index as it last said.
	role    string
	term    uint64
	applied uint64
	leader  string
}

// nodeArgs is the command line of node i: `mplock serve` in cluster mode
// (docs/replication.md) with the plan's timings and the mesh's peer
// addresses.
func (r *clusterRun) nodeArgs(i int) []string {
	var initial []string
	for _, n := range r.nodes {
		initial = append(initial, n.id+"="+n.raftAddr)
	}
	n := r.nodes[i]
	args := []string{"serve", "--node", n.id, "--listen", n.clientAddr, "--raft-listen", n.raftAddr,
		"--data-dir", n.dataDir, "--initial-cluster", strings.Join(initial, ","),
		"--peer-addr", r.mesh.peerAddrs(i),
		"--election-timeout", r.plan.ElectionTimeout.String(), "--heartbeat-timeout", r.plan.HeartbeatTimeout.String(),
		"--session-ttl", r.plan.SessionTTL.String(), "--log-level", "error"}
	if r.plan.UnsafeLocalGrants {
		args = append(args, "--unsafe-local-grants")
	}
	return args
}

// startNode starts node i's process (again, after a kill: same data dir,
// same ports) and waits until it listens.
func (r *clusterRun) startNode(ctx context.Context, i int) error {
	n := r.nodes[i]
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("coordinator: node pipe: %w", err)
	}
	cmd := reexec.Command(reexec.Options{}, n.args...)
	cmd.Stdout = pw
	c, err := startChild("node "+n.id, cmd, r.nodeExited)
	pw.Close()
	if err != nil {
		pr.Close()
		return err
	}
	n.child, n.state = c, nodeUp
	n.pids = append(n.pids, c.pid())
	listening := make(chan error, 1)
	go func() {
		defer pr.Close()
		br := bufio.NewReader(pr)
		line, err := br.ReadString('\n')
		if err == nil && !strings.Contains(line, "started on tcp://") {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		listening <- err
		io.Copy(io.Discard, br)
	}()
	deadline := time.NewTimer(barrierTimeout)
	defer deadline.Stop()
	select {
	case err := <-listening:
		if err != nil {
			select {
			case <-c.done:
			case <-time.After(stopGrace):
				c.kill()
				<-c.done
			}
			why := c.describe()
			for _, l := range strings.Split(c.stderr.String(), "\n") {
				if strings.HasPrefix(l, "mplock: ") {
					state, _, _ := strings.Cut(why, ":")
					why = state + ": " + strings.TrimPrefix(l, "mplock: ")
					break
				}
			}
			return fmt.Errorf("coordinator: node %s (pid %d) did not start: %s", n.id, c.pid(), why)
		}
	case <-deadline.C:
		return fmt.Errorf("coordinator: node %s (pid %d) did not listen within %v", n.id, c.pid(), barrierTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	r.event(ClusterEvent{At: r.since(time.Now()), Kind: ClusterNodeUp, Node: n.id, PID: c.pid(), Text: n.clientAddr})
	return nil
}

// signal sends sig to node n's current process, if it runs.
func (n *clusterNode) signal(sig syscall.Signal) {
	if n.child != nil && !n.hasExited() {
		n.cmd.Process.Signal(sig)
	}
}

// stopNodes ends every node: SIGCONT to any paused one, SIGTERM, and
// SIGKILL to those still running after the grace period.
func (r *clusterRun) stopNodes() {
	for _, n := range r.nodes {
		n.signal(syscall.SIGCONT)
		n.signal(syscall.SIGTERM)
	}
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
	for _, n := range r.nodes {
		if n.child == nil {
			continue
		}
		select {
		case <-n.done:
		case <-grace.C:
			for _, m := range r.nodes {
				if m.child != nil {
					m.kill()
				}
			}
			<-n.done
		}
	}
}

// nodeView is one node's answer to MEMBERS about itself.
type nodeView struct {
	idx     int
	ok      bool
	role    string
	term    uint64
	applied uint64
	leader  string
}

// probe asks node n for MEMBERS (docs/protocol.md) and returns what it
// says about itself and its leader. A node that does not answer within
// timeout is not ok.
func probe(ctx context.Context, n *clusterNode, timeout time.Duration) nodeView {
	v := nodeView{idx: n.idx}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", n.clientAddr)
	if err != nil {
		return v
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	c.SetDeadline(dl)
	if _, err := io.WriteString(c, "MEMBERS\n"); err != nil {
		return v
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		f := fieldsOf(line)
		switch {
		case strings.HasPrefix(line, "MEMBER ") && len(strings.Fields(line)) > 1 && strings.Fields(line)[1] == n.id:
			v.role = f["role"]
			v.term, _ = strconv.ParseUint(f["term"], 10, 64)
			v.applied, _ = strconv.ParseUint(f["applied"], 10, 64)
		case strings.HasPrefix(line, "OK"):
			v.leader, v.ok = f["leader"], v.role != ""
			if t, err := strconv.ParseUint(f["term"], 10, 64); err == nil && v.term == 0 {
				v.term = t
			}
			io.WriteString(c, "QUIT\n")
			return v
		case strings.HasPrefix(line, "ERR"):
			return v
		}
	}
	return v
}

// fieldsOf reads the key=value fields of a protocol line.
func fieldsOf(line string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

// dataDir is node id's data dir in the run directory.
func dataDir(runDir, id string) string { return filepath.Join(runDir, id) }
