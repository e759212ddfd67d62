package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/lockd"
	"mplock/lockd/lockbench"
	"mplock/machine"
	"mplock/reexec"
	"mplock/report"
)

// benchLockdCommand is `mplock bench lockd`.
func benchLockdCommand() *cli.Command {
	return &cli.Command{
		Name:  "lockd",
		Usage: "acquire/release pairs per second through the lock server (1 client, 16 on distinct names, 16 on one), read latency, failover",
		UsageText: "mplock bench lockd [--duration D] [--target mplock|redis|etcd] [--server ADDR[,ADDR...]] [--entry leader|follower|both] [--reads] [--ttl D] [--json]\n" +
			"   mplock bench lockd --failover N [--json]\n" +
			"   mplock bench lockd --soak D [--clients N] [--ttl D] [--json]",
		Description: `Starts a real ` + "`mplock serve`" + ` child on a free loopback port and measures, for
each scenario, how many acquire/release pairs per second its clients
complete: 1 client; 16 clients on distinct names; 16 clients on one shared
name (where the server's FIFO queue hands the lock over without retries).
Each client is its own connection (a session), all in this process.

--server ADDR measures a running server instead. When it is a member of a
cluster (mplock serve --initial-cluster), the scenarios run twice: with
every request entering at the leader, and at a follower, which forwards each
change to the leader and answers once its own table has applied it
(--entry picks one). Each client dials its member first and the others after
it, as MPLOCK_SERVER=a,b,c would. A cluster has a secret: give its
--token-file (or MPLOCK_TOKEN_FILE), as every client must.

--reads also measures reads, one client asking again and again about a name
another client holds: on a single server CHECK and STATUS; on a cluster CHECK
at each consistency (stale, default, consistent) at the leader and at a
follower.

--failover N starts a cluster of three mplock serve children of its own
(default timeouts; data dirs in a private temporary directory, removed at
the end) and kills its leader N times with SIGKILL, restarting it with its
data dir each time and waiting until the cluster is whole again. Around each
kill one client connected to the leader and one connected to a follower lock
and unlock names of their own in a loop; it prints, per kill and as
percentiles, the time from the kill until a survivor names a new leader and
until each client's first LOCK asked for after the kill is granted (the
client of the killed member resumes its session at a survivor first).

--target mplock-raw drives the server with a bare protocol client that reads
each reply in the calling goroutine, as the Redis driver does, so that the
two servers are measured alike; the default goes through the Go client
(lockd.Client), which also runs a reader goroutine for events.

--target redis or etcd runs the same scenarios against a server already
running at --server: Redis with SET NX PX + DEL and immediate retries, etcd
through its lock service (concurrency.Mutex on the server) over its JSON
gateway. scripts/lockd-compare.sh starts both from Debian's packages and
prints the three side by side (--cluster 3: three-member clusters of mplock
and etcd).

--soak D instead runs one scenario for D (--clients on distinct names,
each lock with a lease of --ttl, 10s by default, renewed by the client)
against a fresh server child, and every second reads the server's resident
set (/proc) and its heap after a garbage collection (its DEBUG request):
memory that follows the live locks stays flat however many come and go.

Examples:
  mplock bench lockd
  mplock bench lockd --duration 5s --json
  mplock bench lockd --reads                 # also CHECK and STATUS latency
  mplock bench lockd --server 127.0.0.1:5555,127.0.0.1:5556,127.0.0.1:5557 --reads
  mplock bench lockd --failover 30           # 30 leader kills: how long until clients lock again
  mplock bench lockd --target redis --server 127.0.0.1:6379
  mplock bench lockd --soak 60s              # RSS and heap over a minute, 16 clients with leases

The figures depend on the machine (printed under them); nothing here is a
pass/fail check. Exit status: 0; 1 if a run failed (with --failover: a kill
after which a client did not lock again within 30s); 2 usage.`,
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "duration", Aliases: []string{"d"}, Value: seconds(2 * time.Second), Usage: "measure each scenario this long (after a warm-up of a tenth of it)"},
			&cli.StringFlag{Name: "target", Value: "mplock", Usage: "mplock (through the Go client), mplock-raw (bare protocol, read in the caller like the Redis driver), redis or etcd"},
			&cli.StringFlag{Name: "addr", Aliases: []string{"server"}, Usage: "`ADDR` of a running server to measure instead (for mplock, a cluster's members ADDR,ADDR,...)"},
			&cli.StringFlag{Name: "entry", Value: "both", Usage: "against a cluster: where requests enter, `leader`, follower or both (one after the other)"},
			&cli.BoolFlag{Name: "reads", Usage: "also measure CHECK (and on a single server STATUS) latency"},
			&cli.GenericFlag{Name: "clients", Value: number(16, 16), Usage: "clients in the two many-client scenarios (and in --soak)"},
			&cli.GenericFlag{Name: "ttl", Value: seconds(0), Usage: "take every mplock lock with a lease of this length (renewed while held); 0: none (10s with --soak)"},
			&cli.GenericFlag{Name: "failover", Value: number(0, 30), Usage: "kill the leader of a 3-member cluster of its own `N` times instead (see above)"},
			&cli.StringSliceFlag{Name: "serve-arg", Usage: "with --failover, give every member this `FLAG` too (repeatable): --serve-arg=--heartbeat-timeout=1s"},
			&cli.GenericFlag{Name: "soak", Value: seconds(0), Usage: "watch the server's memory for this long instead (see above)"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
			&cli.StringFlag{Name: "token-file", EnvVars: []string{"MPLOCK_TOKEN_FILE"}, Usage: "`FILE` holding the --server's secret, if it has one (a cluster's always does)"},
		},
		Action: benchLockdAction,
	}
}

func benchLockdAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf("bench lockd: unexpected argument %q", c.Args().First())
	}
	d := c.Duration("duration")
	if d <= 0 || c.Int("clients") < 1 {
		return usageErrorf("bench lockd: --duration and --clients must be positive")
	}
	if c.IsSet("failover") {
		return benchFailover(c)
	}
	if c.IsSet("serve-arg") {
		return usageErrorf("bench lockd: --serve-arg goes with --failover")
	}
	if c.IsSet("soak") {
		return soakLockd(c)
	}
	if err := checkTTL("bench lockd", c.Duration("ttl")); err != nil {
		return err
	}
	entries := map[string][]string{"both": {"leader", "follower"}, "leader": {"leader"}, "follower": {"follower"}}[c.String("entry")]
	if entries == nil {
		return usageErrorf("bench lockd: --entry %q: want leader, follower or both", c.String("entry"))
	}
	target, addr := c.String("target"), c.String("addr")
	ttl := c.Duration("ttl")
	var secret string
	if f := c.String("token-file"); f != "" && (target == "mplock" || target == "mplock-raw") {
		var err error
		if secret, err = readSecret(f); err != nil {
			return fmt.Errorf("bench lockd: %w", err)
		}
	}
	n := c.Int("clients")
	scenarios := []lockbench.Scenario{{Clients: 1}, {Clients: n}, {Clients: n, Shared: true}}
	b := report.LockdBench{Target: target, Machine: machine.Collect(version())}
	prefix := fmt.Sprintf("mplock-bench-%d", time.Now().UnixNano())
	// runs are the measurements to make, in order: a scenario at an
	// entry (a cluster's leader or follower; none for a single server).
	type run struct {
		sc    lockbench.Scenario
		entry lockbench.Entry
		dial  lockbench.Dialer
	}
	var runs []run
	var topo lockbench.Topology
	var points []lockbench.Entry // where a cluster's requests enter, in --entry's order
	switch target {
	case "mplock", "mplock-raw":
		if addr == "" {
			a, _, stop, err := startServeChild()
			if err != nil {
				return fmt.Errorf("bench lockd: %w", err)
			}
			defer stop()
			addr, b.Where = a, "a fresh mplock serve child on "+a
		} else {
			b.Where = "mplock serve at " + addr
		}
		var err error
		if topo, err = lockbench.Discover(c.Context, addr, secret); err != nil {
			return fmt.Errorf("bench lockd: %s: %w", addr, err)
		}
		if !topo.Cluster && c.IsSet("entry") {
			return usageErrorf("bench lockd: --entry: %s is a single server, not a cluster member", addr)
		}
		if topo.Cluster {
			if len(topo.Followers) == 0 && slices.Contains(entries, "follower") {
				return fmt.Errorf("bench lockd: %s: the cluster has no live follower with a client address", addr)
			}
			b.Where = fmt.Sprintf("a cluster of mplock serve (%s; leader %s)", strings.Join(topo.Addrs, ","), topo.Leader.Node)
			for _, role := range entries {
				if role == "leader" {
					points = append(points, topo.Leader)
				} else {
					points = append(points, topo.Followers[0])
				}
			}
		}
		for _, sc := range scenarios {
			if !topo.Cluster {
				dial := lockbench.MplockTTL(addr, ttl, secret)
				if target == "mplock-raw" {
					first, _, _ := strings.Cut(addr, ",")
					dial = lockbench.MplockRaw(first, secret)
				}
				runs = append(runs, run{sc: sc, dial: dial})
				continue
			}
			for _, e := range points {
				dial := lockbench.MplockAt(topo.Via(e), e.Node, ttl, secret)
				if target == "mplock-raw" {
					dial = lockbench.MplockRaw(e.Addr, secret)
				}
				runs = append(runs, run{sc: sc, entry: e, dial: dial})
			}
		}
		if target == "mplock-raw" {
			b.Where += ", raw protocol (no Go client)"
		}
	case "redis", "etcd":
		if c.IsSet("reads") || c.IsSet("entry") {
			return usageErrorf("bench lockd: --reads and --entry measure mplock only")
		}
		var dial lockbench.Dialer
		if target == "redis" {
			if addr == "" {
				addr = "127.0.0.1:6379"
			}
			dial, b.Where = lockbench.Redis(addr, 10*time.Second), "redis at "+addr+" (SET NX PX + DEL, immediate retries)"
		} else {
			if addr == "" {
				addr = "127.0.0.1:2379"
			}
			dial, b.Where = lockbench.Etcd(addr, 60*time.Second), "etcd at "+addr+" (lock service over the JSON gateway)"
		}
		for _, sc := range scenarios {
			runs = append(runs, run{sc: sc, dial: dial})
		}
	default:
		return usageErrorf("bench lockd: --target %q: want mplock, mplock-raw, redis or etcd", target)
	}
	say := benchProgress(c)
	for _, r := range runs {
		at := ""
		if r.entry.Node != "" {
			at = fmt.Sprintf(" at the %s (%s)", r.entry.Role, r.entry.Node)
		}
		say("measuring %s: %s%s for %v...", target, r.sc, at, d)
		res, err := lockbench.Run(c.Context, target, r.dial, r.sc, d, prefix)
		if c.Context.Err() != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("bench lockd: %s%s: %w", r.sc, at, err)
		}
		res.Entry, res.Node = r.entry.Role, r.entry.Node
		b.Results = append(b.Results, res)
	}
	if c.Bool("reads") && c.Context.Err() == nil {
		if err := benchReads(c, &b, topo, points, addr, secret, d, prefix+"-read"); err != nil {
			return err
		}
	}
	if topo.Cluster && c.Context.Err() == nil {
		// A leader that moved during the runs makes the leader/follower
		// split of the figures wrong: say so.
		if now, err := lockbench.Discover(c.Context, strings.Join(topo.Addrs, ","), secret); err == nil && now.Leader.Node != topo.Leader.Node {
			b.Warning = fmt.Sprintf("the leader moved from %s to %s during the runs: the entry of some figures is not what they say", topo.Leader.Node, now.Leader.Node)
		}
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, b); err != nil {
			return err
		}
	} else if err := report.WriteLockdBench(c.App.Writer, b); err != nil {
		return err
	}
	if c.Context.Err() != nil {
		return withCode(exitInterrupted, nil)
	}
	return nil
}

// benchReads measures the reads of --reads: CHECK and STATUS on a single
// server at addr; on a cluster (topo), CHECK at each consistency at each
// of points (where requests enter).
func benchReads(c *cli.Context, b *report.LockdBench, topo lockbench.Topology, points []lockbench.Entry, addr, secret string, d time.Duration, name string) error {
	type read struct {
		r     lockbench.Read
		entry lockbench.Entry
	}
	var reads []read
	if !topo.Cluster {
		reads = []read{{r: lockbench.Read{Verb: lockd.VerbCheck}}, {r: lockbench.Read{Verb: lockd.VerbStatus}}}
	}
	for _, e := range points {
		for _, cons := range []lockd.Consistency{lockd.ConsistencyStale, lockd.ConsistencyDefault, lockd.ConsistencyConsistent} {
			reads = append(reads, read{r: lockbench.Read{Verb: lockd.VerbCheck, Consistency: cons}, entry: e})
		}
	}
	say := benchProgress(c)
	for _, r := range reads {
		via, at := addr, ""
		if topo.Cluster {
			via, at = topo.Via(r.entry), fmt.Sprintf(" at the %s (%s)", r.entry.Role, r.entry.Node)
		}
		say("measuring %s%s for %v...", r.r, at, d)
		res, err := lockbench.RunRead(c.Context, "mplock", via, r.entry.Node, r.r, d, name, secret)
		if c.Context.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("bench lockd: %s%s: %w", r.r, at, err)
		}
		res.Entry = r.entry.Role
		b.Reads = append(b.Reads, res)
	}
	return nil
}

// benchProgress is how the lockd benchmarks say what they are doing: a
// line on stderr, unless --json asks for the document alone.
func benchProgress(c *cli.Context) func(format string, a ...any) {
	quiet := c.Bool("json")
	return func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(c.App.ErrWriter, format+"\n", a...)
		}
	}
}

// startServeChild starts `mplock serve` on a free loopback port as a child
// that dies with this process, and returns its address from its first
// line of output, and its pid.
func startServeChild(args ...string) (addr string, pid int, stop func(), err error) {
	cmd := reexec.Command(reexec.Options{}, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "error"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("start mplock serve: %w", err)
	}
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		io.Copy(io.Discard, out)
		cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	a, ok := strings.CutPrefix(strings.TrimSpace(line), "Lock Server started on tcp://")
	if err != nil || !ok {
		stop()
		return "", 0, nil, fmt.Errorf("mplock serve did not start: %q %v %s", line, err, stderr.String())
	}
	return a, cmd.Process.Pid, stop, nil
}

// soakLockd is `mplock bench lockd --soak D`: --clients clients with
// leases on distinct names against a fresh server, whose memory is read
// every second.
func soakLockd(c *cli.Context) error {
	d, n := c.Duration("soak"), c.Int("clients")
	ttl := c.Duration("ttl")
	if !c.IsSet("ttl") {
		ttl = 10 * time.Second
	}
	if d <= 0 {
		return usageErrorf("bench lockd: --soak %v: want a positive duration", d)
	}
	if err := checkTTL("bench lockd", ttl); err != nil {
		return err
	}
	if c.IsSet("addr") || c.IsSet("target") {
		return usageErrorf("bench lockd: --soak measures a server child of its own: no --addr or --target")
	}
	addr, pid, stop, err := startServeChild("--debug")
	if err != nil {
		return fmt.Errorf("bench lockd: %w", err)
	}
	defer stop()
	probe, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench lockd: %w", err)
	}
	defer probe.Close()
	br := bufio.NewReader(probe)
	res := report.LockdSoak{Where: "a fresh mplock serve child on " + addr, Clients: n, TTL: ttl.Seconds(), Machine: machine.Collect(version())}
	var last struct {
		at    time.Duration
		pairs int64
	}
	var serr error
	say := benchProgress(c)
	sample := func(elapsed time.Duration, pairs int64) {
		x := report.SoakSample{Elapsed: elapsed, Pairs: pairs, RSS: processRSS(pid)}
		if dt := (elapsed - last.at).Seconds(); dt > 0 {
			x.PairsPerSec = float64(pairs-last.pairs) / dt
		}
		last.at, last.pairs = elapsed, pairs
		m, err := debugLockd(probe, br)
		if err != nil {
			serr = err
			return
		}
		x.HeapLive, x.HeapTotal, x.Goroutines = m["heap-live"], m["heap-total"], m["goroutines"]
		x.Sessions, x.Locks, x.Deadlines = m["sessions"], m["locks"], m["deadlines"]
		res.Samples = append(res.Samples, x)
		say("%v: %.0f pairs/s, RSS %.1f MiB, heap in use %.1f MiB", elapsed.Round(time.Second),
			x.PairsPerSec, float64(x.RSS)/(1<<20), float64(x.HeapLive)/(1<<20))
	}
	sample(0, 0)
	sc := lockbench.Scenario{Clients: n}
	err = lockbench.Soak(c.Context, "mplock", lockbench.MplockTTL(addr, ttl, ""), sc, d, time.Second,
		fmt.Sprintf("mplock-soak-%d", time.Now().UnixNano()), sample)
	if err == nil {
		err = serr
	}
	if c.Context.Err() == nil && err != nil {
		return fmt.Errorf("bench lockd: --soak: %w", err)
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, res); err != nil {
			return err
		}
	} else if err := report.WriteLockdSoak(c.App.Writer, res); err != nil {
		return err
	}
	if c.Context.Err() != nil {
		return withCode(exitInterrupted, nil)
	}
	return nil
}

// debugLockd asks a server started with --debug for DEBUG and returns its
// numbers.
func debugLockd(c net.Conn, br *bufio.Reader) (map[string]uint64, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "DEBUG\n"); err != nil {
		return nil, err
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "OK DEBUG ")
	if !ok {
		return nil, fmt.Errorf("DEBUG: %q", line)
	}
	m := map[string]uint64{}
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		m[k], _ = strconv.ParseUint(v, 10, 64)
	}
	return m, nil
}

// processRSS reads a process's resident set from /proc/PID/status (VmRSS,
// in kB); 0 where there is none.
func processRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
