package main

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// initControl writes mplock run's control lines to the command's init
// (worker_exec.go has the protocol) without ever blocking mplock run: an
// init that reads nothing (stopped, say) lets the pipe fill, and mplock run
// must then still act on its own clock. Lines are written in order by a
// goroutine of their own, one write each (every line is far shorter than
// PIPE_BUF, so a write is whole or nothing); deadline lines coalesce, the
// latest replacing one not yet written, so what waits for a stuck init is
// bounded by the few other lines a job sends.
type initControl struct {
	f    *os.File
	wake chan struct{}

	mu       sync.Mutex
	queue    []string // lines to write, in order
	deadline string   // the latest deadline line not yet written
	closed   bool
}

// newInitControl takes over f, after the lines that open the gate were
// written to it.
func newInitControl(f *os.File) *initControl {
	c := &initControl{f: f, wake: make(chan struct{}, 1)}
	go c.write()
	return c
}

// send queues one control line.
func (c *initControl) send(line string) {
	c.mu.Lock()
	if !c.closed {
		c.queue = append(c.queue, line)
	}
	c.mu.Unlock()
	c.poke()
}

// sendDeadline queues a deadline line, replacing one not yet written.
func (c *initControl) sendDeadline(line string) {
	c.mu.Lock()
	c.deadline = line
	c.mu.Unlock()
	c.poke()
}

func (c *initControl) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// write runs until the pipe is closed or broken (the init is gone, which
// mplock run learns from its exit).
func (c *initControl) write() {
	for range c.wake {
		for {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return
			}
			var line string
			switch {
			case c.deadline != "":
				line, c.deadline = c.deadline, ""
			case len(c.queue) > 0:
				line, c.queue = c.queue[0], c.queue[1:]
			}
			c.mu.Unlock()
			if line == "" {
				break
			}
			if _, err := c.f.Write([]byte(line + "\n")); err != nil {
				return
			}
		}
	}
}

// Close closes the pipe, which the init reads as end of file: it kills
// every process of the command and exits. A write blocked on a full pipe
// returns; lines not yet written are dropped.
func (c *initControl) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.poke() // a write goroutine waiting for work returns
	c.f.Close()
}

// deadlineLine is the control line that tells the init the lease's
// deadline d (see ctlDeadline); grace is mplock run's --grace.
func deadlineLine(d time.Time, grace time.Duration) string {
	at := max(monotonicAt(d), 1)
	return fmt.Sprintf("%s %d %d", ctlDeadline, at, min(grace, at))
}

// stopLine is the control line that has the init stop the command now
// and kill it at the latest (see ctlStop).
func stopLine(killAt time.Time) string {
	return fmt.Sprintf("%s %d", ctlStop, max(monotonicAt(killAt), 1))
}
