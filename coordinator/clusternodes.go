package coordinator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mplock/internal/safefile"
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
	// metricsAddr is its --metrics-listen: the probes read its raft role,
	// term and applied index there.
	metricsAddr string
	dataDir     string
	args        []string
	pids        []int
	state       nodeState
	forced      bool // killed at the end: it did not stop on SIGTERM in time
	downSince   time.Duration
	downtime    time.Duration
	// From the probes: its role, term and applied index as it last said.
	role    string
	term    uint64
	applied uint64
}

// nodeArgs is the command line of node i: `mplock serve` in cluster mode
// (docs/replication.md) with the plan's timings and the mesh's peer
// addresses. The idle timeout is the session TTL: a member keeps the
// session of an open connection alive, and a stopped client's connection
// stays open, so without it a paused client would keep its locks for the
// default idle timeout (2 minutes); with it, a client silent for a TTL is
// disconnected, and its session expires a TTL later.
func (r *clusterRun) nodeArgs(i int) []string {
	var initial []string
	for _, n := range r.nodes {
		initial = append(initial, n.id+"="+n.raftAddr)
	}
	n := r.nodes[i]
	args := []string{"serve", "--node", n.id, "--listen", n.clientAddr, "--raft-listen", n.raftAddr,
		"--data-dir", n.dataDir, "--initial-cluster", strings.Join(initial, ","), "--token-file", r.secret, "--peer-token-file", r.peerSecret,
		"--peer-addr", r.mesh.peerAddrs(i), "--metrics-listen", n.metricsAddr,
		"--election-timeout", r.plan.ElectionTimeout.String(), "--heartbeat-timeout", r.plan.HeartbeatTimeout.String(),
		"--session-ttl", r.plan.SessionTTL.String(), "--idle-timeout", r.plan.SessionTTL.String(), "--log-level", "error"}
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

// nodeStopGrace is how long a node has to stop after SIGTERM before it is
// killed: `mplock serve` itself gives its shutdown at most 5 s (its
// clients' goodbyes, a leader's handover).
const nodeStopGrace = 6 * time.Second

// stopNodes ends every node: SIGCONT to any paused one, SIGTERM, and
// SIGKILL to those still running after nodeStopGrace.
func (r *clusterRun) stopNodes() {
	for _, n := range r.nodes {
		n.signal(syscall.SIGCONT)
		n.signal(syscall.SIGTERM)
	}
	grace := time.NewTimer(nodeStopGrace)
	defer grace.Stop()
	for _, n := range r.nodes {
		if n.child == nil {
			continue
		}
		select {
		case <-n.done:
		case <-grace.C:
			for _, m := range r.nodes {
				if m.child != nil && !m.hasExited() {
					m.forced = true
					m.kill()
				}
			}
			<-n.done
		}
	}
}

// nodeView is one node's raft state as its metrics said it.
type nodeView struct {
	idx     int
	ok      bool
	role    string // leader, follower, candidate
	term    uint64
	applied uint64
}

// probe reads node n's raft role, term and applied index from its
// metrics (docs/replication.md: mplock_raft_role, mplock_raft_term,
// mplock_raft_applied_index): what the node itself believes now, without
// asking anyone else. (MEMBERS would not do: the member asked waits for
// every other member's report, up to a second for one that is stopped or
// cut off, just when the coordinator needs to see the new leader.) A node
// that does not answer within timeout is not ok.
func probe(ctx context.Context, hc *http.Client, n *clusterNode, timeout time.Duration) nodeView {
	v := nodeView{idx: n.idx}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.metricsAddr+"/metrics", nil)
	if err != nil {
		return v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return v
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !strings.HasPrefix(name, "mplock_raft_") {
			continue
		}
		switch name {
		case "mplock_raft_term":
			v.term = parseMetric(value)
		case "mplock_raft_applied_index":
			v.applied = parseMetric(value)
		case `mplock_raft_role{role="leader"}`, `mplock_raft_role{role="follower"}`, `mplock_raft_role{role="candidate"}`:
			if value == "1" {
				v.role = strings.TrimSuffix(strings.TrimPrefix(name, `mplock_raft_role{role="`), `"}`)
			}
		}
	}
	v.ok = sc.Err() == nil && resp.StatusCode == http.StatusOK && v.role != ""
	return v
}

// parseMetric reads a gauge's value (Prometheus' text format writes
// whole numbers of up to 2^53 plainly, larger ones as 1.2e+06).
func parseMetric(s string) uint64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return 0
	}
	return uint64(f)
}

// writeSecretFile writes a fresh random cluster secret to a new file at
// path (safefile.WriteNewSecret).
func writeSecretFile(path string) error {
	if _, err := safefile.WriteNewSecret(path); err != nil {
		return fmt.Errorf("coordinator: cluster secret: %w", err)
	}
	return nil
}

// dataDir is node id's data dir in the run directory.
func dataDir(runDir, id string) string { return filepath.Join(runDir, id) }
