package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchCommand is a placeholder until the bench capability lands.
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:        "bench",
		Usage:       "(not yet available)",
		Hidden:      true,
		Subcommands: []*cli.Command{benchLockdCommand()},
		Action:      func(*cli.Context) error { return errors.New("bench: not implemented yet") },
	}
}
