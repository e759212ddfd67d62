package proctest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCIInstallsEveryTool keeps .ci/run, the README and the tests in step:
// .ci/run runs the tests uncached with MPLOCK_CI set, and installs every
// tool a test asks for (Tool, MissingTool, a script's [tool:X], an
// example's "X:package"), and the README names each package, so that a
// fresh machine knows what the full suite needs.
func TestCIInstallsEveryTool(t *testing.T) {
	root := "../.."
	ci, err := os.ReadFile(filepath.Join(root, ".ci/run"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^export ` + CIEnv + `=1$`).Match(ci) {
		t.Errorf(".ci/run does not export %s=1", CIEnv)
	}
	if !regexp.MustCompile(`(?m)^go test -count=1 \./\.\.\.$`).Match(ci) {
		t.Errorf(".ci/run does not run `go test -count=1 ./...`: a cached run runs no test")
	}
	installed := map[string]string{}
	for _, m := range regexp.MustCompile(`\[([\w.-]+)\]=([\w.+-]+)`).FindAllSubmatch(ci, -1) {
		installed[string(m[1])] = string(m[2])
	}

	uses := map[string]string{} // tool -> package, as the tests say
	where := map[string]string{}
	calls := regexp.MustCompile(`proctest\.(?:Tool|MissingTool)\(t, "([\w.-]+)", "([\w.+-]+)"\)`)
	exampleTools := regexp.MustCompile(`tools: +\[\]string\{"([\w.-]+):([\w.+-]+)"\}`)
	scriptTools := regexp.MustCompile(`scriptTools = map\[string\]string\{(.*)\}`)
	pair := regexp.MustCompile(`"([\w.-]+)": "([\w.+-]+)"`)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") || strings.HasSuffix(path, "ci_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found := append(calls.FindAllSubmatch(b, -1), exampleTools.FindAllSubmatch(b, -1)...)
		if m := scriptTools.FindSubmatch(b); m != nil {
			found = append(found, pair.FindAllSubmatch(m[1], -1)...)
		}
		for _, m := range found {
			uses[string(m[1])], where[string(m[1])] = string(m[2]), path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"flock", "nc", "dot", "shellcheck", "python3"} {
		if _, ok := uses[must]; !ok {
			t.Errorf("no test asks for %s any more, or this scan misses it (found %v)", must, uses)
		}
	}
	for tool, pkg := range uses {
		if tool == "go" {
			continue // the toolchain running these tests
		}
		if installed[tool] != pkg {
			t.Errorf("%s asks for %s (package %s), but .ci/run installs [%s]=%q", where[tool], tool, pkg, tool, installed[tool])
		}
		if !strings.Contains(string(readme), pkg) {
			t.Errorf("%s needs package %s, which the README's list of what the tests need does not name", where[tool], pkg)
		}
	}
}
