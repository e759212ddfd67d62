package main

import (
	"github.com/urfave/cli/v2"

	"mplock/worker"
)

// workerHolderCommand runs one holder of `mplock deadlock`: it takes its
// locks in order through real lock servers. The coordinator passes the
// report pipe as fd 3 and control lines on stdin; package worker owns the
// argument format on both sides.
func workerHolderCommand() *cli.Command {
	return &cli.Command{
		Name:            "holder",
		Usage:           "(internal) one deadlock holder; fd 3 is the report pipe, stdin the control lines",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			return worker.HolderMain(c.Context, c.Args().Slice())
		},
	}
}
