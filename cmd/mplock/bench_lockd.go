package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/lockd/lockbench"
	"mplock/machine"
	"mplock/reexec"
	"mplock/report"
)

// benchLockdCommand is `mplock bench lockd`.
func benchLockdCommand() *cli.Command {
	return &cli.Command{
		Name:      "lockd",
		Usage:     "acquire/release pairs per second through the lock server (1 client, 16 on distinct names, 16 on one)",
		UsageText: "mplock bench lockd [--duration D] [--target mplock|redis|etcd] [--addr ADDR] [--json]",
		Description: `Starts a real ` + "`mplock serve`" + ` child on a free loopback port and measures, for
each scenario, how many acquire/release pairs per second its clients
complete: 1 client; 16 clients on distinct names; 16 clients on one shared
name (where the server's FIFO queue hands the lock over without retries).
Each client is its own connection (a session), all in this process.

--target mplock-raw drives the server with a bare protocol client that reads
each reply in the calling goroutine, as the Redis driver does, so that the
two servers are measured alike; the default goes through the Go client
(lockd.Client), which also runs a reader goroutine for events.

--target redis or etcd runs the same scenarios against a server already
running at --addr: Redis with SET NX PX + DEL and immediate retries, etcd
through its lock service (concurrency.Mutex on the server) over its JSON
gateway. scripts/lockd-compare.sh starts both from Debian's packages and
prints the three side by side.

Examples:
  mplock bench lockd
  mplock bench lockd --duration 5s --json
  mplock bench lockd --target redis --addr 127.0.0.1:6379

The figures depend on the machine (printed under them); nothing here is a
pass/fail check. Exit status: 0; 1 if a run failed; 2 usage.`,
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "duration", Aliases: []string{"d"}, Value: seconds(2 * time.Second), Usage: "measure each scenario this long (after a warm-up of a tenth of it)"},
			&cli.StringFlag{Name: "target", Value: "mplock", Usage: "mplock (through the Go client), mplock-raw (bare protocol, read in the caller like the Redis driver), redis or etcd"},
			&cli.StringFlag{Name: "addr", Usage: "`ADDR` of a running server to measure instead"},
			&cli.GenericFlag{Name: "clients", Value: number(16, 16), Usage: "clients in the two many-client scenarios"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
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
	target, addr := c.String("target"), c.String("addr")
	var dial lockbench.Dialer
	var where string
	switch target {
	case "mplock", "mplock-raw":
		if addr == "" {
			a, stop, err := startServeChild()
			if err != nil {
				return fmt.Errorf("bench lockd: %w", err)
			}
			defer stop()
			addr, where = a, "a fresh mplock serve child on "+a
		} else {
			where = "mplock serve at " + addr
		}
		dial = lockbench.Mplock(addr)
		if target == "mplock-raw" {
			dial, where = lockbench.MplockRaw(addr), where+", raw protocol (no Go client)"
		}
	case "redis":
		if addr == "" {
			addr = "127.0.0.1:6379"
		}
		dial, where = lockbench.Redis(addr, 10*time.Second), "redis at "+addr+" (SET NX PX + DEL, immediate retries)"
	case "etcd":
		if addr == "" {
			addr = "127.0.0.1:2379"
		}
		dial, where = lockbench.Etcd(addr, 60*time.Second), "etcd at "+addr+" (lock service over the JSON gateway)"
	default:
		return usageErrorf("bench lockd: --target %q: want mplock, mplock-raw, redis or etcd", target)
	}
	n := c.Int("clients")
	scenarios := []lockbench.Scenario{{Clients: 1}, {Clients: n}, {Clients: n, Shared: true}}
	b := report.LockdBench{Target: target, Where: where, Machine: machine.Collect(version())}
	prefix := fmt.Sprintf("mplock-bench-%d", time.Now().UnixNano())
	for _, sc := range scenarios {
		if !c.Bool("json") {
			fmt.Fprintf(c.App.ErrWriter, "measuring %s: %s for %v...\n", target, sc, d)
		}
		res, err := lockbench.Run(c.Context, target, dial, sc, d, prefix)
		if c.Context.Err() != nil {
			break
		}
		if err != nil {
			return fmt.Errorf("bench lockd: %s: %w", sc, err)
		}
		b.Results = append(b.Results, res)
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

// startServeChild starts `mplock serve` on a free loopback port as a child
// that dies with this process, and returns its address from its first
// line of output.
func startServeChild() (addr string, stop func(), err error) {
	cmd := reexec.Command(reexec.Options{}, "serve", "--listen", "127.0.0.1:0", "--log-level", "error")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start mplock serve: %w", err)
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
		return "", nil, fmt.Errorf("mplock serve did not start: %q %v %s", line, err, stderr.String())
	}
	return a, stop, nil
}
