package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// runCommand is a placeholder until the run capability lands.
func runCommand() *cli.Command {
	return &cli.Command{
		Name:   "run",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("run: not implemented yet") },
	}
}
