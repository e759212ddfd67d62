package janitor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mplock/lock"
)

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestSweepRemovesWhatDeadRunsLeft(t *testing.T) {
	tmp := t.TempDir()
	semID, err := lock.CreateSysV()
	if err != nil {
		t.Fatal(err)
	}
	defer lock.RemoveSysV(semID)
	shmFile := "/dev/shm/mplock-sweep-test-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(shmFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(shmFile)

	dead := filepath.Join(tmp, "mplock-run-"+strconv.Itoa(deadPid(t))+"-123")
	live := filepath.Join(tmp, "mplock-run-"+strconv.Itoa(os.Getpid())+"-456")
	other := filepath.Join(tmp, "mplock-other")
	for _, d := range []string{dead, live, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Planted by someone else, or left open: a manifest there is not trusted,
	// whatever it lists (here, a file of the test's that is no named region).
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, nil, 0o600)
	open := filepath.Join(tmp, "mplock-run-"+strconv.Itoa(deadPid(t))+"-789")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	real := filepath.Join(t.TempDir(), "mplock-run-real")
	os.Mkdir(real, 0o700)
	link := filepath.Join(tmp, "mplock-run-"+strconv.Itoa(deadPid(t))+"-999")
	os.Symlink(real, link)
	for _, d := range []string{open, real} {
		os.WriteFile(filepath.Join(d, "resources"), []byte("file "+victim+"\n"), 0o600)
	}
	for _, r := range []Resource{{SysVSem, strconv.Itoa(semID)}, {File, shmFile}} {
		if err := AppendManifest(dead, r); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := os.OpenFile(filepath.Join(dead, "resources"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("file " + victim + "\n") // not a named region: never removed
	f.Close()
	AppendManifest(live, Resource{File, shmFile}) // a live run's: must survive

	var log bytes.Buffer
	if n := Sweep(tmp, &log); n != 1 {
		t.Fatalf("swept %d directories, want 1\n%s", n, log.String())
	}
	if lock.SysVExists(semID) {
		t.Error("the dead run's semaphore survived the sweep")
	}
	if _, err := os.Stat(shmFile); !os.IsNotExist(err) {
		t.Errorf("the dead run's region file survived: %v", err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead run's directory survived: %v", err)
	}
	for _, d := range []string{live, other, open, link, real, victim} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	if !strings.Contains(log.String(), "removed sem "+strconv.Itoa(semID)) {
		t.Errorf("the sweep did not say what it removed:\n%s", log.String())
	}
}
