// Package scripts holds the shell entry points for benchmark runs
// (bench.sh, compare.sh) and their native peers (peers/); this file tests
// them: syntax, shellcheck, the peers' own consistency checks, and the
// scripts' quick modes end to end, as CI runs them, without the optional
// peers.
package scripts

import (
	"bytes"
	"encoding/csv"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mplock/internal/proctest"
)

// mplockBin is mplock built once for the tests that run the scripts.
var mplockBin string

func TestMain(m *testing.M) {
	code := m.Run()
	if mplockBin != "" {
		os.RemoveAll(filepath.Dir(mplockBin))
	}
	os.Exit(code)
}

func buildMplock(t *testing.T) string {
	t.Helper()
	if mplockBin != "" {
		return mplockBin
	}
	goCmd := proctest.Tool(t, "go", "golang-go")
	dir, err := os.MkdirTemp("", "mplock-scripts-test-")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "mplock")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/mplock")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mplockBin = bin
	return bin
}

func shellScripts(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob("*.sh")
	if err != nil || len(paths) < 2 {
		t.Fatalf("scripts: %v %v", paths, err)
	}
	return paths
}

func TestBashSyntax(t *testing.T) {
	for _, p := range shellScripts(t) {
		if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("bash -n %s: %v\n%s", p, err, out)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// lib.sh is sourced by the others, under their options.
		if p != "lib.sh" && !bytes.Contains(b, []byte("set -euo pipefail")) {
			t.Errorf("%s does not set -euo pipefail", p)
		}
	}
}

func TestShellcheck(t *testing.T) {
	sc := proctest.Tool(t, "shellcheck", "shellcheck")
	args := append([]string{"--severity=style"}, shellScripts(t)...)
	if out, err := exec.Command(sc, args...).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// run runs a script from a directory of its own (the scripts must work
// from anywhere) and returns its stdout, stderr and exit status.
func run(t *testing.T, env []string, script string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runIn(t, t.TempDir(), env, script, args...)
}

// runIn is run with TMPDIR set to tmp.
func runIn(t *testing.T, tmp string, env []string, script string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(abs, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", script, err)
	}
	return o.String(), e.String(), code
}

// kv parses a peer's "key=value ..." line.
func kv(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

// buildCPeer builds the C reference with the machine's compiler.
func buildCPeer(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	proctest.Tool(t, cc, "gcc")
	bin := filepath.Join(t.TempDir(), "lockpeer")
	if out, err := exec.Command(cc, "-O2", "-Wall", "-Werror", "-o", bin, "peers/lockpeer.c").CombinedOutput(); err != nil {
		t.Fatalf("%s lockpeer.c: %v\n%s", cc, err, out)
	}
	return bin
}

// TestCPeer builds the C reference and runs every kind briefly: each must
// report a consistent counter (the peer checks that no update was lost).
func TestCPeer(t *testing.T) {
	bin := buildCPeer(t)
	for _, kind := range []string{"atomic", "futex", "pthread", "flock", "ofd", "sysv", "spin"} {
		out, err := exec.Command(bin, "-k", kind, "-p", "2", "-d", "0.1").Output()
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		f := kv(string(out))
		if f["peer"] != "c" || f["kind"] != kind || f["procs"] != "2" || f["consistent"] != "1" || f["ops"] == "0" || f["ops_per_sec"] == "" {
			t.Errorf("%s: %q", kind, out)
		}
	}
	if err := exec.Command(bin, "-k", "nosuch").Run(); err == nil {
		t.Error("an unknown kind was accepted")
	}
}

// TestCPeerInterrupted stops the C reference with SIGTERM mid-run: it must
// exit 130 and remove what it made, its lock file (flock) and its System V
// semaphore (sysv), which would otherwise outlive it.
func TestCPeerInterrupted(t *testing.T) {
	bin := buildCPeer(t)
	for _, kind := range []string{"flock", "sysv"} {
		t.Run(kind, func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(bin, "-k", kind, "-p", "2", "-d", "60")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			var made func() bool // what the run made, while it is there
			if kind == "flock" {
				made = func() bool { ents, _ := os.ReadDir(tmp); return len(ents) > 0 }
			} else {
				// The semaphore whose last operation was by one of the peer's
				// processes: others run on the machine at the same time.
				var id int
				made = func() bool {
					if id == 0 {
						id = semOf(proctest.Children(cmd.Process.Pid))
					}
					return id > 0 && semExists(id)
				}
			}
			proctest.Eventually(t, "the run to start", made)
			cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("exit %v, want status 130", err)
			}
			if made() {
				t.Fatalf("the interrupted %s run left what it made behind", kind)
			}
		})
	}
}

// semOf returns the System V semaphore last operated on by one of pids, or 0.
func semOf(pids []int) int {
	b, _ := os.ReadFile("/proc/sysvipc/sem")
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		id, _ := strconv.Atoi(f[1])
		last, _, e := unix.RawSyscall6(unix.SYS_SEMCTL, uintptr(id), 0, 11 /* GETPID */, 0, 0, 0)
		if e == 0 && slices.Contains(pids, int(last)) {
			return id
		}
	}
	return 0
}

func semExists(id int) bool {
	_, _, e := unix.RawSyscall6(unix.SYS_SEMCTL, uintptr(id), 0, 12 /* GETVAL */, 0, 0, 0)
	return e == 0
}

// TestPythonPeer runs the seed's lock briefly: the balance must add up.
func TestPythonPeer(t *testing.T) {
	py := proctest.Tool(t, "python3", "python3")
	out, err := exec.Command(py, "peers/seedlock.py", "-p", "2", "-d", "0.2").Output()
	if err != nil {
		t.Fatalf("seedlock.py: %v", err)
	}
	f := kv(string(out))
	if f["peer"] != "python" || f["kind"] != "mp.Lock" || f["consistent"] != "1" || f["ops"] == "0" {
		t.Errorf("seedlock.py: %q", out)
	}
}

// TestCompareQuick is compare.sh --quick as CI runs it, where the optional
// peers (Python, stress-ng) are not installed: the C rows and the latency
// cost are there, the optional rows are not, and the CSV has its columns.
func TestCompareQuick(t *testing.T) {
	if os.Getenv("CC") == "" {
		proctest.Tool(t, "cc", "gcc")
	}
	bin := buildMplock(t)
	csvOut := filepath.Join(t.TempDir(), "compare.csv")
	stdout, stderr, code := run(t, []string{"MPLOCK=" + bin, "PYTHON=/nonexistent/python3", "STRESS_NG=/nonexistent/stress-ng"},
		"compare.sh", "--quick", "--csv-out", csvOut)
	if code != 0 {
		t.Fatalf("compare.sh --quick: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		`(?m)^KIND +MPLOCK +PEER +PEER OPS/S +RATIO +TARGET +MET +HANDOFFS +CPUS +BUSY`,
		`(?m)^sem +\S+ +C futex lock +\S+ +[0-9.]+x +>=1 `,
		`(?m)^sem +\S+ +C pthread mutex`,
		`(?m)^flock +\S+ +C flock `,
		`(?m)^fcntl +\S+ +C OFD lock `,
		`(?m)^sysv +\S+ +C SysV semop `,
		`(?m)^spin +\S+ +C spinlock `,
		`(?m)^atomic +\S+ +C atomic add `,
		`(?m)^KIND +LATENCY OFF +LATENCY ON +COST`,
		`(?m)^sem +\S+ +\S+ +-?[0-9.]+% `,
		`Machine: .*CPUs`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "Python") || strings.Contains(stdout, "stress-ng") {
		t.Errorf("optional peers appear although not installed:\n%s", stdout)
	}

	f, err := os.Open(csvOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "comparison,kind,peer,mplock_ops_per_sec,peer_ops_per_sec,ratio,target,met,mplock_handoffs_per_1k,peer_handoffs_per_1k,mplock_cpus,peer_cpus,peer_unit,background_cpus" {
		t.Fatalf("CSV header %q", got)
	}
	peers, overheads := 0, 0
	for _, r := range rows[1:] {
		switch r[0] {
		case "peer":
			peers++
		case "overhead":
			overheads++
		}
	}
	// 6 kinds with a C peer, plus the pthread row; 5 locking kinds' cost.
	if peers != 7 || overheads != 5 {
		t.Errorf("%d peer rows and %d overhead rows, want 7 and 5:\n%v", peers, overheads, rows)
	}
}

func TestCompareUsage(t *testing.T) {
	for _, args := range [][]string{{"--duration", "soon"}, {"--rounds", "0"}, {"--peers", "perl"}, {"--kinds", "none"}, {"--bogus"}} {
		_, stderr, code := run(t, []string{"MPLOCK=/bin/true"}, "compare.sh", args...)
		if code != 2 || !strings.HasPrefix(stderr, "compare.sh: ") && !strings.Contains(stderr, "\ncompare.sh: ") {
			t.Errorf("compare.sh %v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	stdout, _, code := run(t, nil, "compare.sh", "-h")
	if code != 0 || !strings.Contains(stdout, "Usage: scripts/compare.sh") {
		t.Errorf("compare.sh -h: exit %d\n%s", code, stdout)
	}
}

// TestScriptsHelp holds every script to one convention: -h and --help
// print its usage and exit 0; an unknown option is a usage error, exit 2,
// said in the script's name.
func TestScriptsHelp(t *testing.T) {
	for _, p := range shellScripts(t) {
		if p == "lib.sh" {
			continue
		}
		for _, flag := range []string{"-h", "--help"} {
			stdout, stderr, code := run(t, []string{"MPLOCK=/bin/true"}, p, flag)
			if code != 0 || !strings.HasPrefix(stdout, "Usage: scripts/"+p) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want 0 and its usage", p, flag, code, stdout, stderr)
			}
		}
		_, stderr, code := run(t, []string{"MPLOCK=/bin/true"}, p, "--bogus")
		if code != 2 || !strings.Contains(stderr, p+": unknown option --bogus") {
			t.Errorf("%s --bogus: exit %d, stderr %q; want 2 and the option named", p, code, stderr)
		}
	}
}

// TestBenchQuick runs bench.sh's smoke matrix into a results directory and
// checks that every format and the machine description are there.
func TestBenchQuick(t *testing.T) {
	bin := buildMplock(t)
	out := filepath.Join(t.TempDir(), "results")
	stdout, stderr, code := run(t, []string{"MPLOCK=" + bin}, "bench.sh", "--quick", "--no-compare", "-o", out)
	if code != 0 {
		t.Fatalf("bench.sh --quick: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, name := range []string{"bench.txt", "bench.csv", "bench.json", "bench.gobench.txt", "bench.svg", "bench.png", "machine.txt", "command.txt"} {
		st, err := os.Stat(filepath.Join(out, name))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", name, err)
		}
	}
	machine, _ := os.ReadFile(filepath.Join(out, "machine.txt"))
	for _, want := range []string{"kernel: ", "cpuidle governor: ", "mplock: "} {
		if !bytes.Contains(machine, []byte(want)) {
			t.Errorf("machine.txt lacks %q:\n%s", want, machine)
		}
	}
	if !strings.Contains(stdout, "sem") {
		t.Errorf("bench.sh prints no table:\n%s", stdout)
	}
}

// TestBenchMissingTool: without Go and without MPLOCK, bench.sh says what
// is missing and exits 2 before doing anything.
func TestBenchMissingTool(t *testing.T) {
	out := filepath.Join(t.TempDir(), "results")
	_, stderr, code := run(t, []string{"GO=/nonexistent/go", "MPLOCK="}, "bench.sh", "--no-compare", "-o", out)
	if code != 2 || !strings.Contains(stderr, "/nonexistent/go not found") {
		t.Errorf("exit %d, stderr %q; want 2 and the missing tool named", code, stderr)
	}
	stdout, _, code := run(t, nil, "bench.sh", "-h")
	if code != 0 || !strings.Contains(stdout, "results/<date>-<host>/") {
		t.Errorf("bench.sh -h: exit %d\n%s", code, stdout)
	}
}

// TestCompareSummary checks compare.sh's arithmetic on samples it did not
// measure (--from-raw): medians over rounds, the ratio to each peer against
// its target, the latency cost, and --drop-busy leaving out a run that had
// a busy neighbour.
func TestCompareSummary(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "samples.csv")
	samples := `job,round,ops_per_sec,handoffs_per_1k,cpus,background_cpus
mplock:sem,1,10000000,80,1.9,0.00
mplock:sem,2,12000000,90,1.9,0.01
mplock:sem,3,30000000,2,1.0,0.90
mplock-latency:sem,1,9000000,80,1.9,0.00
mplock-latency:sem,2,9000000,80,1.9,0.00
mplock-latency:sem,3,9000000,80,1.9,0.00
c:futex,1,10000000,100,1.9,0.00
c:futex,2,10000000,100,1.9,0.00
c:futex,3,10000000,100,1.9,0.00
python:mp.Lock,1,1000000,-,-,0.00
`
	if err := os.WriteFile(raw, []byte(samples), 0o644); err != nil {
		t.Fatal(err)
	}
	rows := func(args ...string) map[string][]string {
		stdout, stderr, code := run(t, nil, "compare.sh", append([]string{"--from-raw", raw, "--kinds", "sem", "--csv"}, args...)...)
		if code != 0 {
			t.Fatalf("compare.sh --from-raw %v: exit %d\n%s", args, code, stderr)
		}
		recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		m := map[string][]string{}
		for _, r := range recs[1:] {
			m[r[0]+"/"+r[2]] = r
		}
		return m
	}
	check := func(what string, got []string, ratio, met string) {
		t.Helper()
		if got == nil || got[5] != ratio || got[7] != met {
			t.Errorf("%s: row %q, want ratio %s and met %s", what, got, ratio, met)
		}
	}

	all := rows()
	check("sem vs futex", all["peer/C futex lock"], "1.200", "yes")            // median 12M / 10M
	check("sem vs python", all["peer/Python mp.Lock (seed)"], "12.000", "yes") // 12M / 1M, target 3
	check("latency cost", all["overhead/latency on"], "0.750", "NO")           // 9M / 12M: costs 25%

	quiet := rows("--drop-busy")
	check("sem vs futex, quiet runs", quiet["peer/C futex lock"], "1.100", "yes") // median of 10M and 12M
	check("latency cost, quiet runs", quiet["overhead/latency on"], "0.818", "NO")
}

// TestLockdCompareCluster runs lockd-compare.sh --cluster 3 briefly: a
// 3-member mplock cluster (and etcd's, when installed) with requests at
// the leader and at a follower, the single servers, the ratios, and the
// reads; and every server it started is gone when it exits.
func TestLockdCompareCluster(t *testing.T) {
	bin := buildMplock(t)
	tmp := t.TempDir()
	stdout, stderr, code := runIn(t, tmp, []string{"MPLOCK=" + bin}, "lockd-compare.sh", "--cluster", "3", "-d", "50ms", "-r", "1", "--reads")
	if code != 0 {
		t.Fatalf("lockd-compare.sh --cluster 3: exit %d\n%s\n%s", code, stdout, stderr)
	}
	cell := `\d+ ±\d+%`
	want := []string{
		`(?m)^3-member clusters`,
		`(?m)^pairs/s \(median of 1\) +mplock@leader +mplock@follower`,
		`(?m)^1 client +` + cell + ` +` + cell,
		`(?m)^16 clients, distinct names +` + cell + ` +` + cell,
		`(?m)^16 clients, one name +` + cell + ` +` + cell,
		`(?m)^single servers \(mplock in memory\)`,
		`(?m)^pairs/s \(median of 1\) +mplock +mplock-raw`,
		`(?m)^  mplock@follower +CHECK consistency=stale +follower +\d+ / \d+`,
		`(?m)^  mplock@leader +CHECK consistency=consistent +leader +\d+ / \d+`,
		`(?m)^  mplock +STATUS +- +\d+ / \d+`,
	}
	if _, err := exec.LookPath("etcd"); err == nil {
		want = append(want, `(?m)^pairs/s \(median of 1\) +mplock@leader +mplock@follower +etcd@leader +etcd@follower`,
			`(?m)^1 client +\d+\.\d+x +\d+\.\d+x +>=5x`)
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(stdout) {
			t.Errorf("output lacks %s:\n%s", w, stdout)
		}
	}
	// The private directory keeps the raw results, and no data dir.
	m := regexp.MustCompile(`raw results: (\S+)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no raw results line:\n%s", stdout)
	}
	if left, _ := filepath.Glob(filepath.Join(m[1], "*-data*")); len(left) > 0 {
		t.Errorf("data dirs left behind: %v", left)
	}
	for _, port := range regexp.MustCompile(`on ((?:127\.0\.0\.1:\d+,?)+)`).FindAllStringSubmatch(stderr, -1) {
		for _, a := range strings.Split(port[1], ",") {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still answers after the script ended", a)
			}
		}
	}
}

// TestLockdCompareUsage: a cluster size that is not an odd number from 3
// to 9 is a usage error.
func TestLockdCompareUsage(t *testing.T) {
	for _, n := range []string{"2", "x", "11"} {
		_, stderr, code := run(t, []string{"MPLOCK=/bin/true"}, "lockd-compare.sh", "--cluster", n)
		if code != 2 || !strings.Contains(stderr, "lockd-compare.sh: --cluster "+n) {
			t.Errorf("--cluster %s: exit %d, stderr %q; want 2 and a message", n, code, stderr)
		}
	}
}
