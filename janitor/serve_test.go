package janitor

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func serve(t *testing.T, manifest string) (removed []Resource, log string) {
	t.Helper()
	var buf bytes.Buffer
	err := Serve(strings.NewReader(manifest), &buf, func(r Resource) error {
		removed = append(removed, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return removed, buf.String()
}

func TestServeRemovesWhatIsTrackedWhenTheParentDies(t *testing.T) {
	// No "done" line: the parent died. Forgotten resources stay, the rest
	// goes, semaphores first and directories last.
	removed, log := serve(t, strings.Join([]string{
		"track dir /tmp/mplock-run-1",
		"track file /dev/shm/bank",
		"track sem 42",
		"track sem 43",
		"forget sem 43",
		"",
	}, "\n"))
	want := []Resource{{SysVSem, "42"}, {File, "/dev/shm/bank"}, {Dir, "/tmp/mplock-run-1"}}
	if !reflect.DeepEqual(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if strings.Count(log, "removed") != 3 {
		t.Fatalf("log does not report each removal:\n%s", log)
	}
}

func TestServeRemovesNothingAfterDone(t *testing.T) {
	if removed, _ := serve(t, "track sem 42\ntrack dir /tmp/mplock-run-1\ndone\n"); len(removed) != 0 {
		t.Fatalf("removed %v after done", removed)
	}
}

func TestServeRefusesWhatIsNotMplocks(t *testing.T) {
	removed, log := serve(t, strings.Join([]string{
		"track dir /home",                // not an mplock run directory
		"track dir /tmp/../etc/mplock-x", // not clean
		"track file relative/path",
		"track sem -1",
		"track sem abc",
		"track socket /tmp/x",
		"garbage",
		"",
	}, "\n"))
	if len(removed) != 0 {
		t.Fatalf("removed %v", removed)
	}
	if strings.Count(log, "ignoring") != 7 {
		t.Fatalf("want every bad line reported, got:\n%s", log)
	}
}

func TestRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mplock-run-x")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "sub", "bank.lock"), nil, 0o600)
	file := filepath.Join(t.TempDir(), "region")
	os.WriteFile(file, nil, 0o600)
	for _, r := range []Resource{{Dir, dir}, {File, file}} {
		if err := Remove(r); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(r.ID); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", r, err)
		}
		if err := Remove(r); err != nil {
			t.Fatalf("removing %s again: %v, want nil", r, err)
		}
	}
}
