package coordinator

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// child is one started worker process and what became of it.
type child struct {
	name   string // as reports say it: "worker 2"
	cmd    *exec.Cmd
	stderr *tailBuffer
	done   chan struct{} // closed when the process has exited and was reaped
	state  *os.ProcessState
	err    error // from Wait, other than a non-zero exit
}

// startChild starts cmd, capturing the end of its stderr, and reaps it in the
// background; exited is sent the child when it ends.
func startChild(name string, cmd *exec.Cmd, exited chan<- *child) (*child, error) {
	c := &child{name: name, cmd: cmd, stderr: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("coordinator: start %s: %w", name, err)
	}
	go func() {
		err := cmd.Wait()
		c.state = cmd.ProcessState
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			c.err = err
		}
		close(c.done)
		if exited != nil {
			exited <- c
		}
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exitedCleanly reports whether the child has exited with status 0.
func (c *child) exitedCleanly() bool {
	select {
	case <-c.done:
		return c.err == nil && c.state != nil && c.state.Success()
	default:
		return false
	}
}

// hasExited reports whether the child has exited, cleanly or not.
func (c *child) hasExited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// processStopped reports whether process pid is stopped by a signal
// (state T in /proc/PID/stat), as SIGSTOP or a debugger leaves it.
func processStopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// hold anything.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
}

// describe says how the child ended, for reports: "exit 0", "killed by
// SIGKILL", "exit status 1: <last line of its stderr>".
func (c *child) describe() string {
	select {
	case <-c.done:
	default:
		return "running"
	}
	if c.err != nil {
		return c.err.Error()
	}
	ws, _ := c.state.Sys().(syscall.WaitStatus)
	var s string
	switch {
	case ws.Signaled():
		s = "killed by " + signalName(ws.Signal())
	case ws.ExitStatus() == 0:
		return "exit 0"
	default:
		s = fmt.Sprintf("exit status %d", ws.ExitStatus())
	}
	if msg := c.stderr.crashLine(); msg != "" {
		s += ": " + msg
	} else if msg := c.stderr.lastLine(); msg != "" {
		s += ": " + msg
	}
	return s
}

// kill sends SIGKILL to a child that has not exited yet.
func (c *child) kill() {
	select {
	case <-c.done:
	default:
		c.cmd.Process.Signal(syscall.SIGKILL)
	}
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	}
	return "signal " + s.String()
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// crashLine returns the line that says why a Go program crashed ("panic:
// ...", "fatal error: ..." and the signal line after it), or "". The last
// line of a crash is the end of a goroutine dump and says nothing.
func (t *tailBuffer) crashLine() string {
	lines := strings.Split(t.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "[signal ") {
				return l + " " + lines[i+1]
			}
			return l
		}
	}
	return ""
}

// lastLine returns the last non-empty line, without a "mplock: " prefix.
func (t *tailBuffer) lastLine() string {
	s := strings.TrimSpace(t.String())
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimPrefix(s, "mplock: ")
	return string(bytes.TrimSpace([]byte(s)))
}
