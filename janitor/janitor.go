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
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"mplock/reexec"
)

// ErrGone is returned once the sidecar has died (someone killed it): what
// is tracked is no longer removed should the parent die too. The parent's
// own cleanup is not affected, and the next run's Sweep still finds what a
// run directory's manifest lists.
var ErrGone = errors.New("janitor: the janitor process is gone")

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
	done chan struct{} // closed when the sidecar has exited and was reaped
	err  error         // from Wait, once done is closed
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
	j := &Janitor{cmd: cmd, pipe: w, done: make(chan struct{})}
	go func() {
		j.err = cmd.Wait()
		close(j.done)
	}()
	return j, nil
}

// Pid returns the sidecar's process id.
func (j *Janitor) Pid() int { return j.cmd.Process.Pid }

// gone returns ErrGone, saying how the sidecar ended, if it has.
func (j *Janitor) gone() error {
	select {
	case <-j.done:
	default:
		return nil
	}
	how := "exited"
	if j.err != nil {
		how = j.err.Error()
		var ee *exec.ExitError
		if errors.As(j.err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				how = "killed by " + signalName(ws.Signal())
			}
		}
	}
	return fmt.Errorf("%w (pid %d, %s)", ErrGone, j.Pid(), how)
}

// lost turns a failed write to the sidecar into ErrGone when the sidecar
// died: its end of the pipe is closed (EPIPE) before it is reaped.
func (j *Janitor) lost(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		<-j.done
	}
	if g := j.gone(); g != nil {
		return g
	}
	return fmt.Errorf("janitor: %w", err)
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return "signal " + s.String()
}

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
	if err := j.gone(); err != nil {
		return err
	}
	if _, err := io.WriteString(j.pipe, line+"\n"); err != nil {
		return j.lost(fmt.Errorf("%s: %w", line, err))
	}
	return nil
}

// Close tells the sidecar that the parent cleaned up, so it removes nothing
// still registered, and waits for it to exit. It returns ErrGone if the
// sidecar had died before.
func (j *Janitor) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pipe == nil {
		return nil
	}
	gone := j.gone()
	var werr error
	if gone == nil {
		_, werr = io.WriteString(j.pipe, "done\n")
	}
	cerr := j.pipe.Close()
	j.pipe = nil
	switch {
	case gone != nil:
		return gone
	case werr != nil:
		return j.lost(werr)
	}
	<-j.done
	switch {
	case cerr != nil:
		return fmt.Errorf("janitor: %w", cerr)
	case j.err != nil:
		return fmt.Errorf("janitor: %w", j.err)
	}
	return nil
}
