package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// workerMutexCommand is a placeholder until its capability lands.
func workerMutexCommand() *cli.Command {
	return &cli.Command{
		Name:   "mutex",
		Usage:  "(internal) not implemented yet",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("worker mutex: not implemented yet") },
	}
}
