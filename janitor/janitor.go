// Package janitor removes a run's operating-system resources (System V
// semaphores, named shared-memory files, run directories) even when the
// process that created them is killed with SIGKILL and can run no cleanup.
//
// Start launches a sidecar process (`mplock worker janitor`) that has no
// parent-death signal and reads a manifest of resources from a pipe. The
// parent registers each resource with Track as soon as it exists and removes
// it itself at the end of a normal run, then calls Close. If instead the
// parent dies, the pipe reaches end-of-file without a "done" line and the
// sidecar removes everything still registered, then exits.
package janitor

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"mplock/reexec"
)

// Kind is the kind of a tracked resource.
type Kind string

// Resource kinds the janitor knows how to remove.
const (
	Group   Kind = "group" // a process group, by id: killed with SIGKILL
	SysVSem Kind = "sem"   // a System V semaphore set, by id; only this user's
	File    Kind = "file"  // a named region, /dev/shm/<name>
	Dir     Kind = "dir"   // a private run directory and everything in it
	// Init is the init of mplock run's command (mplock worker exec), by
	// pid; it leads its process group. It cleans up after its command
	// itself when mplock run dies, and must not be killed while it does
	// (it is the only one that can find every process of the command):
	// the janitor gives it InitGrace to exit, then kills its group.
	Init Kind = "init"
)

// InitGrace is how long the janitor waits for an Init to exit before it
// kills its process group.
const InitGrace = 2 * time.Second

// Resource names one thing to remove.
type Resource struct {
	Kind Kind
	ID   string // semaphore id, or an absolute path
}

func (r Resource) String() string { return string(r.Kind) + " " + r.ID }

// Janitor is the parent's handle on the sidecar. Its methods are safe for
// concurrent use.
type Janitor struct {
	mu   sync.Mutex
	cmd  *exec.Cmd
	pipe *os.File
}

// Start launches the sidecar. The caller must Close it at the end of the run.
func Start() (*Janitor, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("janitor: pipe: %w", err)
	}
	cmd := reexec.Command(reexec.Options{Survive: true}, "worker", "janitor")
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("janitor: start: %w", err)
	}
	r.Close()
	return &Janitor{cmd: cmd, pipe: w}, nil
}

// Pid is the sidecar's process id.
func (j *Janitor) Pid() int { return j.cmd.Process.Pid }

// Track registers r for removal if the parent dies. Register a resource right
// after it is created; the window between the two is the only one in which a
// SIGKILL can leak it.
func (j *Janitor) Track(r Resource) error { return j.send("track " + r.String()) }

// Forget unregisters r, after the parent removed it itself.
func (j *Janitor) Forget(r Resource) error { return j.send("forget " + r.String()) }

func (j *Janitor) send(line string) error {
	if strings.ContainsAny(line, "\n") {
		return fmt.Errorf("janitor: resource %q contains a newline", line)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pipe == nil {
		return fmt.Errorf("janitor: closed")
	}
	if _, err := io.WriteString(j.pipe, line+"\n"); err != nil {
		return fmt.Errorf("janitor: %s: %w", line, err)
	}
	return nil
}

// Close tells the sidecar that the parent cleaned up, so it removes nothing
// still registered, and waits for it to exit.
func (j *Janitor) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pipe == nil {
		return nil
	}
	_, werr := io.WriteString(j.pipe, "done\n")
	cerr := j.pipe.Close()
	j.pipe = nil
	err := j.cmd.Wait()
	switch {
	case werr != nil:
		return fmt.Errorf("janitor: %w", werr)
	case cerr != nil:
		return fmt.Errorf("janitor: %w", cerr)
	case err != nil:
		return fmt.Errorf("janitor: %w", err)
	}
	return nil
}
