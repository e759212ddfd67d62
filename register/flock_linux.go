package register

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// flock takes (or drops) an exclusive flock(2) on f, retrying EINTR: a
// signal to the process (SIGSTOP then SIGCONT, which mplock cluster sends)
// interrupts the wait and means nothing here.
func flock(f *os.File, lock bool) error {
	how := unix.LOCK_UN
	if lock {
		how = unix.LOCK_EX
	}
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
