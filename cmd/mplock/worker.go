package main

import "github.com/urfave/cli/v2"

// workerCommand is the hidden entry point of every child process mplock
// starts: `mplock worker <role> ...`. Users never run it; the coordinators do,
// through package reexec.
func workerCommand() *cli.Command {
	return &cli.Command{
		Name:   "worker",
		Usage:  "(internal) run one worker process of a coordinated run",
		Hidden: true,
		Subcommands: []*cli.Command{
			workerBankCommand(),
			workerJanitorCommand(),
			workerMutexCommand(),
			workerHolderCommand(),
			workerClusterCommand(),
			workerExecCommand(),
		},
	}
}
