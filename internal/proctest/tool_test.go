package proctest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestToolHelper is run by TestToolMissing in a child process: it asks for
// a tool that does not exist.
func TestToolHelper(t *testing.T) {
	if os.Getenv("MPLOCK_TOOL_HELPER") == "" {
		t.Skip("run by TestToolMissing")
	}
	Tool(t, "mplock-no-such-tool", "no-such-package")
	t.Log("the tool was found")
}

// TestToolMissing: a missing tool skips the test, saying how to install
// it, except under CI, where it fails it.
func TestToolMissing(t *testing.T) {
	for _, ci := range []bool{false, true} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestToolHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "MPLOCK_TOOL_HELPER=1", CIEnv+"=")
		if ci {
			cmd.Env = append(cmd.Env, CIEnv+"=1")
		}
		out, err := cmd.CombinedOutput()
		s := string(out)
		switch {
		case !ci && (err != nil || !strings.Contains(s, "--- SKIP: TestToolHelper") || !strings.Contains(s, "apt-get install no-such-package")):
			t.Errorf("without CI: %v\n%s", err, s)
		case ci && (err == nil || !strings.Contains(s, "--- FAIL: TestToolHelper") || !strings.Contains(s, "MPLOCK_CI is set")):
			t.Errorf("under CI: %v\n%s", err, s)
		}
	}
}
