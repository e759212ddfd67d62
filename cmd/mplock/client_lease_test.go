package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mplock/internal/netfault"
)

// TestClientHoldStopsOnPartition: `mplock client --hold` with a lease
// holds the lock across time, like mplock run. Its link to the server is
// black-holed while it holds: the server will expire the lease and may
// grant the lock to another, and no word reaches the client. It must notice
// by its own clock, give up before its WRITE, and write nothing.
func TestClientHoldStopsOnPartition(t *testing.T) {
	proxy := netfault.Start(t, dlServe(t))
	dir := t.TempDir()
	cmd := mplockCommand(t, "client", "file_A", "WRITE", "late", "--hold", "1m", "--ttl", "600ms",
		"--dir", dir, "--server", proxy.Addr())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killTree(cmd.Process.Pid) })
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "LOCKED file_A") {
	}
	proxy.Blackhole()
	wantExit(t, "mplock client, its link cut", cmd, waitInBackground(cmd), exitFailure, &stderr)
	if !strings.Contains(stderr.String(), "LOST file_A before the WRITE") {
		t.Errorf("stderr does not say the lock was lost:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "file_A.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file_A.txt written without the lock: %v", err)
	}
}
