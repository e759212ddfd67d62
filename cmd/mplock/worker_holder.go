package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// workerHolderCommand is a placeholder until its capability lands.
func workerHolderCommand() *cli.Command {
	return &cli.Command{
		Name:   "holder",
		Usage:  "(internal) not implemented yet",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("worker holder: not implemented yet") },
	}
}
