package lockd

import (
	"fmt"
	"strings"
)

// Mode is how a lock is held.
type Mode uint8

const (
	// Exclusive (WRITE) is held by one session alone. It is the default.
	Exclusive Mode = iota + 1
	// Shared (READ) is held by any number of sessions at once, and by no
	// exclusive holder.
	Shared
)

// String returns the mode's protocol word: "WRITE" or "READ".
func (m Mode) String() string {
	switch m {
	case Exclusive:
		return "WRITE"
	case Shared:
		return "READ"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode reads a mode word, in any case: READ (or SHARED) and WRITE (or
// EXCLUSIVE).
func ParseMode(s string) (Mode, error) {
	switch strings.ToUpper(s) {
	case "WRITE", "EXCLUSIVE":
		return Exclusive, nil
	case "READ", "SHARED":
		return Shared, nil
	}
	return 0, fmt.Errorf("lockd: mode %q: want READ or WRITE", s)
}

// compatible reports whether a request in mode m may join holders of mode
// held: only shared with shared.
func compatible(held, m Mode) bool { return held == Shared && m == Shared }
