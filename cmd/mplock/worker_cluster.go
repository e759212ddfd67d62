package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"mplock/worker"
)

// workerClusterCommand runs one client of `mplock cluster`: the seed's
// operations at the cluster's nodes, the fenced read-modify-write of the
// registers. fd 3 is the report pipe (JSON lines), stdin the control
// lines; package worker owns both formats.
func workerClusterCommand() *cli.Command {
	return &cli.Command{
		Name:            "cluster",
		Usage:           "(internal) one client of mplock cluster; fd 3 is the report pipe, stdin the control lines",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			spec, err := worker.ParseClusterSpec(c.Args().Slice())
			if err != nil {
				return usageErrorf("%v", err)
			}
			var secret string
			if spec.TokenFile != "" {
				if secret, err = readSecret(spec.TokenFile); err != nil {
					return fmt.Errorf("worker cluster: %w", err)
				}
			}
			notes := os.NewFile(3, "notes")
			defer notes.Close()
			return worker.RunCluster(c.Context, spec, worker.LockdDialer(secret), os.Stdin, notes)
		},
	}
}
