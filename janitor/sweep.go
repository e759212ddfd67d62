package janitor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The run directory of a coordinator with pid P is <tmp>/mplock-run-P-<random>,
// and holds a manifest: one "kind id" line per resource the run created
// outside the directory. If the coordinator and its janitor both die (a
// `pkill -9 mplock` takes both), the next run's Sweep finds the directory of
// a dead pid and removes what the manifest lists, then the directory.
const (
	runDirPrefix = "mplock-run-"
	manifestName = "resources"
)

// RunDirPattern is the os.MkdirTemp pattern of a run directory for this
// process.
func RunDirPattern() string { return runDirPrefix + strconv.Itoa(os.Getpid()) + "-" }

// AppendManifest records r in the manifest of run directory dir.
func AppendManifest(dir string, r Resource) error {
	if err := validate(r); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, manifestName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("janitor: manifest: %w", err)
	}
	_, err = fmt.Fprintln(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Sweep removes what runs of dead coordinators left in tmp: for each run
// directory whose pid is not a live process, the resources its manifest
// lists, then the directory. It reports each removal to log and returns the
// number of directories swept.
//
// A manifest is trusted only as far as a run directory of this user's can
// be: a real directory (not a symbolic link), owned by this user, mode 0700,
// as os.MkdirTemp makes them. Its entries pass the same checks as the
// janitor's (named regions only, this user's semaphores only). Directories
// of live coordinators, and anything else, are left alone.
func Sweep(tmp string, log io.Writer) int {
	dirs, _ := filepath.Glob(filepath.Join(tmp, runDirPrefix+"*"))
	swept := 0
	for _, dir := range dirs {
		pid, ok := runDirPid(filepath.Base(dir))
		if !ok || pidAlive(pid) || !ownRunDir(dir) {
			continue
		}
		for _, r := range readManifest(filepath.Join(dir, manifestName)) {
			if err := Remove(r); err != nil {
				fmt.Fprintf(log, "mplock: could not remove %s left by a dead run (pid %d): %v\n", r, pid, err)
				continue
			}
			fmt.Fprintf(log, "mplock: removed %s left by a run whose coordinator (pid %d) died\n", r, pid)
		}
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(log, "mplock: could not remove %s: %v\n", dir, err)
			continue
		}
		swept++
	}
	return swept
}

// ownRunDir reports whether dir is a directory this user made private.
func ownRunDir(dir string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == os.Getuid() && st.Mode&0o777 == 0o700
}

// runDirPid parses "mplock-run-<pid>-<random>".
func runDirPid(base string) (int, bool) {
	rest, ok := strings.CutPrefix(base, runDirPrefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(p)
	return pid, ok && err == nil && pid > 0
}

func readManifest(path string) []Resource {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Resource
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kind, id, ok := strings.Cut(sc.Text(), " ")
		r := Resource{Kind: Kind(kind), ID: id}
		if ok && r.Kind != Dir && validate(r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// pidAlive reports whether a process with this pid exists (zombies count:
// their parent may still be cleaning up).
func pidAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || err == unix.EPERM
}
