package main

import (
	"mplock/internal/freeport"
	"mplock/internal/proctest"

	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mplock/report"
)

// dlRun runs `mplock deadlock --base-port 0 --json ARGS` in this process
// (its servers and holders are real child processes: this test binary
// re-executed as mplock), decodes its report, and checks that it left no
// process and no port behind.
func dlRun(t *testing.T, args ...string) (report.DeadlockDoc, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"mplock", "deadlock", "--base-port", "0", "--json"}, args...), &out, &errb)
	var doc report.DeadlockDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("exit %d, report is not JSON: %v\nstdout: %s\nstderr: %s", code, err, out.String(), errb.String())
	}
	if doc.ExitCode != code {
		t.Errorf("exit_code %d, but the command exited %d", doc.ExitCode, code)
	}
	dlNoLeftovers(t, dlPIDs(doc), dlAddrs(doc), 0)
	return doc, code, errb.String()
}

func dlPIDs(doc report.DeadlockDoc) []int {
	var pids []int
	for _, h := range doc.Holders {
		pids = append(pids, h.PID)
	}
	for _, s := range doc.LockSrvs {
		pids = append(pids, s.PID)
	}
	return pids
}

func dlAddrs(doc report.DeadlockDoc) []string {
	var addrs []string
	for _, s := range doc.LockSrvs {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// dlNoLeftovers fails unless none of pids is alive and every address can
// be listened on again. With a zero wait, the processes must be gone
// already (mplock deadlock reaps them before it returns); otherwise they are
// given that long to go (a killed coordinator's children die by
// Pdeathsig, asynchronously). Either way, no child of this process may be
// left.
func dlNoLeftovers(t *testing.T, pids []int, addrs []string, wait time.Duration) {
	t.Helper()
	if len(pids) == 0 {
		t.Errorf("no pids to check")
	}
	deadline := time.Now().Add(wait)
	for _, pid := range pids {
		for proctest.Alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d is still running", pid)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// A dead server's sockets may take the kernel a moment to tear down
	// (closing handshakes on loopback), so a port gets a few seconds.
	portDeadline := time.Now().Add(5 * time.Second)
	for _, a := range addrs {
		for {
			ln, err := net.Listen("tcp", a)
			if err == nil {
				ln.Close()
				break
			}
			if time.Now().After(portDeadline) {
				t.Errorf("port of %s not free again: %v", a, err)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if kids := proctest.Children(os.Getpid()); len(kids) > 0 {
		t.Errorf("child processes left behind: %v", kids)
	}
}

// dlCheckRing checks that the cycle is the ring the reverse strategy
// makes: Pi holds lock i and waits for lock i+1, held by Pi+1, each lock at
// its own server's address.
func dlCheckRing(t *testing.T, doc report.DeadlockDoc, n int) {
	t.Helper()
	if !doc.Deadlock || len(doc.Cycle) != n || doc.Servers != n {
		t.Fatalf("deadlock %v with %d edges across %d servers, want a cycle of %d: %+v", doc.Deadlock, len(doc.Cycle), doc.Servers, n, doc.Cycle)
	}
	addr := map[string]string{}
	for _, s := range doc.LockSrvs {
		addr[s.Lock] = s.Addr
	}
	pid := map[string]int{}
	for _, h := range doc.Holders {
		pid[h.Proc] = h.PID
	}
	for i, e := range doc.Cycle {
		me, next := fmt.Sprintf("P%d", i+1), fmt.Sprintf("P%d", (i+1)%n+1)
		hold, want := fmt.Sprintf("lock%d", i+1), fmt.Sprintf("lock%d", (i+1)%n+1)
		if e.Proc != me || e.PID != pid[me] || e.Holds != hold || e.HoldsAt != addr[hold] || e.HoldsToken == 0 ||
			e.WaitsFor != want || e.WaitsAt != addr[want] || e.HeldBy != next || e.HeldByPID != pid[next] || e.Blocked != "held by" {
			t.Errorf("edge %d: %+v\nwant %s (pid %d) holding %s at %s, waiting for %s at %s held by %s (pid %d)",
				i, e, me, pid[me], hold, addr[hold], want, addr[want], next, pid[next])
		}
		if e.HoldsSinceMs > e.WaitsSinceMs {
			t.Errorf("edge %d: held since %vms, after its wait began at %vms", i, e.HoldsSinceMs, e.WaitsSinceMs)
		}
		if e.WaitsSinceMs > *doc.FormedMs {
			t.Errorf("edge %d: wait began at %vms, after the cycle formed at %vms", i, e.WaitsSinceMs, *doc.FormedMs)
		}
	}
	if doc.DetectMs == nil || *doc.DetectMs < 0 || *doc.DetectedMs < *doc.FormedMs || doc.Looks < 2 {
		t.Errorf("detection: formed %v, detected %v, latency %v, %d looks", doc.FormedMs, doc.DetectedMs, doc.DetectMs, doc.Looks)
	}
}

// TestDeadlockTwoProcesses is the seed's demo made real: two servers, two
// processes in reverse order, a deadlock detected with the right edges and
// aborted with exit status 3.
func TestDeadlockTwoProcesses(t *testing.T) {
	doc, code, stderr := dlRun(t, "--hold", "20ms")
	if code != exitDeadlock || doc.Outcome != "aborted" || doc.Resolution != "abort" || doc.Strategy != "reverse" {
		t.Fatalf("exit %d, outcome %q, resolution %q, strategy %q; stderr %s", code, doc.Outcome, doc.Resolution, doc.Strategy, stderr)
	}
	if !strings.Contains(stderr, "deadlock detected: P1 and P2 wait for each other") {
		t.Errorf("stderr: %s", stderr)
	}
	dlCheckRing(t, doc, 2)
	seen := map[string]bool{}
	for _, e := range doc.Timeline {
		seen[e.Event+" "+e.Proc+" "+e.Lock+" "+e.Other] = true
	}
	for _, want := range []string{"got P1 lock1 ", "got P2 lock2 ", "waiting P1 lock2 P2", "waiting P2 lock1 P1", "deadlock   ", "stop   "} {
		if !seen[want] {
			t.Errorf("timeline has no %q event: %+v", want, doc.Timeline)
		}
	}
	for _, h := range doc.Holders {
		if h.Completed || !strings.HasPrefix(h.Stopped, "waiting for lock") {
			t.Errorf("holder %+v: want stopped while waiting", h)
		}
	}

	// The fields the README promises scripts, by name.
	var generic map[string]any
	var out, errb bytes.Buffer
	run([]string{"mplock", "deadlock", "--base-port", "0", "--json", "--hold", "1ms"}, &out, &errb)
	if err := json.Unmarshal(out.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deadlock", "cycle", "detect_ms", "resolution", "strategy", "exit_code", "timeline", "holders", "lock_servers"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("no %q in the JSON report", k)
		}
	}
	edge, _ := generic["cycle"].([]any)[0].(map[string]any)
	for _, k := range []string{"proc", "pid", "holds", "waits_for", "held_by", "holds_since_ms", "waits_since_ms"} {
		if _, ok := edge[k]; !ok {
			t.Errorf("no %q in cycle[0]", k)
		}
	}
}

func TestDeadlockRingOfFive(t *testing.T) {
	doc, code, _ := dlRun(t, "--procs", "5", "--hold", "10ms")
	if code != exitDeadlock {
		t.Fatalf("exit %d", code)
	}
	dlCheckRing(t, doc, 5)
}

// TestDeadlockVictim: the detector kills one process of the cycle; its
// locks come back through its dropped connections and the others finish.
func TestDeadlockVictim(t *testing.T) {
	doc, code, stderr := dlRun(t, "--procs", "3", "--resolve", "victim", "--hold", "10ms")
	if code != exitOK || doc.Outcome != "victim" || !doc.Deadlock || doc.Victim == nil {
		t.Fatalf("exit %d, outcome %q, victim %+v; stderr %s", code, doc.Outcome, doc.Victim, stderr)
	}
	dlCheckRing(t, doc, 3)
	v := doc.Victim
	if !strings.Contains(v.Reason, "began last") || len(v.Held) != 1 {
		t.Errorf("victim %+v: want the reason and the one lock it held", v)
	}
	var victimWait float64
	for _, e := range doc.Cycle {
		if e.Proc == v.Proc {
			victimWait = e.WaitsSinceMs
		}
	}
	for _, e := range doc.Cycle {
		if e.WaitsSinceMs > victimWait {
			t.Errorf("%s's wait began after the victim's: the victim should be the youngest wait", e.Proc)
		}
	}
	for _, h := range doc.Holders {
		switch {
		case h.Proc == v.Proc && (!h.Victim || h.Completed || !strings.Contains(h.Exit, "SIGKILL")):
			t.Errorf("victim %+v", h)
		case h.Proc != v.Proc && !h.Completed:
			t.Errorf("%s did not complete: %+v", h.Proc, h)
		}
	}
	if doc.Completed != 2 {
		t.Errorf("%d completed, want 2", doc.Completed)
	}
	regained := false
	for _, e := range doc.Timeline {
		if e.Event == "got" && e.Lock == v.Held[0] && e.Proc != v.Proc && e.Token > 1 {
			regained = true
		}
	}
	if !regained {
		t.Errorf("nobody got %s after the victim died", v.Held[0])
	}
}

// TestDeadlockResolveNone leaves the deadlock alone, as the seed does, until
// the timeout: exit status 3. The timeout must outlast the holders' way into
// the deadlock and the detector's finding it, on a loaded machine too: with
// 300ms a run could time out before it deadlocked.
func TestDeadlockResolveNone(t *testing.T) {
	doc, code, _ := dlRun(t, "--resolve", "none", "--timeout", "2s", "--hold", "1ms")
	if code != exitDeadlock || !doc.Deadlock || !doc.TimedOut || doc.Outcome != "hung" {
		t.Fatalf("exit %d, deadlock %v, timed out %v, outcome %q", code, doc.Deadlock, doc.TimedOut, doc.Outcome)
	}
	dlCheckRing(t, doc, 2)
	left := false
	for _, e := range doc.Timeline {
		left = left || e.Event == "left"
	}
	if !left {
		t.Errorf("the timeline does not say the deadlock was left alone")
	}
}

// TestDeadlockPreventionNeverDeadlocks runs each prevention strategy
// repeatedly, half of the runs with the detector looking every millisecond,
// and expects every run to complete and no deadlock ever reported. The
// try-lock runs must also have given up at least once: every holder holds
// its first lock before any asks for the next, so the conflict is certain.
func TestDeadlockPreventionNeverDeadlocks(t *testing.T) {
	const runs = 10
	for _, strategy := range []string{"ordered", "trylock"} {
		t.Run(strategy, func(t *testing.T) {
			for i := range runs {
				procs, every := strconv.Itoa(2+i%2), []string{"10ms", "1ms"}[i%2]
				doc, code, stderr := dlRun(t, "--strategy", strategy, "--procs", procs, "--hold", "2ms", "--detect-every", every)
				if code != exitOK || doc.Deadlock || doc.Outcome != "completed" || doc.Completed != len(doc.Holders) {
					t.Fatalf("run %d (%s processes): exit %d, deadlock %v, outcome %q, %d of %d completed; stderr %s",
						i, procs, code, doc.Deadlock, doc.Outcome, doc.Completed, len(doc.Holders), stderr)
				}
				if strategy == "trylock" && doc.Retries == 0 {
					t.Errorf("run %d: no retries", i)
				}
				if strategy == "ordered" && doc.Retries != 0 {
					t.Errorf("run %d: %d retries with ordered locks", i, doc.Retries)
				}
			}
		})
	}
}

// TestDeadlockPortInUse: a port already taken is a clear error naming it,
// and nothing is left running.
func TestDeadlockPortInUse(t *testing.T) {
	// Take a port whose next one is free, so that the second server can
	// listen and the first one's port is the one in use. Both come from
	// below the ephemeral range (freeport): a port from a listen on port 0
	// is odd there, and its even neighbour is where the kernel puts
	// outgoing connections, all taken when the rest of the suite is busy.
	var ln net.Listener
	var port int
	for try := 0; ln == nil; try++ {
		if try == 100 {
			t.Fatal("found no two adjacent free ports")
		}
		addrs, err := freeport.Loopback(1)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", addrs[0])
		if err != nil {
			continue
		}
		port = l.Addr().(*net.TCPAddr).Port
		if next, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1)); err == nil {
			next.Close()
			ln = l
			break
		}
		l.Close()
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	code := run([]string{"mplock", "deadlock", "--base-port", strconv.Itoa(port)}, &out, &errb)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if want := fmt.Sprintf("port %d is already in use", port); !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "--base-port 0") {
		t.Errorf("stderr %q: want %q and the way out", errb.String(), want)
	}
	if kids := proctest.Children(os.Getpid()); len(kids) > 0 {
		t.Errorf("child processes left behind: %v", kids)
	}
}

// dlStart starts `mplock deadlock ARGS` as a separate process and reads its
// live timeline until the deadlock is detected; it returns the command, the
// pids and addresses the timeline named, and the rest of its output.
func dlStart(t *testing.T, args ...string) (*exec.Cmd, []int, []string, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", append([]string{"deadlock", "--base-port", "0"}, args...)...)
	cmd.Args[0] = "mplock" // TestMain runs the CLI under this name
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	server := regexp.MustCompile(`Lock Server started on tcp://(\S+) \(pid (\d+)\)`)
	holder := regexp.MustCompile(`P\d+ \(pid (\d+)\) got`)
	var pids []int
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if m := server.FindStringSubmatch(line); m != nil {
			addrs = append(addrs, m[1])
			pid, _ := strconv.Atoi(m[2])
			pids = append(pids, pid)
		}
		if m := holder.FindStringSubmatch(line); m != nil {
			pid, _ := strconv.Atoi(m[1])
			pids = append(pids, pid)
		}
		if strings.Contains(line, "DEADLOCK detected") {
			return cmd, pids, addrs, sc
		}
	}
	t.Fatalf("the run ended before a deadlock was detected")
	return nil, nil, nil, nil
}

// TestDeadlockCtrlC interrupts a hung run: exit 130, a report, and no
// process or port left.
func TestDeadlockCtrlC(t *testing.T) {
	cmd, pids, addrs, rest := dlStart(t, "--resolve", "none", "--timeout", "1h", "--hold", "1ms")
	if len(pids) != 4 || len(addrs) != 2 {
		t.Fatalf("timeline named pids %v and addresses %v, want 4 and 2", pids, addrs)
	}
	cmd.Process.Signal(syscall.SIGINT)
	var tail strings.Builder
	for rest.Scan() {
		tail.WriteString(rest.Text() + "\n")
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want status 130", err)
	}
	if !strings.Contains(tail.String(), "Interrupted: stopped every holder and lock server") || !strings.Contains(tail.String(), "DEADLOCK: 2 processes") {
		t.Errorf("report after Ctrl-C:\n%s", tail.String())
	}
	dlNoLeftovers(t, pids, addrs, 0)
}

// TestDeadlockCoordinatorKilled: when mplock deadlock itself is killed with
// SIGKILL, its servers and holders die with it (parent-death signal) and
// every port is free again.
func TestDeadlockCoordinatorKilled(t *testing.T) {
	cmd, pids, addrs, _ := dlStart(t, "--resolve", "none", "--timeout", "1h", "--hold", "1ms")
	cmd.Process.Kill()
	cmd.Wait()
	dlNoLeftovers(t, pids, addrs, 20*time.Second)
}

// TestDeadlockGraph writes the wait-for graph, and draws it with Graphviz
// (skipped without it, but under CI a missing dot fails the test).
func TestDeadlockGraph(t *testing.T) {
	dir := t.TempDir()
	dot, svg := filepath.Join(dir, "waits.dot"), filepath.Join(dir, "waits.svg")
	args := []string{"--hold", "1ms", "--dot", dot}
	_, lookErr := exec.LookPath("dot")
	if lookErr == nil {
		args = append(args, "--svg", svg)
	} else if proctest.InCI() {
		proctest.MissingTool(t, "dot", "graphviz")
	}
	doc, code, _ := dlRun(t, args...)
	if code != exitDeadlock {
		t.Fatalf("exit %d", code)
	}
	b, err := os.ReadFile(dot)
	if err != nil {
		t.Fatal(err)
	}
	g := string(b)
	for _, want := range []string{"digraph waitfor", "shape=ellipse", "shape=box", `label="holds\ntoken `, `label="waits for"`, "color=red",
		fmt.Sprintf(`"P1 (pid %d)" -> "lock2 at %s" [label="waits for"`, doc.Holders[0].PID, doc.LockSrvs[1].Addr),
		fmt.Sprintf(`"P2 (pid %d)" -> "lock2 at %s" [label="holds`, doc.Holders[1].PID, doc.LockSrvs[1].Addr)} {
		if !strings.Contains(g, want) {
			t.Errorf("DOT has no %q:\n%s", want, g)
		}
	}
	if lookErr != nil {
		t.Log("Graphviz's dot is not installed: SVG not tested")
		return
	}
	b, err = os.ReadFile(svg)
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("lock2")) {
		t.Errorf("SVG: %v, %.200s", err, b)
	}
}

// TestDeadlockSVGWithoutDot: without Graphviz, --svg is refused before
// anything runs, with a message saying what to install.
func TestDeadlockSVGWithoutDot(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errb bytes.Buffer
	code := run([]string{"mplock", "deadlock", "--base-port", "0", "--svg", filepath.Join(t.TempDir(), "w.svg")}, &out, &errb)
	if code != exitFailure || !strings.Contains(errb.String(), "Graphviz") || !strings.Contains(errb.String(), "--dot FILE") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("something ran: %s", out.String())
	}
}

// TestDeadlockHolderDies: a holder killed from outside is a failure (exit
// 1) that names it, and the run still cleans up.
func TestDeadlockHolderDies(t *testing.T) {
	cmd, pids, addrs, rest := dlStart(t, "--resolve", "none", "--timeout", "1h", "--hold", "1ms")
	holder := pids[len(pids)-1] // the timeline names the servers first

	if err := syscall.Kill(holder, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var tail strings.Builder
	for rest.Scan() {
		tail.WriteString(rest.Text() + "\n")
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit %v, want status 1", err)
	}
	if want := fmt.Sprintf("(pid %d) ended before finishing: killed by SIGKILL", holder); !strings.Contains(tail.String(), want) {
		t.Errorf("report does not say %q:\n%s", want, tail.String())
	}
	dlNoLeftovers(t, pids, addrs, 0)
}
