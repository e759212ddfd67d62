package main

import (
	"github.com/urfave/cli/v2"

	"mplock/worker"
)

// workerMutexCommand groups the processes of a mutex run: `mplock worker
// mutex peer` competes for the critical section, `mplock worker mutex
// server` is the central algorithm's lock server. The coordinator passes the
// shared region as fd 3, the report pipe as fd 4, and the spec and the
// others' addresses on stdin.
func workerMutexCommand() *cli.Command {
	return &cli.Command{
		Name:   "mutex",
		Usage:  "(internal) one process of a mutex run",
		Hidden: true,
		Subcommands: []*cli.Command{
			workerMutexRole(worker.MutexPeer, "(internal) a peer competing for the critical section"),
			workerMutexRole(worker.MutexServer, "(internal) the central algorithm's lock server"),
		},
	}
}

func workerMutexRole(role worker.MutexRole, usage string) *cli.Command {
	return &cli.Command{
		Name:   string(role),
		Usage:  usage + "; fd 3 is the region, fd 4 the report pipe, stdin the spec",
		Hidden: true,
		Action: func(c *cli.Context) error { return worker.MutexMain(c.Context, role) },
	}
}
