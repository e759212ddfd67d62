package shm

import (
	"errors"
	"fmt"
	"os"
	"unsafe"
)

// ErrUnsupported is returned on platforms without the needed syscalls.
var ErrUnsupported = errors.New("shm: not supported on this platform")

// ErrLayout is returned when a region's header does not describe a layout this
// binary knows (wrong magic, version, layout id or size).
var ErrLayout = errors.New("shm: unknown region layout")

// CreateOptions says how to create a region.
type CreateOptions struct {
	// Size in bytes; rounded up to the page size.
	Size int
	// Name, when set, creates the region as /dev/shm/<Name> (mode 0600, must
	// not exist yet) instead of an anonymous memfd, so that other tools can
	// open it. The file is removed by Close.
	Name string
}

// Region is a shared mapping backed by a file descriptor that can be passed to
// child processes. It is not safe to Close while other goroutines use it.
type Region struct {
	file *os.File
	mem  []byte
	path string // non-empty for a named region this process created
}

// File returns the region's file, to pass to a child in exec.Cmd.ExtraFiles.
func (r *Region) File() *os.File { return r.file }

// Path returns the file system path of a named region, or "" for a memfd.
func (r *Region) Path() string { return r.path }

// Size returns the mapped size in bytes.
func (r *Region) Size() int { return len(r.mem) }

// Bytes returns the mapped memory. It is valid until Close.
func (r *Region) Bytes() []byte { return r.mem }

// at returns a pointer to a T at byte offset off, checking bounds and
// alignment; the layout code calls it once per field when it opens a region.
func at[T any](r *Region, off uintptr) (*T, error) {
	var zero T
	size, align := unsafe.Sizeof(zero), unsafe.Alignof(zero)
	if off%align != 0 || off+size > uintptr(len(r.mem)) {
		return nil, fmt.Errorf("%w: %T at %d does not fit a %d-byte region", ErrLayout, zero, off, len(r.mem))
	}
	return (*T)(unsafe.Pointer(&r.mem[off])), nil
}
