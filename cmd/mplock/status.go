package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// statusCommand is a placeholder until the status capability lands.
func statusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("status: not implemented yet") },
	}
}
