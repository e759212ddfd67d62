package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"mplock/lockd"
	"mplock/report"
)

func memberCommand() *cli.Command {
	return &cli.Command{
		Name:      "member",
		Usage:     "list, add or remove the members of an mplock serve cluster",
		UsageText: "mplock member list [--json] [--server ADDR[,ADDR...]]\n   mplock member add <id> <raft-host:port>\n   mplock member remove <id>",
		Description: `Talks to any member of a cluster (--server, MPLOCK_SERVER), which forwards a
change to the leader. Each of these presents a secret (--token-file, or
MPLOCK_TOKEN_FILE): list takes the clients' secret; add and remove take the
members' own (the members' --peer-token-file), or the clients' when the
members have none, and are refused without it.

list shows every member: its role (leader, follower, candidate, or down
when it does not answer), term, commit and applied index, how many entries
it lags behind the leader's commit index, when it last heard from the
leader, and its client and raft addresses.

add makes a node, reachable at its raft address, a voting member; mplock
serve --join sends exactly this for the node it starts, so it is rarely
needed by hand. remove takes a member out (the leader may remove itself: it steps down);
stop its process afterwards. A cluster of N voters survives the loss of
(N-1)/2 of them: remove a dead member before it counts against that.

Examples:
  mplock member list
  mplock member remove n4 --token-file ~/.config/mplock/peer-secret

Exit status: 0; 1 the cluster could not be reached or refused the change;
2 usage.`,
		Subcommands: []*cli.Command{
			{Name: "list", Usage: "list the members and their raft state", Action: memberList,
				Flags: append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON document"}}, serverFlags()...)},
			{Name: "add", Usage: "add a voting member: <id> <raft-host:port>", Action: memberChange, Flags: serverFlags()},
			{Name: "remove", Usage: "remove a member: <id>", Action: memberChange, Flags: serverFlags()},
		},
	}
}

func memberList(c *cli.Context) error {
	pos, err := trailingFlags(c, false)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("member list: unexpected argument %q", pos[0])
	}
	cl, addr, err := dialServer(c, "member list", "member")
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, ok := cl.Cluster(); !ok {
		return fmt.Errorf("member list: the lock server at %s is a single server, not a cluster member", addr)
	}
	m, err := cl.Members(c.Context)
	if err != nil {
		return fmt.Errorf("member list: %w", err)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, m)
	}
	return report.LockdMembers(c.App.Writer, m)
}

func memberChange(c *cli.Context) error {
	cmd := "member " + c.Command.Name
	args, err := trailingFlags(c, false)
	if err != nil {
		return err
	}
	want := 1
	if c.Command.Name == "add" {
		want = 2
	}
	if len(args) != want {
		return usageErrorf("%s: want %s", cmd, map[bool]string{true: "<id> <raft-host:port>", false: "<id>"}[want == 2])
	}
	if err := lockd.ValidName(args[0]); err != nil {
		return usageErrorf("%s: node id: %v", cmd, err)
	}
	cl, _, err := dialServer(c, cmd, "member")
	if err != nil {
		return err
	}
	defer cl.Close()
	if want == 2 {
		err = cl.AddMember(c.Context, args[0], args[1])
	} else {
		err = cl.RemoveMember(c.Context, args[0])
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, args[0], err)
	}
	fmt.Fprintf(c.App.Writer, "%s %s\n", map[bool]string{true: "added", false: "removed"}[want == 2], args[0])
	return nil
}
