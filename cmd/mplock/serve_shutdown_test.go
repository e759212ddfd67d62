package main

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/internal/netfault"
	"mplock/internal/proctest"
)

// TestServeShutdownWithNonReaders is the attack's low finding, end to
// end: SIGTERM or SIGINT to an `mplock serve` with clients sitting on
// STATUS pages they do not read (three pages each, more than the
// kernel's send buffer takes; their write timeout a minute away)
// exits 0, its shutdown ended within its deadline, tells a holder its
// lock is lost, and logs how many sessions it closed. (It took 6.6s and
// exited 1, "context deadline exceeded".)
func TestServeShutdownWithNonReaders(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { shutdownWithNonReaders(t, sig) })
	}
}

func shutdownWithNonReaders(t *testing.T, sig syscall.Signal) {
	cmd, out, stderr := startServeCmd(t, "--max-locks", "10000", "--write-timeout", "1m")
	exited := make(chan struct{}) // closed when cmd.Wait has returned werr
	var werr error
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// Waited for from the start, so that a server that fails to start is
	// reaped (and the cleanup's wait ends).
	go func() { werr = cmd.Wait(); close(exited) }()
	addr := serveAddr(t, cmd, out, stderr, func() error { <-exited; return werr })
	go io.Copy(io.Discard, out)

	filler := dialLines(t, addr)
	filler.pipeline(3000, func(i int) string { return fmt.Sprintf("LOCK page-%s-%04d\n", strings.Repeat("p", 60), i) },
		func(int) string { return "OK LOCKED page-" })
	const nonReaders = 3
	server := netAddr(t, addr)
	for range nonReaders {
		c := netfault.DialSlowReader(t, addr)
		if _, err := c.Write([]byte(strings.Repeat("STATUS limit=10000\n", 3))); err != nil {
			t.Fatal(err)
		}
		proctest.WaitSendStuck(t, server, c.LocalAddr().(*net.TCPAddr))
	}
	filler.c.Close()
	holder := dialLines(t, addr)
	holder.send("LOCK held\n")
	holder.expect("OK LOCKED held")

	start := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	holder.expect("* LOST held")
	select {
	case <-exited:
	case <-time.After(hangBound):
		t.Fatalf("mplock serve still running %v after %v:\n%s", hangBound, sig, stderr.String())
	}
	took := time.Since(start)
	t.Logf("mplock serve exited %v after %v: %v", took.Round(time.Millisecond), sig, werr)
	// Exit status 0 is the server's own word that the shutdown ended
	// within shutdownTimeout (past it, serve exits 1); the test's clock
	// would also count a loaded machine's scheduling.
	if werr != nil {
		t.Fatalf("mplock serve exited with %v after %v, want 0:\n%s", werr, sig, stderr.String())
	}
	m := regexp.MustCompile(`msg="shutdown: closed sessions that had not read their last lines and hung up" sessions=(\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no log line says how many sessions the shutdown closed:\n%s", stderr.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < nonReaders {
		t.Errorf("the shutdown says it closed %d sessions, want at least the %d that did not read", n, nonReaders)
	}
}
