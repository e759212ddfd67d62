package shm

import (
	"errors"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations without FUTEX_PRIVATE_FLAG: the waiters and wakers are
// different processes mapping the same memory, and a private futex is keyed
// by the address in one process's address space.
const (
	futexWait = 0
	futexWake = 1
)

// ErrTimeout is returned by Wait when the timeout passed without a wake-up.
var ErrTimeout = errors.New("shm: futex wait timed out")

// Wait blocks while *word == val, until a Wake on the same word, the timeout
// (none when timeout <= 0), or a signal. It returns nil on a wake-up or when
// the word no longer held val at the call (EAGAIN), and ErrTimeout on timeout.
// Wake-ups can be spurious: callers re-check the word in a loop.
func Wait(word *atomic.Uint32, val uint32, timeout time.Duration) error {
	var ts *unix.Timespec
	if timeout > 0 {
		t := unix.NsecToTimespec(int64(timeout))
		ts = &t
	}
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWait, uintptr(val),
		uintptr(unsafe.Pointer(ts)), 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EINTR:
		// EINTR: a signal arrived; the caller's loop re-checks the word, which
		// is all a retry here would do.
		return nil
	case unix.ETIMEDOUT:
		return ErrTimeout
	default:
		return &futexError{op: "wait", err: e}
	}
}

// Wake wakes up to n processes waiting on word and returns how many woke.
// It never blocks, so it skips the scheduler hand-off of a blocking syscall.
func Wake(word *atomic.Uint32, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(word)), futexWake, uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, &futexError{op: "wake", err: e}
	}
	return int(r), nil
}

type futexError struct {
	op  string
	err unix.Errno
}

func (e *futexError) Error() string { return "shm: futex " + e.op + ": " + e.err.Error() }
func (e *futexError) Unwrap() error { return e.err }
