package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/internal/safefile"
	"mplock/lockd"
	"mplock/lockd/cluster"
	"mplock/lockd/replica"
)

// clusterFlags are mplock serve's flags for cluster mode.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "node", DefaultText: "the host name", Usage: "this member's `ID` in the cluster, for ever (letters, digits, '.', '_', '-')"},
		&cli.GenericFlag{Name: "raft-listen", Value: listenAddr(replica.DefaultRaftListen), DefaultText: replica.DefaultRaftListen + "; with --data-dir alone, any free loopback port",
			Usage: "`ADDR` for raft and the cluster's own traffic (loopback unless told otherwise)"},
		&cli.StringFlag{Name: "raft-advertise", DefaultText: "the address --raft-listen bound", Usage: "`ADDR` the other members dial to reach this one"},
		&cli.StringFlag{Name: "initial-cluster", Usage: "start a new cluster of these members, every one given the same list: `ID=ADDR,ID=ADDR,...` (their raft addresses)"},
		&cli.StringFlag{Name: "join", Usage: "join a running cluster through a member's client address, `ADDR[,ADDR...]` (it asks MEMBER ADD, with the --peer-token-file secret, or else --token-file's)"},
		&cli.StringFlag{Name: "peer-token-file", Usage: "`FILE` with the members' own secret, for the raft port and for MEMBER ADD/REMOVE, so that the clients' --token-file lets them lock but not act as members (recommended; the same file on every member, given to no client)"},
		&cli.GenericFlag{Name: "election-timeout", Value: positiveSeconds(replica.DefaultElectionTimeout),
			Usage: "a follower that hears nothing from the leader for about this long (randomised up to twice it) starts an election"},
		&cli.GenericFlag{Name: "heartbeat-timeout", Value: positiveSeconds(replica.DefaultHeartbeatTimeout),
			Usage: "how long a follower waits for the leader's heartbeat before it stands for election (with the defaults a dead leader is replaced in about 0.4 to 1.2s)"},
		&cli.GenericFlag{Name: "session-ttl", Value: positiveSeconds(replica.DefaultSessionTTL),
			Usage: "a session whose client sends nothing for this long (and whose connection is gone) expires, and its locks with it"},
		&cli.GenericFlag{Name: "max-stale", Value: positiveSeconds(replica.DefaultMaxStale),
			Usage: "refuse a consistency=stale read at a member that has not heard from a leader for longer"},
		&cli.BoolFlag{Name: "unsafe-local-grants", Hidden: true,
			Usage: "(internal, for mplock cluster's checker) a deliberately broken mode: a follower grants LOCK from its own table without the leader"},
		&cli.StringFlag{Name: "peer-addr", Hidden: true,
			Usage: "(internal, for mplock cluster's partitions) dial member `ID=HOST:PORT,...` at these addresses instead of their own (per-link proxies)"},
	}
}

// clusterMode reports whether the flags ask for the replicated table.
func clusterMode(c *cli.Context) bool {
	return c.String("data-dir") != "" || c.String("initial-cluster") != "" || c.String("join") != ""
}

// clusterConfig turns the flags into the backend's configuration.
func clusterConfig(c *cli.Context, clientAddr, secret, peerSecret string, log *slog.Logger) (cluster.Config, error) {
	dir := c.String("data-dir")
	initial, join := c.String("initial-cluster"), c.String("join")
	switch {
	case dir == "":
		return cluster.Config{}, usageErrorf("serve: --initial-cluster and --join need --data-dir: a member keeps its log on disk")
	case initial != "" && join != "":
		return cluster.Config{}, usageErrorf("serve: --initial-cluster starts a new cluster, --join joins a running one: give one of them")
	case secret == "" && (initial != "" || join != ""):
		flag := "--initial-cluster"
		if join != "" {
			flag = "--join"
		}
		return cluster.Config{}, usageErrorf("serve: %s needs --token-file: without a secret any process that reaches a member's raft or client port "+
			"could release others' locks, stop the members or change the membership. Make one %s "+
			"and give the same file to every member and client: --token-file secret (serve reads only the flag, not MPLOCK_TOKEN_FILE)", flag, secretRecipe("secret"))
	}
	// Created with its missing parents (mkdir -p -m 700), and refused
	// unless private: the log holds every lock and session.
	if err := safefile.PrivateDir(dir); err != nil {
		return cluster.Config{}, fmt.Errorf("serve: --data-dir: %w", err)
	}
	raftSecret, from := secret, "--token-file"
	if peerSecret != "" {
		raftSecret, from = peerSecret, "--peer-token-file"
	}
	if raftSecret != "" && len(raftSecret) < lockd.StrongSecret {
		// The raft port checks a peer's proof as fast as peers come (a
		// guess is answered at once, yes or no): only a secret out of
		// reach of guessing may guard it.
		return cluster.Config{}, usageErrorf("serve: the secret in %s guards this member's raft port, and it is %d bytes: "+
			"use %d or more random bytes there, e.g. %s", from, len(raftSecret), lockd.StrongSecret, secretRecipe("FILE"))
	}
	if raftSecret == "" {
		// A one-node cluster whose clients need no secret: its raft port
		// still does, one of its own, made once and kept in the data dir.
		var err error
		if raftSecret, err = dataDirSecret(dir); err != nil {
			return cluster.Config{}, fmt.Errorf("serve: --data-dir: %w", err)
		}
	}
	node := c.String("node")
	if node == "" {
		node = hostNodeID()
	} else if err := lockd.ValidName(node); err != nil {
		return cluster.Config{}, usageErrorf("serve: --node %q: %v", node, err)
	}
	raftListen := c.String("raft-listen")
	if !c.IsSet("raft-listen") && initial == "" && join == "" {
		// A one-node cluster talks to nobody; a fixed port would keep two
		// of them off one host. Give --raft-listen to grow it later.
		raftListen = "127.0.0.1:0"
	}
	rc := replica.Config{
		NodeID: node, RaftListen: raftListen, RaftAdvertise: c.String("raft-advertise"), ClientAddr: clientAddr,
		DataDir: dir, Secret: raftSecret, AwaitAdmission: join != "",
		HeartbeatTimeout: c.Duration("heartbeat-timeout"), ElectionTimeout: c.Duration("election-timeout"),
		SessionTTL: c.Duration("session-ttl"), MaxStale: c.Duration("max-stale"),
		Limits:            lockd.TableLimits{MaxLocksPerSession: c.Int("max-locks")},
		Logger:            log,
		UnsafeLocalGrants: c.Bool("unsafe-local-grants"),
	}
	if initial != "" {
		peers, err := replica.ParseInitialCluster(initial)
		if err != nil {
			return cluster.Config{}, usageErrorf("serve: --initial-cluster: %v", err)
		}
		rc.InitialCluster = peers
	}
	if p := c.String("peer-addr"); p != "" {
		peers, err := replica.ParseInitialCluster(p)
		if err != nil {
			return cluster.Config{}, usageErrorf("serve: --peer-addr: %v", err)
		}
		m := map[string]string{}
		for _, q := range peers {
			m[q.ID] = q.Addr
		}
		rc.PeerAddr = func(id string) (string, bool) { a, ok := m[id]; return a, ok }
	}
	if rc.UnsafeLocalGrants {
		log.Warn("--unsafe-local-grants: followers grant locks without the leader; this member WILL grant a lock twice")
	}
	return cluster.Config{Replica: rc, DefaultTTL: c.Duration("ttl")}, nil
}

// raftSecretFile is where a member without --token-file keeps the secret
// of its raft port, in its data dir.
const raftSecretFile = "raft-secret"

// dataDirSecret returns the raft port's secret of a member without
// --token-file (a one-node cluster): read from the private data dir dir,
// or made there (32 random bytes, base64, mode 0600) the first time.
func dataDirSecret(dir string) (string, error) {
	path := filepath.Join(dir, raftSecretFile)
	secret, err := safefile.WriteNewSecret(path)
	switch {
	case errors.Is(err, fs.ErrExist): // made at an earlier start (or a link: refused)
		return readSecretFile("the raft port's secret", path)
	case err != nil:
		os.Remove(path) // a partial write
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return secret, nil
}

// hostNodeID is the host name, made a valid node id.
func hostNodeID() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	h, _, _ = strings.Cut(h, ".")
	b := []byte(h)
	for i, x := range b {
		if !(x >= 'a' && x <= 'z' || x >= 'A' && x <= 'Z' || x >= '0' && x <= '9' || x == '_' || x == '-' || x == '.' && i > 0) {
			b[i] = '_'
		}
	}
	if len(b) > lockd.MaxNameLen {
		b = b[:lockd.MaxNameLen]
	}
	return string(b)
}

// joinCluster asks the members at addrs (client addresses), in turn and
// again until one says yes or ctx ends, to add this node (MEMBER ADD
// through the client protocol, after AUTH when there is a secret).
func joinCluster(ctx context.Context, addrs []string, node, raftAddr, secret string, log *slog.Logger) {
	backoff := 200 * time.Millisecond
	for {
		for _, addr := range addrs {
			err := askToJoin(ctx, addr, node, raftAddr, secret)
			if err == nil {
				log.Info("joined the cluster", "via", addr, "node", node, "raft", raftAddr)
				return
			}
			if ctx.Err() != nil {
				return
			}
			log.Warn("join: not admitted yet; will ask again", "via", addr, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

func askToJoin(ctx context.Context, addr, node, raftAddr, secret string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := ""
	if secret != "" {
		req = "AUTH " + secret + "\n"
	}
	req += lockd.Request{Verb: lockd.VerbMemberAdd, Name: node, Addr: raftAddr}.String() + "\nQUIT\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), "OK BYE") {
		n, err := conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	for _, l := range strings.Split(got.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "OK MEMBER ADDED"):
			return nil
		case strings.HasPrefix(l, "ERR "):
			return errors.New(l)
		}
	}
	return fmt.Errorf("no answer to MEMBER ADD from %s", addr)
}
