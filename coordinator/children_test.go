package coordinator

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDescribeCrash runs a real Go program that crashes and checks that the
// description names the crash, not the last line of its goroutine dump.
func TestDescribeCrash(t *testing.T) {
	dir := t.TempDir()
	src := dir + "/main.go"
	if err := writeFile(src, "package main\n\nfunc main() {\n\tvar m map[string]int\n\tm[\"x\"] = 1\n}\n"); err != nil {
		t.Fatal(err)
	}
	exited := make(chan *child, 1)
	c, err := startChild("crasher", exec.Command("go", "run", src), exited)
	if err != nil {
		t.Fatal(err)
	}
	<-exited
	d := c.describe()
	if !strings.Contains(d, "panic: assignment to entry in nil map") {
		t.Fatalf("describe() = %q, want the panic line", d)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
