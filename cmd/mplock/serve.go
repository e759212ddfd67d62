package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// serveCommand is a placeholder until the serve capability lands.
func serveCommand() *cli.Command {
	return &cli.Command{
		Name:   "serve",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("serve: not implemented yet") },
	}
}
