//go:build !linux

package shm

import (
	"errors"
	"sync/atomic"
	"time"
)

// ErrTimeout is returned by Wait when the timeout passed without a wake-up.
var ErrTimeout = errors.New("shm: futex wait timed out")

// Wait is not supported outside Linux.
func Wait(*atomic.Uint32, uint32, time.Duration) error { return ErrUnsupported }

// Wake is not supported outside Linux.
func Wake(*atomic.Uint32, int) (int, error) { return 0, ErrUnsupported }
