package main

import (
	"github.com/urfave/cli/v2"

	"mplock/janitor"
	"mplock/worker"
)

// workerBankCommand runs one bank worker. The coordinator passes the shared
// region as fd 3 and the report pipe as fd 4; package worker owns the
// argument format on both sides.
func workerBankCommand() *cli.Command {
	return &cli.Command{
		Name:            "bank",
		Usage:           "(internal) one bank worker; fd 3 is the region, fd 4 the report pipe",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return worker.BankMain(c.Context, c.Args().Slice())
		},
	}
}

// workerJanitorCommand runs the janitor sidecar: it reads the manifest on
// stdin and cleans up if the coordinator dies (see package janitor).
func workerJanitorCommand() *cli.Command {
	return &cli.Command{
		Name:   "janitor",
		Usage:  "(internal) remove a run's resources if its coordinator dies",
		Hidden: true,
		Action: func(*cli.Context) error { return janitor.Main() },
	}
}
