package lockd

import (
	"fmt"
)

// MaxNameLen is the longest resource name, in bytes. Names become file names
// (`mplock client` stores a resource in <dir>/<name>.txt), so 128 leaves room
// for a suffix under every file system's 255-byte limit.
const MaxNameLen = 128

// ValidName reports whether name may name a lock: 1 to MaxNameLen bytes of
// ASCII letters, digits, '.', '_' and '-', not starting with '.'. Such a name
// cannot hold a path separator, cannot be "." or "..", and cannot be a
// hidden file, so it is safe to join to a directory. The error wraps
// ErrBadName and says which rule failed.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrBadName, len(name), MaxNameLen)
	case name[0] == '.':
		return fmt.Errorf("%w: %q starts with '.'", ErrBadName, name)
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("%w: %q has %q at byte %d (allowed: letters, digits, '.', '_', '-')", ErrBadName, name, name[i], i)
		}
	}
	return nil
}

func nameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '.' || b == '_' || b == '-'
}
