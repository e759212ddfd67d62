package shm

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// shmDir is where named regions live; tmpfs on every Linux distribution.
const shmDir = "/dev/shm"

// Create makes a new zero-filled region of opts.Size bytes and maps it.
func Create(opts CreateOptions) (*Region, error) {
	if opts.Size <= 0 {
		return nil, fmt.Errorf("shm: create: size %d must be positive", opts.Size)
	}
	size := roundPage(opts.Size)
	var (
		f    *os.File
		path string
	)
	if opts.Name != "" {
		if err := ValidName(opts.Name); err != nil {
			return nil, err
		}
		path = filepath.Join(shmDir, opts.Name)
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("shm: create %s: %w", path, err)
		}
		f = os.NewFile(uintptr(fd), path)
	} else {
		fd, err := unix.MemfdCreate("mplock", unix.MFD_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("shm: memfd_create: %w", err)
		}
		f = os.NewFile(uintptr(fd), "memfd:mplock")
	}
	r, err := mapFile(f, size, true, false)
	if err != nil {
		f.Close()
		if path != "" {
			os.Remove(path)
		}
		return nil, err
	}
	r.path = path
	return r, nil
}

// Open maps the whole of an existing region file, such as the descriptor a
// worker inherits. The region takes ownership of f. A file opened read-only
// (a tool inspecting /dev/shm/<name>) is mapped read-only: its fields can be
// loaded, and a store to one faults. The layout is not checked here; OpenBank
// and the other layout openers do that.
func Open(f *os.File) (*Region, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("shm: stat %s: %w", f.Name(), err)
	}
	if st.Size <= 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrLayout, f.Name())
	}
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return nil, fmt.Errorf("shm: %s: %w", f.Name(), err)
	}
	return mapFile(f, int(st.Size), false, flags&unix.O_ACCMODE == unix.O_RDONLY)
}

func mapFile(f *os.File, size int, truncate, readOnly bool) (*Region, error) {
	fd := int(f.Fd())
	if truncate {
		if err := unix.Ftruncate(fd, int64(size)); err != nil {
			return nil, fmt.Errorf("shm: size %s to %d: %w", f.Name(), size, err)
		}
	}
	prot := unix.PROT_READ | unix.PROT_WRITE
	if readOnly {
		prot = unix.PROT_READ
	}
	mem, err := unix.Mmap(fd, 0, size, prot, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("shm: map %s: %w", f.Name(), err)
	}
	return &Region{file: f, mem: mem}, nil
}

// Close unmaps the region, closes its descriptor and, for a named region this
// process created, removes the file. An anonymous (memfd) region disappears
// when the last process that holds it closes it or exits.
func (r *Region) Close() error {
	var first error
	if r.mem != nil {
		if err := unix.Munmap(r.mem); err != nil {
			first = fmt.Errorf("shm: unmap: %w", err)
		}
		r.mem = nil
	}
	if r.file != nil {
		if err := r.file.Close(); err != nil && first == nil {
			first = fmt.Errorf("shm: close: %w", err)
		}
		r.file = nil
	}
	if r.path != "" {
		if err := os.Remove(r.path); err != nil && !os.IsNotExist(err) && first == nil {
			first = fmt.Errorf("shm: remove: %w", err)
		}
		r.path = ""
	}
	return first
}

// NamedPath returns where a region created with Name would live.
func NamedPath(name string) string { return filepath.Join(shmDir, name) }

func roundPage(n int) int {
	p := unix.Getpagesize()
	return (n + p - 1) / p * p
}
