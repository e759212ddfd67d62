// Package register is the protected resource of `mplock cluster`: one
// number in a shared file that clients change by read-modify-write while
// they believe they hold a lock, and that checks fencing tokens the way
// Kleppmann's storage service does ("How to do distributed locking",
// 2016; Chubby's sequencers): it remembers the highest token it has seen,
// on reads and on writes, and refuses any access whose token is below it.
//
// A lock alone cannot protect the number: a client paused past its
// session's TTL (SIGSTOP, a GC pause, a swap storm) wakes up still
// believing it holds the lock that the service has long given to someone
// else, and writes what it read before the pause over what the new holder
// wrote. The register turns that into a refused write. With fencing off
// it accepts everything, and counts what was lost: every accepted write
// whose read was not the latest write overwrote increments it never saw.
//
// The file is a single text line, rewritten in place under an exclusive
// flock(2) on the file itself, so that any process on the machine can use
// it:
//
//	mplock-register v1 fencing=on value=V version=N highest=T accepted=A refused=R lost=L
//
// value is the number, version counts accepted writes, highest is the
// highest token seen, lost counts the increments overwritten.
package register

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// ErrStaleToken is returned for an access whose token is below the highest
// the register has seen (fencing on): the caller's lock was taken over.
var ErrStaleToken = errors.New("register: token below the highest seen")

// StaleError says which token was refused, and the highest seen.
type StaleError struct {
	Token, Highest uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("register: token %d refused: below the highest seen (%d)", e.Token, e.Highest)
}

func (e *StaleError) Is(target error) bool { return target == ErrStaleToken }

// State is the register's whole content.
type State struct {
	Fencing  bool
	Value    uint64 // the number
	Version  uint64 // accepted writes so far
	Highest  uint64 // highest token seen, on reads and writes
	Accepted uint64
	Refused  uint64 // reads and writes refused for a stale token
	Lost     uint64 // increments overwritten by writes that had not seen them
}

const magic = "mplock-register v1"

func (s State) String() string {
	return fmt.Sprintf("%s fencing=%s value=%d version=%d highest=%d accepted=%d refused=%d lost=%d\n",
		magic, onOff(s.Fencing), s.Value, s.Version, s.Highest, s.Accepted, s.Refused, s.Lost)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func parse(line string) (State, error) {
	var s State
	var fencing string
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), magic+" ")
	if !ok {
		return s, fmt.Errorf("register: not a register: %.40q", line)
	}
	_, err := fmt.Sscanf(rest, "fencing=%s value=%d version=%d highest=%d accepted=%d refused=%d lost=%d",
		&fencing, &s.Value, &s.Version, &s.Highest, &s.Accepted, &s.Refused, &s.Lost)
	if err != nil || (fencing != "on" && fencing != "off") {
		return s, fmt.Errorf("register: bad register line %.80q: %v", line, err)
	}
	s.Fencing = fencing == "on"
	return s, nil
}

// Create makes a register at path (mode 0600; it must not exist) holding 0.
func Create(path string, fencing bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("register: create: %w", err)
	}
	_, err = io.WriteString(f, State{Fencing: fencing}.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("register: create: %w", err)
	}
	return nil
}

// Register is an open register. Its methods are not safe for concurrent
// use; open one per goroutine (each open file has its own flock).
type Register struct {
	f *os.File
}

// Open opens the register at path (not through a symlink).
func Open(path string) (*Register, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("register: open: %w", err)
	}
	return &Register{f: f}, nil
}

// Close closes the register.
func (r *Register) Close() error { return r.f.Close() }

// Snapshot is what a read saw: the value and the version it had.
type Snapshot struct {
	Value, Version uint64
}

// Read returns the value for a client holding a lock with token, and
// raises the highest token seen to it. With fencing on, a token below the
// highest is refused with a *StaleError (errors.Is ErrStaleToken).
func (r *Register) Read(token uint64) (Snapshot, error) {
	var snap Snapshot
	err := r.update(func(s *State) error {
		if s.Fencing && token < s.Highest {
			s.Refused++
			return &StaleError{Token: token, Highest: s.Highest}
		}
		s.Highest = max(s.Highest, token)
		snap = Snapshot{Value: s.Value, Version: s.Version}
		return nil
	})
	return snap, err
}

// Write stores value for a client holding a lock with token, that read
// base before computing value. With fencing on, a token below the highest
// is refused with a *StaleError. Otherwise the write is accepted; lost is
// the number of increments it overwrote without having seen them (0 when
// base was the latest write).
func (r *Register) Write(token uint64, base Snapshot, value uint64) (lost uint64, err error) {
	err = r.update(func(s *State) error {
		if s.Fencing && token < s.Highest {
			s.Refused++
			return &StaleError{Token: token, Highest: s.Highest}
		}
		s.Highest = max(s.Highest, token)
		if s.Version != base.Version && s.Value > base.Value {
			lost = s.Value - base.Value
		}
		s.Value = value
		s.Version++
		s.Accepted++
		s.Lost += lost
		return nil
	})
	return lost, err
}

// State returns the register's content.
func (r *Register) State() (State, error) {
	var st State
	err := r.update(func(s *State) error { st = *s; return errUnchanged })
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	return st, err
}

// ReadState returns the content of the register at path.
func ReadState(path string) (State, error) {
	r, err := Open(path)
	if err != nil {
		return State{}, err
	}
	defer r.Close()
	return r.State()
}

// errUnchanged tells update to leave the file as it is.
var errUnchanged = errors.New("unchanged")

// update runs fn on the state under an exclusive lock and writes the
// result back, unless fn fails. A refusal (a *StaleError) is counted, so
// its state is written too.
func (r *Register) update(fn func(*State) error) error {
	if err := flock(r.f, true); err != nil {
		return fmt.Errorf("register: lock: %w", err)
	}
	defer flock(r.f, false)
	buf := make([]byte, 512)
	n, err := r.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("register: read: %w", err)
	}
	s, err := parse(string(buf[:n]))
	if err != nil {
		return err
	}
	ferr := fn(&s)
	var stale *StaleError
	if ferr != nil && !errors.As(ferr, &stale) {
		return ferr
	}
	line := s.String()
	if _, err := r.f.WriteAt([]byte(line), 0); err != nil {
		return fmt.Errorf("register: write: %w", err)
	}
	if err := r.f.Truncate(int64(len(line))); err != nil {
		return fmt.Errorf("register: write: %w", err)
	}
	return ferr
}
