package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// clientCommand is a placeholder until the client capability lands.
func clientCommand() *cli.Command {
	return &cli.Command{
		Name:   "client",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("client: not implemented yet") },
	}
}
