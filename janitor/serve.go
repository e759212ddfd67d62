package janitor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mplock/lock"
	"mplock/shm"
)

// Main is the sidecar process: it serves the manifest on stdin.
func Main() error { return Serve(os.Stdin, os.Stderr, Remove) }

// Serve is the sidecar's main loop. It reads the manifest from r until "done"
// (return without removing anything) or end-of-file (the parent died: remove
// every resource still registered, report each to log, and return).
//
// It removes only what it can recognise as mplock's: directories whose name
// starts with "mplock-", and files and semaphores it was told about.
func Serve(r io.Reader, log io.Writer, remove func(Resource) error) error {
	tracked := map[Resource]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "done" {
			return nil
		}
		verb, rest, _ := strings.Cut(line, " ")
		kind, id, ok := strings.Cut(rest, " ")
		res := Resource{Kind: Kind(kind), ID: id}
		if !ok || validate(res) != nil {
			fmt.Fprintf(log, "mplock janitor: ignoring manifest line %q\n", line)
			continue
		}
		switch verb {
		case "track":
			tracked[res] = true
		case "forget":
			delete(tracked, res)
		default:
			fmt.Fprintf(log, "mplock janitor: ignoring manifest line %q\n", line)
		}
	}
	// End of file without "done": the parent is gone. Remove in a fixed order
	// (process groups, so nothing still uses what follows; semaphores; files;
	// directories) so that reports read the same.
	list := make([]Resource, 0, len(tracked))
	for res := range tracked {
		list = append(list, res)
	}
	sort.Slice(list, func(i, k int) bool {
		if list[i].Kind != list[k].Kind {
			return order[list[i].Kind] < order[list[k].Kind]
		}
		return list[i].ID < list[k].ID
	})
	var failed error
	for _, res := range list {
		if err := remove(res); err != nil {
			fmt.Fprintf(log, "mplock janitor: could not remove %s: %v\n", res, err)
			failed = err
			continue
		}
		fmt.Fprintf(log, "mplock janitor: the process that made it died; removed %s\n", res)
	}
	return failed
}

var order = map[Kind]int{Init: 0, Group: 1, SysVSem: 2, File: 3, Dir: 4}

func validate(r Resource) error {
	switch r.Kind {
	case Group, Init:
		// 0 and 1 would be this process's own group and init's.
		if n, err := strconv.Atoi(r.ID); err != nil || n < 2 {
			return fmt.Errorf("janitor: bad process group %q", r.ID)
		}
	case SysVSem:
		if n, err := strconv.Atoi(r.ID); err != nil || n < 0 {
			return fmt.Errorf("janitor: bad semaphore id %q", r.ID)
		}
	case File:
		// Only named regions: whatever else a manifest names is not ours.
		dir, name := filepath.Dir(r.ID), filepath.Base(r.ID)
		if filepath.Clean(r.ID) != r.ID || dir != filepath.Dir(shm.NamedPath(name)) || shm.ValidName(name) != nil {
			return fmt.Errorf("janitor: refusing file %q: not a named region", r.ID)
		}
	case Dir:
		if !filepath.IsAbs(r.ID) || filepath.Clean(r.ID) != r.ID || !strings.HasPrefix(filepath.Base(r.ID), "mplock-") {
			return fmt.Errorf("janitor: refusing directory %q", r.ID)
		}
	default:
		return fmt.Errorf("janitor: unknown kind %q", r.Kind)
	}
	return nil
}

// Remove removes one resource; a resource that is already gone is not an
// error. It refuses what validate refuses, and semaphores of another user.
func Remove(r Resource) error {
	if err := validate(r); err != nil {
		return err
	}
	var err error
	switch r.Kind {
	case Group, Init:
		pgid, _ := strconv.Atoi(r.ID)
		if r.Kind == Init {
			waitExit(pgid, InitGrace)
		}
		if err := unix.Kill(-pgid, unix.SIGKILL); err != nil && err != unix.ESRCH {
			return fmt.Errorf("janitor: kill process group %d: %w", pgid, err)
		}
		return nil
	case SysVSem:
		id, _ := strconv.Atoi(r.ID)
		uid, cuid, err := lock.SysVOwner(id)
		if err != nil {
			if !lock.SysVExists(id) {
				return nil
			}
			return err
		}
		if me := os.Getuid(); uid != me && cuid != me {
			return fmt.Errorf("janitor: refusing semaphore %d: it belongs to uid %d, not %d", id, uid, me)
		}
		return lock.RemoveSysV(id)
	case File:
		err = os.Remove(r.ID)
	case Dir:
		err = os.RemoveAll(r.ID)
	default:
		return fmt.Errorf("janitor: cannot remove %s", r)
	}
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// waitExit waits until process pid has exited, or for at most d. A
// process that has exited but not been reaped has exited.
func waitExit(pid int, d time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone (ESRCH), or no pidfd on this kernel: do not wait
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for deadline := time.Now().Add(d); ; {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n > 0 {
			return
		}
	}
}
