package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"mplock/internal/proctest"
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
		Condition:           scriptCondition,
		Setup: func(env *testscript.Env) error {
			// Private temporary directory per script, so leak checks see
			// only what that script's runs left behind.
			env.Setenv("TMPDIR", env.WorkDir)
			return nil
		},
	})
}

// scriptTools are the programs scripts may ask for with [tool:NAME], and
// the Debian package of each.
var scriptTools = map[string]string{"nc": "netcat-openbsd", "dot": "graphviz"}

// scriptCondition answers a script's conditions: [root] (running as root,
// so a script can give a file away) and [tool:NAME] (toolCondition).
func scriptCondition(cond string) (bool, error) {
	if cond == "root" {
		return os.Geteuid() == 0, nil
	}
	return toolCondition(cond)
}

// toolCondition is the script condition [tool:NAME]: true when NAME is
// installed; false when not, so the lines it guards are skipped; but under
// CI (.ci/run sets MPLOCK_CI), where every tool is installed, a missing one
// fails the script. testscript's own [exec:NAME] would skip silently even
// there, so TestScriptsAskForTools refuses it.
func toolCondition(cond string) (bool, error) {
	name, ok := strings.CutPrefix(cond, "tool:")
	if !ok {
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	pkg, known := scriptTools[name]
	if !known {
		return false, fmt.Errorf("[tool:%s]: add %s and its Debian package to scriptTools (main_test.go) and to .ci/run", name, name)
	}
	if _, err := exec.LookPath(name); err == nil {
		return true, nil
	}
	if proctest.InCI() {
		return false, fmt.Errorf("%s is not installed, and %s is set: .ci/run installs every tool the tests use (apt-get install %s)", name, proctest.CIEnv, pkg)
	}
	return false, nil
}

// TestToolCondition: [tool:X] is false for a missing X, an error under CI.
func TestToolCondition(t *testing.T) {
	scriptTools["mplock-no-such-tool"] = "no-such-package"
	defer delete(scriptTools, "mplock-no-such-tool")
	t.Setenv(proctest.CIEnv, "")
	if ok, err := toolCondition("tool:mplock-no-such-tool"); ok || err != nil {
		t.Errorf("missing tool: %v, %v; want false, no error", ok, err)
	}
	if _, err := toolCondition("tool:sh"); err == nil || !strings.Contains(err.Error(), "add sh and its Debian package to scriptTools") {
		t.Errorf("a tool scriptTools does not list: %v; want an error saying where to add it", err)
	}
	t.Setenv(proctest.CIEnv, "1")
	if _, err := toolCondition("tool:mplock-no-such-tool"); err == nil || !strings.Contains(err.Error(), "apt-get install no-such-package") {
		t.Errorf("missing tool under CI: %v; want an error", err)
	}
}

// TestScriptsAskForTools: a script guards what needs a tool with [tool:X],
// never [exec:X], which skips silently under CI too.
func TestScriptsAskForTools(t *testing.T) {
	paths, err := filepath.Glob("testdata/script/*.txtar")
	if err != nil || len(paths) == 0 {
		t.Fatalf("scripts: %v %v", paths, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "[exec:") || strings.Contains(line, "[!exec:") {
				t.Errorf("%s:%d: %q: use [tool:NAME] (toolCondition), which fails under CI when NAME is missing", p, i+1, line)
			}
		}
	}
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
