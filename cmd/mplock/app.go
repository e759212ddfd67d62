package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// newApp builds the mplock command tree. It writes only to stdout and
// stderr, and never exits the process, so tests can run it in-process.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "mplock",
		Usage:   "coordinate real processes with real locks; show, measure and explain what happens",
		Version: version(),
		Description: `mplock starts real worker processes that share memory, files, semaphores and
sockets, and shows what happens with and without locks: lost updates,
deadlocks, unfair handoffs, and what each kind of lock costs on this machine.

Examples:
  mplock bank                        # unlocked vs locked workers on one shared balance
  mplock bank --lock --kind sem,flock --workers 4 --json
  mplock bank --list-kinds           # the lock kinds and what each one is
  mplock help bank                   # what a command does, its options and examples`,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Commands: []*cli.Command{
			bankCommand(),
			benchCommand(),
			deadlockCommand(),
			clusterCommand(),
			mutexCommand(),
			serveCommand(),
			memberCommand(),
			clientCommand(),
			runCommand(),
			statusCommand(),
			workerCommand(),
		},
		// Errors are turned into exit codes by run, never by os.Exit inside
		// the library, so that tests can run the app in-process.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		CommandNotFound: func(c *cli.Context, name string) {
			// Reported through the root action below, which sees the same args.
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf("unknown command %q", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	for _, cmd := range app.Commands {
		setUsageErrors(cmd)
	}
	return app
}

func setUsageErrors(cmd *cli.Command) {
	if cmd.OnUsageError == nil {
		cmd.OnUsageError = onUsageError
	}
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub)
	}
}

// onUsageError reports a flag that could not be parsed, in one form for
// every command and every kind of flag (flagError).
func onUsageError(c *cli.Context, err error, _ bool) error {
	return flagError(commandPath(c), err)
}

// helpArgs turns `mplock help [COMMAND...]` into `mplock [COMMAND...]
// --help`, as git and go read it; urfave/cli's own help command would add
// a help subcommand to every command with subcommands and list it.
func helpArgs(args []string) []string {
	if len(args) < 2 || args[1] != "help" {
		return args
	}
	return append(append([]string{args[0]}, args[2:]...), "--help")
}

// run runs the app with args and returns the process exit code. The first
// SIGINT or SIGTERM cancels the commands' context, so each can stop its
// children and print what finished; a second one kills the process outright.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default action for a second signal
	}()
	return exitCode(newApp(stdout, stderr).RunContext(ctx, helpArgs(args)), stderr)
}
