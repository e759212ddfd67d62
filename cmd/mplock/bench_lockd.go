package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// benchLockdCommand is a placeholder until the named-lock service lands; the
// bench command mounts it as `mplock bench lockd`.
func benchLockdCommand() *cli.Command {
	return &cli.Command{
		Name:   "lockd",
		Usage:  "(not yet available)",
		Hidden: true,
		Action: func(*cli.Context) error { return errors.New("bench lockd: not implemented yet") },
	}
}
