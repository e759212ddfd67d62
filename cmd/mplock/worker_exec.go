package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"
)

// workerExecCommand is the trampoline of mplock run: `mplock worker exec
// PATH ARGV0 ARGS...` waits for one byte on fd 3, the gate, then replaces
// itself with the command (execve: same pid, same process group). mplock run
// opens the gate only after its janitor knows the command's process group,
// so there is no moment at which the command runs while a SIGKILL of mplock
// run would leave what it starts behind. If mplock run dies before opening
// the gate, the gate reads end-of-file and the command never runs.
func workerExecCommand() *cli.Command {
	return &cli.Command{
		Name:            "exec",
		Usage:           "(internal) run a command once mplock run opens the gate on fd 3",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 {
				return usageErrorf("worker exec: want PATH ARGV0 [ARGS...]")
			}
			gate := os.NewFile(3, "gate")
			var b [1]byte
			if n, _ := gate.Read(b[:]); n != 1 {
				return withCode(exitFailure, nil) // mplock run is gone: run nothing
			}
			gate.Close() // not inherited by the command
			err := syscall.Exec(args[0], args[1:], os.Environ())
			code := 126
			if errors.Is(err, syscall.ENOENT) {
				code = 127
			}
			return withCode(code, fmt.Errorf("run: %s: %w", args[1], err))
		},
	}
}
