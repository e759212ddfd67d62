package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunFencingRecipes runs the MPLOCK_TOKEN recipes of the README and of
// `mplock run --help` as they are written, against a real server: a
// resource that refuses a token lower than the highest it has accepted.
// What they show is the only protection left when a holder is stopped
// past its lease, so they must work as printed.
func TestRunFencingRecipes(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) (util-linux) is not installed")
	}
	addr := dlServe(t)
	mplock := mplockCommand(t)
	env := append(mplock.Env, "MPLOCK_SERVER="+addr, "PATH="+filepath.Dir(mplock.Path)+":"+os.Getenv("PATH"))
	sh := func(dir, script string, extraEnv ...string) (string, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir, cmd.Env = dir, append(env, extraEnv...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	t.Run("README", func(t *testing.T) {
		readme, err := os.ReadFile("../../README.md")
		if err != nil {
			t.Fatal(err)
		}
		_, after, ok := strings.Cut(string(readme), "<!-- fencing-recipe")
		_, block, ok2 := strings.Cut(after, "```sh\n")
		block, _, ok3 := strings.Cut(block, "```")
		if !ok || !ok2 || !ok3 {
			t.Fatal("no fencing recipe in README.md")
		}
		dir := t.TempDir()
		out, err := sh(dir, block)
		if err == nil {
			t.Fatalf("the recipe's stale write was not refused:\n%s", out)
		}
		if !strings.Contains(out, "fenced-write: refused token") {
			t.Errorf("the refusal does not say why:\n%s", out)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "report.txt")); string(got) != "first\nsecond\n" {
			t.Fatalf("report.txt is %q, want the two holders' writes and not the late one\n%s", got, out)
		}
	})

	t.Run("help", func(t *testing.T) {
		help := mplockCommand(t, "run", "--help")
		text, err := help.Output()
		if err != nil {
			t.Fatal(err)
		}
		// The recipe: from "mplock run report -- sh -c '" to its closing quote.
		_, rest, ok := strings.Cut(string(text), "  mplock run report -- sh -c '")
		inner, _, ok2 := strings.Cut(rest, "'\n")
		if !ok || !ok2 {
			t.Fatalf("no fencing recipe in mplock run --help:\n%s", text)
		}
		recipe := "mplock run report -- sh -c '" + inner + "'"
		dir := t.TempDir()
		for i := range 2 {
			if out, err := sh(dir, recipe); err != nil {
				t.Fatalf("run %d of the recipe: %v\n%s", i+1, err, out)
			}
		}
		// A holder with the first token, writing late, is refused.
		if out, err := sh(dir, inner, "MPLOCK_TOKEN=1"); err == nil {
			t.Fatalf("a stale token's write was accepted:\n%s", out)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "report.txt")); strings.Count(string(got), "\n") != 2 {
			t.Fatalf("report.txt is %q, want the two holders' writes only", got)
		}
	})
}
