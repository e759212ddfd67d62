package worker

import (
	"errors"

	"golang.org/x/sys/unix"
)

type pollFD = unix.PollFd

// readable asks the kernel, without waiting, whether a live link has bytes
// (or its end) to read: poll(2) with a zero timeout over every link. A
// failed poll answers false: the loop then goes on, as it did before it
// could ask, and the runtime's network poller delivers the message a little
// later.
func (m *mesh) readable() bool {
	m.poll = m.poll[:0]
	for _, w := range m.watch {
		if w.fd >= 0 {
			m.poll = append(m.poll, unix.PollFd{Fd: int32(w.fd), Events: unix.POLLIN})
		}
	}
	if len(m.poll) == 0 {
		return false
	}
	for {
		n, err := unix.Poll(m.poll, 0)
		// EINTR: a signal (the runtime's preemption among them) came in
		// during the call; with a zero timeout, ask again.
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}
