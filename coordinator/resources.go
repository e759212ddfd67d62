package coordinator

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"mplock/janitor"
	"mplock/lock"
)

// resources owns what one run creates outside its own memory: a private run
// directory, a System V semaphore, a named region file. Each is registered
// with the janitor as soon as it exists, so that it is removed even when this
// process is killed with SIGKILL, and listed in the run directory's manifest,
// so that the next run removes it if the janitor died too (janitor.Sweep);
// release removes them on every other path.
type resources struct {
	jan     *janitor.Janitor
	dir     string
	semIDs  []int
	cleanup []func() error // in reverse order of creation
	// unguarded says how the janitor died, if it did: from then on, what
	// the run made would outlive a SIGKILL of this process (until the next
	// run's sweep). The run itself goes on.
	unguarded string
}

// janitor starts the janitor on first use: runs that create nothing outside
// memory (a memfd region, a lock word) do not need one.
func (r *resources) janitor() (*janitor.Janitor, error) {
	if r.jan == nil {
		j, err := janitor.Start()
		if err != nil {
			return nil, err
		}
		r.jan = j
	}
	return r.jan, nil
}

// track registers res with the janitor and, for what lives outside the run
// directory, in the directory's manifest.
func (r *resources) track(res janitor.Resource) error {
	j, err := r.janitor()
	if err != nil {
		return err
	}
	if err := j.Track(res); errors.Is(err, janitor.ErrGone) {
		r.unguarded = err.Error()
	} else if err != nil {
		return err
	}
	if res.Kind == janitor.Dir {
		return nil
	}
	dir, err := r.runDir()
	if err != nil {
		return err
	}
	return janitor.AppendManifest(dir, res)
}

// runDir returns the run's private directory (mode 0700), creating it.
func (r *resources) runDir() (string, error) {
	if r.dir != "" {
		return r.dir, nil
	}
	dir, err := os.MkdirTemp("", janitor.RunDirPattern())
	if err != nil {
		return "", fmt.Errorf("coordinator: run directory: %w", err)
	}
	res := janitor.Resource{Kind: janitor.Dir, ID: dir}
	if err := r.track(res); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	r.dir = dir
	r.cleanup = append(r.cleanup, func() error {
		err := os.RemoveAll(dir)
		r.jan.Forget(res)
		return err
	})
	return dir, nil
}

// sysvSem creates a System V semaphore for the run.
func (r *resources) sysvSem() (int, error) {
	if _, err := r.runDir(); err != nil { // for the manifest, before the semaphore exists
		return 0, err
	}
	id, err := lock.CreateSysV()
	if err != nil {
		return 0, err
	}
	res := janitor.Resource{Kind: janitor.SysVSem, ID: strconv.Itoa(id)}
	if err := r.track(res); err != nil {
		lock.RemoveSysV(id)
		return 0, err
	}
	r.semIDs = append(r.semIDs, id)
	r.cleanup = append(r.cleanup, func() error {
		err := lock.RemoveSysV(id)
		r.jan.Forget(res)
		return err
	})
	return id, nil
}

// trackFile registers a file the run created (a named region), removed by
// remove on the normal path.
func (r *resources) trackFile(path string, remove func() error) error {
	res := janitor.Resource{Kind: janitor.File, ID: path}
	if err := r.track(res); err != nil {
		return err
	}
	r.cleanup = append(r.cleanup, func() error {
		err := remove()
		r.jan.Forget(res)
		return err
	})
	return nil
}

// onRelease adds a cleanup step that needs no janitor (unmapping memory).
func (r *resources) onRelease(f func() error) { r.cleanup = append(r.cleanup, f) }

// release removes everything, newest first, and stops the janitor. It returns
// the first error but always tries every step.
func (r *resources) release() error {
	var first error
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		if err := r.cleanup[i](); err != nil && first == nil {
			first = err
		}
	}
	r.cleanup = nil
	if r.jan != nil {
		if err := r.jan.Close(); errors.Is(err, janitor.ErrGone) {
			r.unguarded = err.Error()
		} else if err != nil && first == nil {
			first = err
		}
		r.jan = nil
	}
	return first
}
