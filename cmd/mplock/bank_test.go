package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"mplock/report"
	"mplock/shm"
)

// TestBankJSONShape checks the fields the README promises scripts, by
// decoding into the documented document type and into a generic map (so a
// renamed or dropped field fails even if the type changed with it).
func TestBankJSONShape(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"mplock", "bank", "--lock", "--kind", "sem,flock,atomic", "--ops", "2000", "--workers", "3", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc report.BankDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 3 || doc.Runs[0].Lock != "sem" || doc.Runs[1].Lock != "flock" || doc.Runs[2].Lock != "atomic" {
		t.Fatalf("runs: %+v", doc.Runs)
	}
	for _, r := range doc.Runs {
		if !r.Consistent || r.LostUpdates != 0 || r.ExpectedBalance != r.FinalBalance || r.Workers != 3 || len(r.Procs) != 3 {
			t.Errorf("%s: %+v", r.Lock, r)
		}
		if r.OpsPerSecond <= 0 || r.Ops != 6000 {
			t.Errorf("%s: ops %d at %v/s", r.Lock, r.Ops, r.OpsPerSecond)
		}
		if (r.AcquireNs == nil) != (r.Lock == "atomic") {
			t.Errorf("%s: acquire_ns %v; want null only for atomic", r.Lock, r.AcquireNs)
		}
		for _, p := range r.Procs {
			if p.Pid <= 0 || p.Ops != 2000 || (p.Role != "deposit" && p.Role != "withdraw") {
				t.Errorf("%s: proc %+v", r.Lock, p)
			}
		}
	}
	if doc.Machine.CPUs < 1 || doc.Machine.Kernel == "" || len(doc.Verdict) == 0 {
		t.Errorf("machine %+v, verdict %q", doc.Machine, doc.Verdict)
	}

	var generic struct {
		Runs []map[string]any `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &generic); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"lock", "workers", "expected_balance", "final_balance", "lost_updates",
		"consistent", "ops_per_second", "acquire_ns", "handoffs", "max_run", "procs", "lost_update", "last_holder", "unguarded"} {
		if _, ok := generic.Runs[0][key]; !ok {
			t.Errorf("runs[0] has no %q", key)
		}
	}
	acq, _ := generic.Runs[0]["acquire_ns"].(map[string]any)
	for _, key := range []string{"p50", "p99", "max"} {
		if _, ok := acq[key].(float64); !ok {
			t.Errorf("acquire_ns has no number %q: %v", key, acq)
		}
	}
	if doc.Clock == nil || doc.Clock.ResolutionNs <= 0 || doc.Clock.ReadNs <= 0 {
		t.Errorf("clock %+v: want the measured resolution", doc.Clock)
	}
	proc, _ := generic.Runs[0]["procs"].([]any)[0].(map[string]any)
	for _, key := range []string{"pid", "role", "ops", "phase", "killed_by_run", "stopped"} {
		if _, ok := proc[key]; !ok {
			t.Errorf("procs[0] has no %q", key)
		}
	}
}

// TestBankCtrlC interrupts a real `mplock bank` process with SIGINT once its
// workers are committing operations (watched through its named region, as
// any tool could), and expects the partial report and exit status 130.
func TestBankCtrlC(t *testing.T) {
	name := "mplock-test-cli-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("/proc/self/exe", "bank", "--lock", "--kind", "sem", "--duration", "1h", "--shm-name", name, "--json")
	cmd.Args[0] = "mplock" // TestMain runs the CLI under this name
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	committed := func() bool {
		f, err := os.Open(shm.NamedPath(name))
		if err != nil {
			return false
		}
		r, err := shm.Open(f)
		if err != nil {
			f.Close()
			return false
		}
		defer r.Close()
		b, err := shm.OpenBank(r)
		if err != nil {
			return false
		}
		_, version := b.Balance()
		return version > 0
	}
	for deadline := time.Now().Add(30 * time.Second); !committed(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("workers never committed an operation; stderr: %s", errb.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want status 130; stderr: %s", err, errb.String())
	}
	var doc report.BankDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("partial report is not JSON: %v\n%s", err, out.String())
	}
	if len(doc.Runs) != 1 || !doc.Runs[0].Interrupted || doc.Runs[0].Ops == 0 || !doc.Runs[0].Consistent {
		t.Fatalf("partial report: %+v", doc.Runs)
	}
	if _, err := os.Stat(shm.NamedPath(name)); !os.IsNotExist(err) {
		t.Fatalf("named region left behind: %v", err)
	}
}

// TestBankSIGTERMDuringLongHold stops `mplock bank --hold 1h` with SIGTERM
// while its workers are in their hour-long hold: the first signal must end
// the hold at once, print the partial report and exit 130. It used to run
// on for the hold (and a second signal exited 143 with no report).
func TestBankSIGTERMDuringLongHold(t *testing.T) {
	name := "mplock-test-cli-hold-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("/proc/self/exe", "bank", "--hold", "1h", "--ops", "1", "--shm-name", name, "--json")
	cmd.Args[0] = "mplock"
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	holding := func() bool {
		f, err := os.Open(shm.NamedPath(name))
		if err != nil {
			return false
		}
		r, err := shm.Open(f)
		if err != nil {
			f.Close()
			return false
		}
		defer r.Close()
		b, err := shm.OpenBank(r)
		if err != nil {
			return false
		}
		for i := range b.Workers() {
			if shm.SlotPhase(b.Slot(i).Phase.Load()) == shm.PhaseHolding {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(30 * time.Second); !holding(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no worker ever held; stderr: %s", errb.String())
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a bound on a hang: the hold is an hour
		t.Fatal("mplock bank did not stop on SIGTERM during a long hold")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want status 130; stderr: %s", err, errb.String())
	}
	var doc report.BankDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("no partial report: %v\n%s", err, out.String())
	}
	if len(doc.Runs) != 1 || !doc.Runs[0].Interrupted || doc.Runs[0].Ops != 0 || doc.Runs[0].FinalBalance != 600 {
		t.Fatalf("partial report: %+v", doc.Runs)
	}
	for _, p := range doc.Runs[0].Procs {
		if p.Died || p.Exit != "exit 0" {
			t.Fatalf("worker %d ended %q: a stop must end the hold, not a kill", p.Slot, p.Exit)
		}
	}
}
