package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"mplock/dmutex"
	"mplock/internal/proctest"
)

// TestExamples runs every `mplock ...` example that README.md, docs/*.md
// and the commands' --help texts show, so that an example that stops
// working fails the tests (and CI) instead of the first person who tries it.
//
// An example is a line of a code block that starts with "mplock " (or "$
// mplock " in a transcript, whose other lines are output), or a line under
// "Examples:" in a command's help. Its comment (" # ...") is dropped; the
// rest runs with bash in a private working directory, HOME and TMPDIR, with
// the test binary as mplock on PATH, and must exit as the tables below say
// (0 unless told otherwise).
//
// How an example runs is decided by two tables:
//
//   - exampleCommands says, per command, how to run its examples: whether
//     each needs a lock server of its own (started here; MPLOCK_SERVER names
//     it), whether it is a server itself (then it must print its first line
//     and stop with exit 0 on SIGTERM), its expected exit status, files it
//     needs in its working directory, and how to shorten it: the command
//     line it runs instead, usually the example with flags appended, which
//     win over the example's own because later flags win. Shortening keeps
//     the whole test near 30s: every bank run becomes --ops 1000, every
//     mutex and bench run a fraction of a second.
//   - exampleOverrides, per example (the text as written, without the
//     comment), says what differs for that one: another exit status, a
//     script around it (a holder to wait for), a tool it needs.
//
// An example of a command that exampleCommands does not know fails, and so
// does an override whose example no longer exists: a new command (mplock
// cluster, mplock member) needs a line in exampleCommands saying how its
// examples run, not a silent skip.
func TestExamples(t *testing.T) {
	examples := collectExamples(t)
	if len(examples) < 40 {
		t.Fatalf("found only %d examples; the collector is broken", len(examples))
	}
	seen := map[string]bool{}
	for _, ex := range examples {
		seen[ex.text] = true
	}
	for text := range exampleOverrides {
		if !seen[text] {
			t.Errorf("exampleOverrides has %q, which no README, doc or --help shows any more: remove it", text)
		}
	}
	tl := &tools{dir: t.TempDir()}
	for _, ex := range examples {
		t.Run(ex.name(), func(t *testing.T) {
			t.Parallel()
			runExample(t, ex, tl)
		})
	}
}

// exampleCommand says how the examples of one command run.
type exampleCommand struct {
	server  bool              // needs a lock server; MPLOCK_SERVER names one started for it
	daemon  bool              // runs until stopped: its first line, then SIGTERM and exit 0
	exit    int               // expected exit status
	files   map[string]string // files in its working directory (and HOME); ".sh" ones executable
	shorten func(args []string) []string
}

// exampleOverride is what differs for one example.
type exampleOverride struct {
	why    string
	exit   *int     // instead of the command's
	script string   // run instead; {} stands for the (shortened) example
	tools  []string // programs it needs: "dot:graphviz" (Debian package after the colon)
	stderr string   // a regexp its stderr must match
}

func code(n int) *int { return &n }

// Shortening helpers: later flags win, so appending a flag shortens an
// example without rewriting it.
func appendArgs(extra ...string) func([]string) []string {
	return func(args []string) []string { return append(slices.Clip(args), extra...) }
}

func hasFlag(args []string, names ...string) bool {
	for _, a := range args {
		for _, n := range names {
			if a == n || strings.HasPrefix(a, n+"=") {
				return true
			}
		}
	}
	return false
}

// flagValue is the value of the last of the named flags in args ("--procs
// 5" or "--procs=5"), "" when none is given.
func flagValue(args []string, names ...string) string {
	v := ""
	for i, a := range args {
		for _, n := range names {
			switch {
			case a == n && i+1 < len(args):
				v = args[i+1]
			case strings.HasPrefix(a, n+"="):
				v = strings.TrimPrefix(a, n+"=")
			}
		}
	}
	return v
}

// mutexAlgorithms is how many algorithms a mutex --algorithm value names.
func mutexAlgorithms(v string) int {
	if v == "all" {
		return len(dmutex.Algorithms())
	}
	return max(1, len(splitList(v)))
}

var exampleCommands = map[string]exampleCommand{
	"bank": {shorten: func(args []string) []string {
		switch {
		case hasFlag(args, "--list-kinds"):
			return args
		case hasFlag(args, "--duration", "-d"):
			return appendArgs("--duration", "50ms")(args)
		}
		return appendArgs("--ops", "1000")(args)
	}},
	// 100ms: in 10ms, on a loaded machine, the workers of a cell may not
	// all be scheduled before its deadline, and bench fails a cell in
	// which no operation completed.
	"bench":       {shorten: appendArgs("--duration", "100ms", "--repeat", "1", "--warmup", "0")},
	"bench lockd": {shorten: appendArgs("--duration", "100ms")},
	// A few seconds with raft's and the sessions' timeouts short enough
	// for the faults to fit (the flags given last win).
	"cluster": {shorten: appendArgs("--duration", "4s", "--election-timeout", "300ms",
		"--heartbeat-timeout", "300ms", "--session-ttl", "1s", "--think", "20ms", "--check-timeout", "30s")},
	// Fixed ports (6000, ...) would collide with other tests on the machine.
	"deadlock": {exit: exitDeadlock, shorten: appendArgs("--base-port", "0")},
	"mutex": {shorten: func(args []string) []string {
		switch {
		case hasFlag(args, "--explore", "--list-algorithms"):
			// No processes run: an exploration of the size an example
			// shows takes milliseconds (and refuses --duration, which is
			// for real runs), a list none.
			return args
		case len(args) >= 4 && !strings.HasPrefix(args[2], "-") && !strings.HasPrefix(args[3], "-"):
			// mplock mutex PROCS SECONDS: SECONDS is shortened in place.
			args = slices.Clone(args)
			args[3] = "0.3"
			return args
		}
		// Real runs: 300ms each, 100ms each for an example that makes
		// many (every algorithm at three sizes is 24), which would
		// otherwise keep both CPUs from the examples running beside it.
		if max(1, len(splitList(flagValue(args, "--procs", "-n"))))*mutexAlgorithms(flagValue(args, "--algorithm", "-a")) > 4 {
			return appendArgs("--duration", "100ms")(args)
		}
		return appendArgs("--duration", "300ms")(args)
	}},
	"serve": {daemon: true,
		files: map[string]string{".config/mplock/secret": "s3cret\n", ".config/mplock/peer-secret": "the-members-s3cret\n"},
		shorten: func(args []string) []string {
			// Any free port; files it writes in its working directory.
			out := appendArgs("--listen", "127.0.0.1:0")(args)
			if hasFlag(args, "--metrics-listen") {
				out = append(out, "--metrics-listen", "127.0.0.1:0")
			}
			if hasFlag(args, "--raft-listen") {
				// A cluster member alone: it starts, and stops on SIGTERM
				// without a leader; its raft port is any free one.
				out = append(out, "--raft-listen", "127.0.0.1:0")
			}
			for i := range out {
				if i > 0 && out[i-1] == "--addr-file" {
					out[i] = filepath.Base(out[i])
				}
			}
			return out
		}},
	"client": {server: true, shorten: appendArgs("--hold", "50ms")},
	"run": {server: true, files: map[string]string{
		"backup.sh": "#!/bin/sh\necho backing up under $MPLOCK_NAME\n", "read-reports.sh": "#!/bin/sh\necho reading\n",
		"deploy.sh": "#!/bin/sh\necho deploying\n",
		// A daemon: it starts a process that leaves its group, and exits.
		"start-daemon.sh": "#!/bin/sh\nsetsid sleep 0.2 >/dev/null 2>&1 &\necho started\n",
	}},
	"status": {server: true},
	"help":   {},
	// A single server is not a cluster: member examples run against a
	// cluster of their own (exampleOverrides).
	"member":        {},
	"member list":   {server: true, exit: exitFailure},
	"member remove": {server: true, exit: exitFailure},
}

var exampleOverrides = map[string]exampleOverride{
	"mplock deadlock --strategy ordered": {exit: code(0), why: "one lock order: no deadlock"},
	"mplock deadlock --strategy trylock": {exit: code(0), why: "timed acquires: no deadlock"},
	"mplock deadlock --resolve victim":   {exit: code(0), why: "the victim is killed, the others finish"},
	"mplock deadlock --resolve none":     {script: "{} --timeout 1s", why: "it waits for --timeout"},
	"mplock deadlock --svg waits.svg":    {tools: []string{"dot:graphviz"}, script: "{} && grep -q '<svg' waits.svg"},
	"mplock bench --wait-quiet 60":       {script: "{} --wait-quiet 10ms", why: "waits up to 60s per run on a busy machine"},
	"mplock bench --format gobench > new.txt && benchstat old.txt new.txt": {
		tools:  []string{"benchstat"},
		script: "mplock bench --format gobench --kind sem --workers 1 --duration 10ms --repeat 1 > old.txt\n{}",
		why:    "benchstat needs an old.txt to compare with",
	},
	"mplock bench lockd --soak 60s": {script: "{} --soak 1s", why: "a minute of watching the server's memory"},
	"mplock bench lockd --target redis --server 127.0.0.1:6379": {
		exit: code(exitFailure), script: "{} --server 127.0.0.1:1", stderr: `127\.0\.0\.1:1`,
		why: "needs a running Redis (scripts/lockd-compare.sh starts one); without one it must fail clearly",
	},
	"mplock bench lockd --server 127.0.0.1:5555,127.0.0.1:5556,127.0.0.1:5557 --reads": {
		script: strings.Replace(inLocalCluster, "{}", `{} --server "$MPLOCK_SERVER"`, 1), why: "needs a cluster: deploy/local-cluster.sh starts one",
	},
	"mplock bench lockd --failover 30": {script: "{} --failover 1", why: "30 leader kills take a minute"},
	"mplock mutex --explore --algorithm maekawa-naive": {
		exit: code(exitFailure), why: "the naive variant deadlocks: the counterexample is what the example shows",
	},
	"mplock member list": {exit: code(0), script: inLocalCluster, why: "needs a cluster: deploy/local-cluster.sh starts one"},
	"mplock cluster --unsafe-local-grants --check --faults none --duration 3s --names 1 --consistency consistent": {
		exit: code(exitFailure), script: "{} --think 0 --html violation.html", stderr: `VIOLATION`,
		why: "the deliberately broken mode, caught: exit 1 (clients without a pause between operations, as TestClusterCatchesLocalGrants)"},
	"mplock cluster --faults client-pause --fencing=off --session-ttl 2s": {script: "{} --duration 6s",
		why: "a client's pause lasts two session TTLs and 2s: 4s with the shortened TTL, from a third of the run"},
	"mplock member remove n4 --token-file ~/.config/mplock/peer-secret": {exit: code(0),
		script: strings.Replace(inLocalCluster, "{}", `mkdir -p ~/.config/mplock &&
cp "$(dirname "$MPLOCK_TOKEN_FILE")/peer-secret" ~/.config/mplock/peer-secret &&
mplock member add n4 127.0.0.1:1 --token-file ~/.config/mplock/peer-secret && {}`, 1),
		why: "needs a cluster with an n4 to remove, and its members' secret (local-cluster.sh's, copied where the example reads it, in a HOME of the test's own)"},
	"mplock status file_A --wait-waiters 1": {
		why: "waits until someone queues for file_A: a holder, then a reader behind it",
		script: "mplock client file_A WRITE held --hold 1m & holder=$!\n" +
			"mplock status file_A --wait-holders 1 >/dev/null\n" +
			"mplock client file_A READ & reader=$!\n" +
			"{}\nstatus=$?\nkill $holder $reader; wait; exit $status",
	},
}

// inLocalCluster runs an example against the 3-member cluster that
// deploy/local-cluster.sh starts (on ports outside the ephemeral range),
// then stops the cluster with SIGTERM, which must end it cleanly.
const inLocalCluster = `base=$((20000 + RANDOM % 9000))
"$MPLOCK_REPO/deploy/local-cluster.sh" --base-port $base -- --heartbeat-timeout 100ms --election-timeout 100ms >cluster.env & cluster=$!
until grep -q '^export ' cluster.env; do kill -0 $cluster || exit 1; sleep 0.05; done
eval "$(cat cluster.env)"
{}
status=$?
kill -TERM $cluster; wait $cluster || status=1
exit $status`

// example is one example and where it is shown.
type example struct {
	text  string   // as written, without "$ " and the comment
	where []string // "README.md:64", "mplock bank --help"
}

func (ex example) name() string {
	s := strings.TrimPrefix(ex.text, "mplock ")
	s = regexp.MustCompile(`[^A-Za-z0-9_.,=-]+`).ReplaceAllString(s, "_")
	return strings.Trim(s, "_")
}

// collectExamples finds the examples in README.md, docs/*.md and the help
// of every command, each once.
func collectExamples(t *testing.T) []example {
	t.Helper()
	byText := map[string]*example{}
	var order []string
	add := func(line, where string) {
		text := stripComment(strings.TrimSpace(line))
		if byText[text] == nil {
			byText[text] = &example{text: text}
			order = append(order, text)
		}
		byText[text].where = append(byText[text].where, where)
	}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("docs: %v %v", docs, err)
	}
	for _, path := range append([]string{"../../README.md"}, docs...) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path, "../../")
		lines, delegated := markdownExamples(string(b))
		for _, l := range lines {
			add(l.text, fmt.Sprintf("%s:%d", name, l.line))
		}
		for _, test := range delegated {
			if _, err := os.Stat(filepath.Join("../..", test)); err != nil {
				t.Errorf("%s: a code block is left to %s, which does not exist (%v)", name, test, err)
			}
		}
	}
	app := newApp(io.Discard, io.Discard)
	add2 := func(desc, where string) {
		for _, l := range helpExamples(desc) {
			add(l, where)
		}
	}
	add2(app.Description, "mplock --help")
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			add2(c.Description, "mplock "+prefix+c.Name+" --help")
			walk(prefix+c.Name+" ", c.Subcommands)
		}
	}
	walk("", app.Commands)
	var out []example
	for _, text := range order {
		out = append(out, *byText[text])
	}
	return out
}

type docLine struct {
	text string
	line int
}

// runsBlock marks a code block that a test of its own runs as one script
// (its lines depend on each other: a file the block creates, a value one
// line keeps for the next): `<!-- anything: path/x_test.go runs this block -->`
// on the line before the fence. TestExamples leaves such a block to that
// test, which must exist.
var runsBlock = regexp.MustCompile(`^<!-- .*?(\S+_test\.go) runs this block -->$`)

// markdownExamples returns the mplock command lines of a Markdown file's
// code blocks, fenced ones and ones indented by four spaces, and the tests
// named as running a block as a whole.
func markdownExamples(md string) (out []docLine, delegated []string) {
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "```") {
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
				j++
			}
			if m := runsBlock.FindStringSubmatch(prevLine(lines, i)); m != nil {
				delegated = append(delegated, m[1])
			} else {
				out = append(out, blockExamples(lines[i+1:j], i+2)...)
			}
			i = j
			continue
		}
		if strings.HasPrefix(lines[i], "    ") && (i == 0 || strings.TrimSpace(lines[i-1]) == "") {
			j := i
			var block []string
			for j < len(lines) && (strings.HasPrefix(lines[j], "    ") || strings.TrimSpace(lines[j]) == "") {
				block = append(block, strings.TrimPrefix(lines[j], "    "))
				j++
			}
			out = append(out, blockExamples(block, i+1)...)
			i = j - 1
		}
	}
	return out, delegated
}

// prevLine is the last non-blank line before line i, "" when none.
func prevLine(lines []string, i int) string {
	for k := i - 1; k >= 0; k-- {
		if l := strings.TrimSpace(lines[k]); l != "" {
			return l
		}
	}
	return ""
}

// blockExamples: in a transcript (lines starting "$ "), the commands after
// the prompts; otherwise every line starting "mplock ".
func blockExamples(block []string, first int) []docLine {
	transcript := slices.ContainsFunc(block, func(l string) bool { return strings.HasPrefix(l, "$ ") })
	var out []docLine
	for k, l := range block {
		if transcript {
			if !strings.HasPrefix(l, "$ ") {
				continue
			}
			l = strings.TrimPrefix(l, "$ ")
		}
		if strings.HasPrefix(l, "mplock ") || l == "mplock" {
			out = append(out, docLine{l, first + k})
		}
	}
	return out
}

// helpExamples returns the command lines under "Examples:" in a help text.
func helpExamples(desc string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(desc, "\n") {
		switch {
		case strings.TrimSpace(l) == "Examples:":
			in = true
		case strings.TrimSpace(l) == "":
			in = false
		case in && strings.HasPrefix(strings.TrimSpace(l), "mplock"):
			out = append(out, l)
		}
	}
	return out
}

// stripComment drops a trailing " # comment" outside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && i > 0 && s[i-1] == ' ':
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

// splitCommand splits an example into the words of its mplock command and
// the rest of the shell line: "-- command" (mplock run's), a redirection,
// a pipe or a list.
func splitCommand(s string) (words []string, tail string) {
	var word strings.Builder
	var quote rune
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				word.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			flush()
		case strings.ContainsRune("|&;<>", r):
			flush()
			return words, " " + s[i:]
		case r == '-' && !inWord && strings.HasPrefix(s[i:], "-- "):
			flush()
			return words, " " + s[i:]
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	flush()
	return words, ""
}

var plainWord = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./~-]+$`)

// shellQuote quotes w for bash unless it needs none; a leading ~ stays
// unquoted so that bash expands it.
func shellQuote(w string) string {
	if plainWord.MatchString(w) {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// commandKey names the command an example runs: "bank", "bench lockd".
func commandKey(words []string) string {
	if len(words) < 2 {
		return ""
	}
	key := words[1]
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		if c.Name == words[1] && len(words) > 2 && c.Command(words[2]) != nil {
			key += " " + words[2]
		}
	}
	return key
}

func runExample(t *testing.T, ex example, tl *tools) {
	where := strings.Join(ex.where, ", ")
	words, tail := splitCommand(ex.text)
	key := commandKey(words)
	rule, ok := exampleCommands[key]
	if !ok {
		t.Fatalf("example %q (%s): exampleCommands does not say how to run `mplock %s` examples: add it there (examples_test.go)", ex.text, where, key)
	}
	ov := exampleOverrides[ex.text]
	args := words
	if rule.shorten != nil {
		args = rule.shorten(words)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	script := strings.Join(quoted, " ") + tail
	if ov.script != "" {
		script = strings.ReplaceAll(ov.script, "{}", script)
	}
	want := rule.exit
	if ov.exit != nil {
		want = *ov.exit
	}

	dir := t.TempDir()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "TMPDIR="+t.TempDir(), "MPLOCK_SERVER=", "MPLOCK_TOKEN_FILE=", "MPLOCK_SESSION=", "MPLOCK_REPO="+repo)
	for name, content := range rule.files {
		path := filepath.Join(dir, name)
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o700
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range ov.tools {
		name, pkg, _ := strings.Cut(tool, ":")
		if name == "benchstat" {
			env = append(env, "PATH="+tl.benchstat(t)+string(os.PathListSeparator)+os.Getenv("PATH"))
			continue
		}
		proctest.Tool(t, name, pkg)
	}
	if rule.server {
		env = append(env, "MPLOCK_SERVER="+startExampleServer(t))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if rule.daemon {
		script = "exec " + script
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stderr = &stderr
	if rule.daemon {
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewReader(pipe)
		first, _ := out.ReadString('\n')
		stdout.WriteString(first)
		if first != "" {
			cmd.Process.Signal(syscall.SIGTERM)
		}
		io.Copy(&stdout, out) // until it exits: Wait closes the pipe
		if first == "" {
			cmd.Wait()
			t.Fatalf("%s (%s): printed nothing before exiting; stderr:\n%s", script, where, stderr.String())
		}
	} else {
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	err = cmd.Wait()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // background jobs of a script
	got := cmd.ProcessState.ExitCode()
	if ctx.Err() != nil {
		t.Fatalf("%s (%s): still running after a minute; shorten it in exampleCommands or exampleOverrides", script, where)
	}
	if got != want {
		t.Fatalf("example %q (%s)\nran: %s\nexit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", ex.text, where, script, got, err, want, tail10(stdout.String()), tail10(stderr.String()))
	}
	if ov.stderr != "" && !regexp.MustCompile(ov.stderr).MatchString(stderr.String()) {
		t.Fatalf("%s (%s): stderr does not match %q:\n%s", script, where, ov.stderr, stderr.String())
	}
}

func tail10(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 10 {
		lines = append([]string{"..."}, lines[len(lines)-10:]...)
	}
	return strings.Join(lines, "\n")
}

// startExampleServer starts `mplock serve` on a free port for one example
// and returns its address; it is stopped when the example ends.
func startExampleServer(t *testing.T) string {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	srv := exec.Command("mplock", "serve", "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--log-level", "error")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	})
	var addr string
	proctest.Eventually(t, "the lock server's address", func() bool {
		b, _ := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return addr != ""
	})
	return addr
}

// tools builds the programs examples need that Go can build from this
// module's dependencies (benchstat, from golang.org/x/perf), once, into a
// directory removed when TestExamples ends.
type tools struct {
	dir  string
	once sync.Once
	err  error
}

// benchstat returns the directory that holds a benchstat binary.
func (tl *tools) benchstat(t *testing.T) string {
	t.Helper()
	tl.once.Do(func() {
		goCmd, err := exec.LookPath("go")
		if err != nil {
			tl.err = err
			return
		}
		out, err := exec.Command(goCmd, "build", "-o", filepath.Join(tl.dir, "benchstat"), "golang.org/x/perf/cmd/benchstat").CombinedOutput()
		if err != nil {
			tl.err = fmt.Errorf("%v: %s", err, out)
		}
	})
	if tl.err != nil {
		t.Logf("building benchstat: %v", tl.err)
		proctest.MissingTool(t, "go", "golang-go")
	}
	return tl.dir
}
