// Package deploy holds what it takes to run mplock serve as a service: a
// systemd unit for one member, and a script that starts a 3-member cluster
// on one machine. These tests lint them; cmd/mplock's TestExamples runs the
// script (README's "Replicated lock service").
package deploy

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"mplock/internal/proctest"
)

func TestShellcheck(t *testing.T) {
	sc := proctest.Tool(t, "shellcheck", "shellcheck")
	if out, err := exec.Command(sc, "--severity=style", "local-cluster.sh").CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
	if out, err := exec.Command("bash", "-n", "local-cluster.sh").CombinedOutput(); err != nil {
		t.Errorf("bash -n: %v\n%s", err, out)
	}
}

// TestUnitHardened: the unit runs as a dynamic user with a private state
// directory, and keeps the hardening options it documents.
func TestUnitHardened(t *testing.T) {
	b, err := os.ReadFile("mplock-serve@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=mplock-%i", "StateDirectoryMode=0700", "NoNewPrivileges=yes",
		"ProtectSystem=strict", "ProtectHome=yes", "--data-dir ${STATE_DIRECTORY}", "KillSignal=SIGTERM"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("mplock-serve@.service lacks %q", want)
		}
	}
	if sa, err := exec.LookPath("systemd-analyze"); err == nil {
		out, _ := exec.Command(sa, "verify", "mplock-serve@.service").CombinedOutput()
		t.Logf("systemd-analyze verify (informational: the binary path may not exist here):\n%s", out)
	}
}
