package lock

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// openLockFile opens (or creates, mode 0600) the lock file of a flock or
// fcntl lock. It never follows a symbolic link in the last component: a
// link planted in a shared directory would otherwise have the lock create
// or lock a file of the planter's choosing (a dangling one is created).
// Whoever wants the file a link points to names that file.
func openLockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("a symbolic link; give the file it points to")}
	}
	return f, err
}
