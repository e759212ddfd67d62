package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"mplock/internal/safefile"
	"mplock/lockd"
	"mplock/lockd/cluster"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "run the named-lock server (FIFO queues, READ/WRITE modes, fencing tokens, leases)",
		UsageText: "mplock serve [--listen ADDR] [--ttl D] [--token-file F] [--metrics-listen ADDR] [options]\n   mplock serve --data-dir DIR [options]                               (a one-node cluster, kept on disk)\n   mplock serve --node ID --raft-listen ADDR --data-dir DIR --initial-cluster ID=ADDR,... [options]\n   mplock serve --node ID --raft-listen ADDR --data-dir DIR --join CLIENTADDR[,...] [options]",
		Description: `Serves named locks over a line protocol on TCP (docs/protocol.md), usable
from mplock client/run/status, the Go package mplock/lockd, or nc:

  printf 'LOCK file_A\nSTATUS\n' | nc -N 127.0.0.1 5555

A client's locks belong to its connection: when it disconnects or dies, its
locks are released and its waits cancelled. Waiters queue in FIFO order and
are granted on release, never by polling. With --ttl (or ttl= per lock) a
holder must renew its lease or lose the lock, and is told when it does.

Binds to loopback unless --listen says otherwise. Without --token-file, any
local process may lock; with it, clients must present the file's secret
(a file of this user's, not a link, writable by no one else). Connections
that have not presented it are few (64, the oldest closed first) and
short-lived (5s), and a wrong secret is answered after a second.
--listen 127.0.0.1:0 picks a free port; the first line on stdout says which
("Lock Server started on tcp://ADDR"), and --addr-file writes it to a file
(replaced atomically; removed at exit only if it is still this server's).

Fencing tokens rise across restarts: without --data-dir they start from the
start time in microseconds; with it, they come from the replicated log.

Cluster mode (docs/replication.md). With --data-dir the lock table is a
raft log (hashicorp/raft, bolt) in DIR, private to this user (0700):
alone, a one-node cluster that keeps its locks, sessions and tokens across
restarts; with --initial-cluster (every member given the same list of raft
addresses), a member of a new cluster; with --join, a new member of a
running one, admitted through a member's client port. A session then
belongs to the cluster, not to its connection: a client whose member dies
resumes it at another (RESUME) within --session-ttl, keeping its locks and
its place in line, and a client that dies loses its locks when its session
expires. Writes at a follower are forwarded to the leader; reads (CHECK,
STATUS) state their consistency. Raft's port (--raft-listen, loopback by
default) is guarded by --token-file too. With the default timeouts a dead
leader is replaced in about 0.4 to 1.2s; a member that can reach no
majority grants nothing. /healthz and /readyz are served beside
--metrics-listen's /metrics.

A client that does not read what it is sent delays no one else: its output
is bounded (it is not read from past 64 KiB pending, and closed at 8 MiB or
when its output waits --write-timeout). If the server itself is stopped or
paused for over a second, it extends every lease by its TTL on resuming
rather than expiring leases whose holders could not reach it.

SIGINT or SIGTERM shut down gracefully: holders are told their locks are
lost, waiters that their waits are cancelled, then every session is closed
(in cluster mode the locks stay with the cluster: the clients are told BYE
and resume elsewhere). Clients get 2s to read their last lines and hang
up; the connections of those that do not are then closed, and their
number logged.

Examples:
  mplock serve
  mplock serve --listen 127.0.0.1:0 --addr-file /tmp/lockd.addr
  mplock serve --ttl 30s --token-file ~/.config/mplock/secret --metrics-listen 127.0.0.1:9555
  mplock serve --data-dir ~/.local/state/mplock     # locks, sessions and tokens kept across restarts
  mplock serve --node n1 --listen 127.0.0.1:5555 --raft-listen 127.0.0.1:7555 --data-dir ./n1 --initial-cluster n1=127.0.0.1:7555,n2=127.0.0.1:7556,n3=127.0.0.1:7557 --token-file ~/.config/mplock/secret --peer-token-file ~/.config/mplock/peer-secret
  mplock serve --node n4 --listen 127.0.0.1:5558 --raft-listen 127.0.0.1:7558 --data-dir ./n4 --join 127.0.0.1:5555 --token-file ~/.config/mplock/secret --peer-token-file ~/.config/mplock/peer-secret

Exit status: 0 after a graceful shutdown (a cluster member hands its
leadership over first; the cluster keeps every lock); 1 if it cannot
listen (port in use), or its --data-dir is not private; 2 usage.`,
		Flags: append([]cli.Flag{
			&cli.GenericFlag{Name: "listen", Aliases: []string{"l"}, Value: listenAddr(defaultServer), Usage: "`ADDR` to listen on; port 0 picks a free one"},
			&cli.StringFlag{Name: "addr-file", Usage: "write the address actually listened on to `FILE` (removed at exit)"},
			&cli.GenericFlag{Name: "ttl", Value: seconds(0), Usage: "default lease for locks that ask for none, 1ms to 24h (0: held as long as the session)"},
			&cli.StringFlag{Name: "token-file", Usage: "`FILE` whose first line is a secret clients must present (AUTH)"},
			&cli.GenericFlag{Name: "metrics-listen", Value: listenAddr(""), Usage: "serve Prometheus metrics on http://`ADDR`/metrics"},
			&cli.GenericFlag{Name: "idle-timeout", Value: seconds(lockd.DefaultIdleTimeout), Usage: "close sessions silent this long (their locks are released); 0: never"},
			&cli.GenericFlag{Name: "max-locks", Value: number(lockd.DefaultMaxLocksPerSession, lockd.DefaultMaxLocksPerSession), Usage: "most locks held plus waited for by one session"},
			&cli.GenericFlag{Name: "max-sessions", Value: number(lockd.DefaultMaxSessions, lockd.DefaultMaxSessions), Usage: "most concurrent sessions"},
			&cli.GenericFlag{Name: "write-timeout", Value: positiveSeconds(lockd.DefaultWriteTimeout), Usage: "close a session whose output waits this long for the client to read it"},
			&cli.StringFlag{Name: "data-dir", Usage: "private `DIR` (created mode 0700) for the raft log: alone, a one-node cluster that keeps its locks, sessions and tokens across restarts"},
			&cli.BoolFlag{Name: "debug", Usage: "answer DEBUG requests (a garbage collection, at most one a second, then heap and table sizes): for tests and soak runs"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json (slog, on stderr)"},
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile to `FILE` until shutdown (for tuning)"},
		}, clusterFlags()...),
		Action: serveAction,
	}
}

func serveAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf("serve: unexpected argument %q", c.Args().First())
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	cfg := lockd.Config{
		DefaultTTL:         c.Duration("ttl"),
		IdleTimeout:        c.Duration("idle-timeout"),
		MaxLocksPerSession: c.Int("max-locks"),
		MaxSessions:        c.Int("max-sessions"),
		WriteTimeout:       c.Duration("write-timeout"),
		Debug:              c.Bool("debug"),
		Version:            version(),
		Logger:             log,
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = -1
	}
	if err := checkTTL("serve", cfg.DefaultTTL); err != nil {
		return err
	}
	if f := c.String("token-file"); f != "" {
		if cfg.Secret, err = serveSecret("--token-file", f); err != nil {
			return err
		}
		if len(cfg.Secret) < lockd.StrongSecret { // the server then bounds AUTH attempts globally
			log.Warn("the secret in --token-file is short: guesses may find it, so AUTH attempts are limited to 20 a second for all connections together, and a flood of guesses can keep clients out; use 16 or more random bytes, e.g. "+secretRecipe("FILE"),
				"file", f, "bytes", len(cfg.Secret))
		}
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("token file is readable by other users; chmod 600 it", "file", f, "mode", fi.Mode().Perm().String())
		}
	}
	var reg *prometheus.Registry
	if c.String("metrics-listen") != "" {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer = reg
	}

	if f := c.String("peer-token-file"); f != "" {
		if !clusterMode(c) {
			return usageErrorf("serve: --peer-token-file is a cluster member's: give it with --data-dir, --initial-cluster or --join")
		}
		if cfg.Secret == "" {
			return usageErrorf("serve: --peer-token-file needs --token-file as well: the members' secret guards the raft port and membership, the clients' the client port")
		}
		if cfg.PeerSecret, err = serveSecret("--peer-token-file", f); err != nil {
			return err
		}
		if cfg.PeerSecret == cfg.Secret {
			return usageErrorf("serve: --peer-token-file holds the same secret as --token-file: the members' secret must be one no client has")
		}
	}

	listen := c.String("listen")
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return listenError("serve", listen, err)
	}
	addr := ln.Addr().String()
	var be *cluster.Backend
	if clusterMode(c) {
		ccfg, err := clusterConfig(c, addr, cfg.Secret, cfg.PeerSecret, log)
		if err != nil {
			ln.Close()
			return err
		}
		if be, err = cluster.New(ccfg); err != nil {
			ln.Close()
			var le *net.OpError
			if errors.As(err, &le) && le.Op == "listen" {
				return listenError("serve: --raft-listen", ccfg.Replica.RaftListen, err)
			}
			return fmt.Errorf("serve: %w", err)
		}
		cfg.Replicated = be
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := be.Close(ctx); err != nil {
				log.Warn("cluster member shutdown", "err", err)
			}
		}()
		if reg != nil {
			if err := be.Register(reg); err != nil {
				ln.Close()
				return fmt.Errorf("serve: %w", err)
			}
		}
		log.Info("cluster member", "node", ccfg.Replica.NodeID, "raft", be.Node().RaftAddr(), "data_dir", ccfg.Replica.DataDir,
			"session_ttl", c.Duration("session-ttl"), "election_timeout", c.Duration("election-timeout"))
		if cfg.Secret == "" {
			log.Warn("no --token-file: the raft port is guarded by a secret of this member's own (in --data-dir), but MEMBER ADD and REMOVE are refused: a cluster of more than one member needs --token-file",
				"file", filepath.Join(ccfg.Replica.DataDir, raftSecretFile))
		}
		if cfg.Secret != "" && cfg.PeerSecret == "" {
			log.Warn("no --peer-token-file: the raft port and membership changes take the clients' secret, so any client that has --token-file could act as a member (release others' locks, change the membership); give the members a secret of their own")
		}
		if j := c.String("join"); j != "" {
			joinSecret := cfg.Secret
			if cfg.PeerSecret != "" {
				joinSecret = cfg.PeerSecret
			}
			go joinCluster(c.Context, splitList(j), ccfg.Replica.NodeID, be.Node().RaftAddr(), joinSecret, log)
		}
	}
	srv, err := lockd.NewServer(cfg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("serve: %w", err)
	}

	var metrics *http.Server
	if reg != nil {
		mln, err := net.Listen("tcp", c.String("metrics-listen"))
		if err != nil {
			ln.Close()
			srv.Shutdown(context.Background())
			return listenError("serve: --metrics-listen", c.String("metrics-listen"), err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		if be != nil {
			be.Health(mux)
		}
		metrics = serveMetrics(mln, mux)
		log.Info("metrics", "url", "http://"+mln.Addr().String()+"/metrics")
	}

	fmt.Fprintf(c.App.Writer, "Lock Server started on tcp://%s\n", addr)
	if f := c.String("addr-file"); f != "" {
		written, err := writeAddrFile(f, addr)
		if err != nil {
			ln.Close()
			srv.Shutdown(context.Background())
			return fmt.Errorf("serve: --addr-file: %w", err)
		}
		defer func() {
			if !safefile.RemoveIfSame(f, written) {
				log.Info("address file left alone: another server has written it since", "file", f)
			}
		}()
	}
	switch {
	case cfg.Secret != "":
		log.Info("clients must present the secret from --token-file")
	case isLoopback(addr):
		log.Warn("no --token-file: any local process may lock")
	default:
		log.Warn("no --token-file and not on loopback: any host that can reach this address may lock", "addr", addr)
	}
	kind, above := srv.Tokens()
	log.Info("serving", "addr", addr, "ttl", cfg.DefaultTTL, "idle_timeout", c.Duration("idle-timeout"),
		"max_locks", cfg.MaxLocksPerSession, "pid", os.Getpid(), "tokens", kind, "tokens_above", uint64(above))

	if f := c.String("cpuprofile"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			return fmt.Errorf("serve: --cpuprofile: %w", err)
		}
		pprof.StartCPUProfile(pf)
		defer func() { pprof.StopCPUProfile(); pf.Close() }()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var failed error
	select {
	case err := <-served:
		srv.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-srv.Failed():
		failed = srv.Err()
		log.Error("cannot go on safely: shutting down", "err", failed)
	case <-c.Context.Done():
		log.Info("signal received: shutting down; telling holders and waiters")
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(ctx)
	<-served
	if metrics != nil {
		metrics.Shutdown(ctx)
	}
	st := srv.Stats()
	log.Info("stopped", "grants_read", st.Grants[lockd.Shared], "grants_write", st.Grants[lockd.Exclusive],
		"leases_expired", st.Expired)
	if failed != nil {
		return fmt.Errorf("serve: %w", failed)
	}
	if err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

// serveSecret reads the secret in the file of serve's flag (readSecretFile);
// for a file that does not exist yet, the error says how to make one.
func serveSecret(flag, path string) (string, error) {
	s, err := readSecretFile(flag, path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("serve: %w; make one with: mkdir -p %s && %s", err, filepath.Dir(path), secretRecipe(path))
	}
	if err != nil {
		return "", fmt.Errorf("serve: %w", err)
	}
	return s, nil
}

// shutdownTimeout bounds a graceful shutdown: the server closes the
// connections of clients that have not read their last lines and hung up
// after 2s (lockd's grace), well within it; past it the exit status is 1.
const shutdownTimeout = 5 * time.Second

// writeAddrFile writes addr to path for clients to find (--server @FILE):
// replaced atomically, in a directory where no other user can replace it
// after (the clients check that too), readable by others per the umask.
func writeAddrFile(path, addr string) (fs.FileInfo, error) {
	if err := safefile.CheckDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return safefile.WriteAtomic(path, []byte(addr+"\n"), 0o644)
}

// listenError makes a failed listen say what to do.
func listenError(what, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		_, port, _ := net.SplitHostPort(addr)
		return fmt.Errorf("%s: cannot listen on %s: port %s is already in use (another mplock serve? choose another with --listen, or port 0 for any free one)", what, addr, port)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("%s: cannot listen on %s: permission denied (ports below 1024 need privileges)", what, addr)
	}
	return fmt.Errorf("%s: cannot listen on %s: %w", what, addr, err)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, usageErrorf("serve: --log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.String("log-format")) {
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	}
	return nil, usageErrorf("serve: --log-format %q: want text or json", c.String("log-format"))
}
