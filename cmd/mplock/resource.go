package main

import (
	"io"
	"os"

	"mplock/internal/safefile"
)

// readResource reads <dir>/<name>.txt for `mplock client NAME READ`. A
// symbolic link or anything but a regular file in its place is refused:
// --dir may be shared (/tmp), and a link planted there would have the
// client print whatever file it points to (as root, /etc/shadow).
func readResource(path string) ([]byte, error) {
	f, err := safefile.OpenNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeResource replaces <dir>/<name>.txt for `mplock client NAME WRITE`:
// atomically, replacing a link planted at path rather than writing through
// it, with the permissions the umask gives a new file (0666 less the umask,
// as the shell's > does).
func writeResource(path string, data []byte) error {
	_, err := safefile.WriteAtomic(path, data, 0o666)
	return err
}
