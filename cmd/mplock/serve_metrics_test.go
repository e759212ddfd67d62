package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mplock/internal/proctest"
	"mplock/lockd"
)

// openFDsOf returns how many file descriptors process pid has open.
func openFDsOf(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc/%d/fd: %v", pid, err)
	}
	return len(ents)
}

// TestServeMetricsFloodLeavesLocksReachable is the attack report's H4:
// 600 connections held open on the metrics port (which has no
// authentication) of a server limited to 256 file descriptors took them
// all, and lock clients could no longer connect. The metrics port now
// has at most maxMetricsConns connections open, the others wait in the
// kernel's queue: the server's descriptors stay few, lock clients get
// their locks, and /metrics answers again once the flood goes.
func TestServeMetricsFloodLeavesLocksReachable(t *testing.T) {
	metricsAddr := freePorts(t, 1)[0] // below the ephemeral range: a listen on port 0, closed, could be any connection's port by the time serve binds it
	srv := startServe(t, "--metrics-listen", metricsAddr)
	pid := srv.cmd.Process.Pid
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 256, Max: 256}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	base := openFDsOf(t, pid)
	var flood []net.Conn
	for range 600 {
		c, err := net.Dial("tcp", metricsAddr)
		if err != nil {
			t.Fatalf("flooding the metrics port: %v", err)
		}
		flood = append(flood, c)
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	// Wait until the server has taken all it will take: its count of
	// descriptors stops moving.
	last := -1
	proctest.Eventually(t, "the server's file descriptors to settle under the flood", func() bool {
		n := openFDsOf(t, pid)
		settled := n == last
		last = n
		return settled
	})
	t.Logf("file descriptors: %d before the flood, %d during it (limit 256)", base, last)
	if last-base > maxMetricsConns+8 {
		t.Errorf("the flood of the metrics port took %d file descriptors, want at most about %d", last-base, maxMetricsConns)
	}
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := lockd.Dial(ctx, srv.addr, lockd.Options{Client: "beside-the-flood"})
		if err != nil {
			cancel()
			t.Fatalf("lock client %d while the metrics port is flooded: %v", i, err)
		}
		l, err := c.Lock(ctx, "file_A", lockd.Exclusive)
		if err == nil {
			err = l.Unlock(ctx)
		}
		c.Close()
		cancel()
		if err != nil {
			t.Fatalf("lock client %d while the metrics port is flooded: %v", i, err)
		}
	}
	for _, c := range flood {
		c.Close()
	}
	proctest.Eventually(t, "/metrics to answer once the flood is gone", func() bool {
		hc := http.Client{Timeout: time.Second}
		resp, err := hc.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && len(b) > 0
	})
}
