package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the mplock command: testscript runs it
// under the name "mplock", and mplock's own worker processes (re-executed
// from /proc/self/exe with argv[0] "mplock") land here too.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mplock":       func() { os.Exit(run(os.Args, os.Stdout, os.Stderr)) },
		"lockd-holder": func() { os.Exit(lockdHolder(os.Args[1:])) },
	})
}

// TestScripts runs the CLI scenarios in testdata/script/*.txtar: each runs
// mplock commands and checks their output and exit status, like the
// README's examples.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"exits": cmdExits},
		// [root]: running as root, so a script can give a file away.
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			// Private temporary directory per script, so leak checks see
			// only what that script's runs left behind.
			env.Setenv("TMPDIR", env.WorkDir)
			return nil
		},
	})
}

// cmdExits is the script command "exits CODE PROG ARGS...": it runs PROG
// like exec and fails unless it exits with exactly CODE. Its stdout and
// stderr are kept for the stdout and stderr commands that follow.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}
