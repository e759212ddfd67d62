package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// mutexCommand is a placeholder until the mutex capability lands.
func mutexCommand() *cli.Command {
	return &cli.Command{
		Name:   "mutex",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("mutex: not implemented yet") },
	}
}
