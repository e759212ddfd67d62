package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// deadlockCommand is a placeholder until the deadlock capability lands.
func deadlockCommand() *cli.Command {
	return &cli.Command{
		Name:   "deadlock",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("deadlock: not implemented yet") },
	}
}
