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

	"mplock/lock"
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
	// (semaphores, then files, then directories) so that reports read the same.
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
		fmt.Fprintf(log, "mplock janitor: the run's coordinator died; removed %s\n", res)
	}
	return failed
}

var order = map[Kind]int{SysVSem: 0, File: 1, Dir: 2}

func validate(r Resource) error {
	switch r.Kind {
	case SysVSem:
		if n, err := strconv.Atoi(r.ID); err != nil || n < 0 {
			return fmt.Errorf("janitor: bad semaphore id %q", r.ID)
		}
	case File:
		if !filepath.IsAbs(r.ID) || filepath.Clean(r.ID) != r.ID {
			return fmt.Errorf("janitor: bad file %q", r.ID)
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
// error.
func Remove(r Resource) error {
	var err error
	switch r.Kind {
	case SysVSem:
		id, err := strconv.Atoi(r.ID)
		if err != nil {
			return fmt.Errorf("janitor: bad semaphore id %q", r.ID)
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
