package lock

import (
	"fmt"
	"os"

	"github.com/gofrs/flock"
)

// HeldElsewhere reports whether another open file description holds a
// flock(2) lock on path right now, by trying to take one and releasing it at
// once (through github.com/gofrs/flock). A coordinator uses it to warn that a
// user's lock file is busy before its workers block on it. A missing file is
// not held.
func HeldElsewhere(path string) (bool, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return false, nil
	}
	f := flock.New(path, flock.SetFlag(os.O_RDWR), flock.SetPermissions(0o600))
	ok, err := f.TryLock()
	if err != nil {
		return false, fmt.Errorf("lock: probe %s: %w", path, err)
	}
	if ok {
		if err := f.Unlock(); err != nil {
			return false, fmt.Errorf("lock: probe %s: %w", path, err)
		}
	}
	return !ok, nil
}
