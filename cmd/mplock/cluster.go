package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"mplock/coordinator"
	"mplock/report"
	"mplock/worker"
)

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:      "cluster",
		Usage:     "a real raft cluster of mplock serve nodes, clients with UUIDs preempting and checking locks, faults on purpose, the history checked",
		UsageText: "mplock cluster [--nodes N] [--clients N] [--duration D] [--faults LIST] [--check] [--fencing=off] [options]",
		Description: `Starts a real cluster of mplock serve nodes (raft: one leader, followers
with replicated maps from lock name to owner), each in a private data dir, on
free loopback ports, every raft link through a TCP proxy of its own. Then
starts client processes, each with a UUID, that do the seed's operations at a
random node: preempt a lock (take it if free, else fail at once), release it
(only the owner can), check its owner (at the node's chosen consistency:
stale answers from the node's own map, default from the leader's, consistent
is linearizable). A client granted a lock updates the lock's protected
register, a shared file that refuses any token below the highest it has seen.

Faults (--faults, one every --fault-every, cycling through the list):
  kill          ` + coordinator.KillLeader.Description() + `
  pause         ` + coordinator.PauseLeader.Description() + `
  partition     ` + coordinator.Partition.Description() + `
  client-pause  ` + coordinator.PauseClient.Description() + `

The narrative says what every client asked, where, and what it got; when a
node is killed, who was elected and how fast; what the registers refused. The
report adds, per node, the terms it led and its downtime; per client, its
operations by outcome; each failover's time to a new leader and to the first
successful operation; stale checks; double grants (must be 0); lost register
updates. --check records every operation and checks the history for
linearizability with porcupine; on a violation it prints the smallest failing
slice of history and writes porcupine's visualization of it (--html).

A check result is information, never proof of ownership: only the fencing
token is. --fencing=off shows why: a client paused past its session's TTL
writes what it read before the pause over the next holder's update.

Examples:
  mplock cluster                                   # 3 nodes, 4 clients, 10 s; the leader is killed at a third of the run
  mplock cluster --nodes 5 --clients 8 --duration 30s --faults kill,pause,partition
  mplock cluster --check                           # record every operation; check the history (porcupine)
  mplock cluster --faults client-pause --fencing=off --session-ttl 2s   # the late write that fencing refuses, accepted
  mplock cluster --json
  mplock cluster --timeline run.svg                # one row per node (role over time) and per client (holds)

Exit status: 0 when everything held, 1 on a violation (a history that is not
linearizable, a double grant, a lost update with fencing on) or when a node
failed to start, 2 for usage errors, 130 when interrupted. Every node, client
and proxy has exited, every port is free and the run directory (data dirs,
registers) is removed whenever mplock cluster returns.`,
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "nodes", Value: number(coordinator.DefaultClusterNodes, 5), Usage: fmt.Sprintf("nodes (mplock serve processes), 1 to %d", coordinator.MaxClusterNodes)},
			&cli.GenericFlag{Name: "clients", Value: number(coordinator.DefaultClusterClients, 8), Usage: fmt.Sprintf("client processes, 1 to %d", coordinator.MaxClusterClients)},
			&cli.GenericFlag{Name: "names", Value: number(coordinator.DefaultClusterNames, 3), Usage: "lock names (file_A, file_B, ...), 1 to 26"},
			&cli.GenericFlag{Name: "duration", Value: positiveSeconds(coordinator.DefaultClusterDuration), Usage: "how long the clients work"},
			&cli.StringFlag{Name: "faults", Value: "kill", Usage: "faults to inject, in turn: kill, pause, partition, client-pause, all or none"},
			&cli.GenericFlag{Name: "fault-every", Value: seconds(0), Usage: "time between faults; the first comes as long after the start (at most a third of the run)",
				DefaultText: fmt.Sprintf("a third of --duration, at most %v", coordinator.DefaultMaxFaultEvery)},
			&cli.StringFlag{Name: "consistency", Value: string(worker.Mixed), Usage: "of the clients' checks: stale or default or consistent; mixed: each check picks one of those"},
			&cli.GenericFlag{Name: "fencing", Value: onOff(true), Usage: "on: the registers refuse tokens below the highest they saw; off: they accept every write"},
			&cli.BoolFlag{Name: "check", Usage: "check the recorded history for linearizability (porcupine)"},
			&cli.GenericFlag{Name: "check-timeout", Value: positiveSeconds(coordinator.DefaultClusterCheckTimeout), Usage: "give the linearizability check up after this long (verdict: unknown)"},
			&cli.StringFlag{Name: "html", Value: "mplock-cluster-violation.html", Usage: "with --check, on a violation: write porcupine's view of the failing slice to `FILE`"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document instead of the narrative and report"},
			&cli.StringFlag{Name: "timeline", Usage: "draw nodes' roles and clients' holds over time to `FILE` (.svg or .png)"},
			&cli.GenericFlag{Name: "election-timeout", Value: positiveSeconds(coordinator.DefaultElectionTimeout), Usage: "raft's election timeout, passed to every node"},
			&cli.GenericFlag{Name: "heartbeat-timeout", Value: positiveSeconds(coordinator.DefaultHeartbeatTimeout), Usage: "raft's heartbeat timeout, passed to every node"},
			&cli.GenericFlag{Name: "session-ttl", Value: positiveSeconds(coordinator.DefaultSessionTTL), Usage: "a session's TTL: a client silent this long loses its locks"},
			&cli.GenericFlag{Name: "think", Value: seconds(coordinator.DefaultClusterThink), Usage: "a client's pause between operations"},
			&cli.GenericFlag{Name: "hold", Value: seconds(coordinator.DefaultClusterHold), Usage: "between a client's read of the register and its write"},
			&cli.GenericFlag{Name: "seed", Hidden: true, Value: number(0, 1), Usage: "seed of the clients' choices"},
			&cli.BoolFlag{Name: "unsafe-local-grants", Hidden: true, Usage: "run the nodes in the deliberately broken mode (a follower grants from its own map), to see --check catch it"},
		},
		Action: clusterAction,
	}
}

func clusterAction(c *cli.Context) error {
	plan, err := clusterPlan(c)
	if err != nil {
		return err
	}
	out := c.App.Writer
	live := !c.Bool("json")
	if live {
		if err := report.ClusterHeader(out, plan); err != nil {
			return err
		}
		plan.OnEvent = func(e coordinator.ClusterEvent) {
			if line := report.ClusterEventLine(e); line != "" {
				fmt.Fprintln(out, line)
			}
		}
	}
	res, err := coordinator.RunCluster(c.Context, plan)
	if err != nil {
		if c.Context.Err() != nil {
			return withCode(exitInterrupted, nil)
		}
		return fmt.Errorf("cluster: %w", err)
	}
	code := exitOK
	switch {
	case res.Interrupted:
		code = exitInterrupted
	case res.Failed():
		code = exitFailure
	}
	d := report.Cluster{Result: res, ExitCode: code}
	if live {
		err = report.ClusterSummary(out, d)
	} else {
		err = report.ClusterJSON(out, d)
	}
	if err != nil {
		return err
	}
	if f := c.String("timeline"); f != "" {
		if err := report.ClusterTimeline(f, res); err != nil {
			return withCode(exitFailure, fmt.Errorf("cluster: --timeline: %w", err))
		}
	}
	if res.Lin != nil && len(res.Lin.HTML) > 0 {
		f := c.String("html")
		if err := os.WriteFile(f, res.Lin.HTML, 0o644); err != nil {
			return withCode(exitFailure, fmt.Errorf("cluster: --html: %w", err))
		}
		fmt.Fprintf(c.App.ErrWriter, "mplock: porcupine's view of the failing slice: %s (open it in a browser)\n", f)
	}
	if code == exitFailure {
		return withCode(code, errors.New("cluster: "+strings.TrimSuffix(report.ClusterVerdict(d)[0], ".")))
	}
	return withCode(code, nil)
}

// clusterPlan turns the flags into a plan, checking everything before
// anything starts.
func clusterPlan(c *cli.Context) (coordinator.ClusterPlan, error) {
	var p coordinator.ClusterPlan
	if c.Args().Present() {
		return p, usageErrorf("cluster: unexpected argument %q", c.Args().First())
	}
	p.Nodes, p.Clients, p.Names = c.Int("nodes"), c.Int("clients"), c.Int("names")
	for _, f := range []struct {
		name    string
		n, most int
	}{{"nodes", p.Nodes, coordinator.MaxClusterNodes}, {"clients", p.Clients, coordinator.MaxClusterClients}, {"names", p.Names, 26}} {
		if f.n < 1 || f.n > f.most {
			return p, usageErrorf("cluster: --%s %d: want 1 to %d", f.name, f.n, f.most)
		}
	}
	p.Duration, p.FaultEvery = c.Duration("duration"), c.Duration("fault-every")
	p.ElectionTimeout, p.HeartbeatTimeout, p.SessionTTL = c.Duration("election-timeout"), c.Duration("heartbeat-timeout"), c.Duration("session-ttl")
	p.Think, p.Hold, p.Seed = c.Duration("think"), c.Duration("hold"), c.Uint64("seed")
	p.Fencing = c.Generic("fencing").(*onOffValue).on
	p.Check, p.CheckTimeout = c.Bool("check"), c.Duration("check-timeout")
	p.UnsafeLocalGrants = c.Bool("unsafe-local-grants")
	var err error
	if p.Faults, err = coordinator.ParseClusterFaults(c.String("faults")); err != nil {
		return p, usageErrorf("cluster: --faults %q: want a list of kill, pause, partition, client-pause; or all, or none", c.String("faults"))
	}
	cons, err := worker.ParseConsistency(c.String("consistency"))
	if err != nil {
		return p, usageErrorf("cluster: --consistency %q: want stale, default, consistent or mixed", c.String("consistency"))
	}
	p.Consistency = cons
	if p.FaultEvery < 0 {
		return p, usageErrorf("cluster: --fault-every %v: must not be negative", p.FaultEvery)
	}
	p.Defaults()
	if err := p.Validate(); err != nil {
		return p, usageErrorf("cluster: %v", strings.TrimPrefix(err.Error(), coordinator.ErrPlan.Error()+": "))
	}
	return p, nil
}

// onOffValue is a boolean flag that reads on/off as well as true/false,
// so that --fencing=off reads as it is meant.
type onOffValue struct{ on bool }

func onOff(on bool) *onOffValue { return &onOffValue{on: on} }

func (v *onOffValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "on", "true", "yes", "1":
		v.on = true
	case "off", "false", "no", "0":
		v.on = false
	default:
		return fmt.Errorf("want on or off")
	}
	return nil
}

func (v *onOffValue) String() string {
	if v.on {
		return "on"
	}
	return "off"
}
