package proctest

import (
	"os"
	"os/exec"
	"testing"
)

// CIEnv is the environment variable .ci/run sets. Under it, every tool the
// test suite uses is installed (.ci/run installs them), so a test whose
// tool is missing fails instead of skipping: a skip there would be a test
// that silently never ran.
const CIEnv = "MPLOCK_CI"

// InCI reports whether the tests run under .ci/run.
func InCI() bool { return os.Getenv(CIEnv) != "" }

// Tool returns the path of the program name, which Debian's package pkg
// provides. When it is not on PATH, the test is skipped, saying how to
// install it, or, under CI (InCI), fails.
func Tool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	MissingTool(t, name, pkg)
	return ""
}

// MissingTool skips the test, or fails it under CI, because name (from
// Debian's package pkg) is not installed.
func MissingTool(t testing.TB, name, pkg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is not installed, and %s is set: .ci/run installs every tool the tests use (apt-get install %s)", name, CIEnv, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s); the full suite needs it, and fails without it under .ci/run", name, pkg)
}
