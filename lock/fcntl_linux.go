package lock

import (
	"context"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fcntlLock is an open-file-description (OFD) record lock over the whole
// file. Unlike classic POSIX record locks it belongs to the open file, not to
// the process, so closing another descriptor of the file does not drop it;
// like them, it conflicts with lockf(3) and fcntl(F_SETLK) locks that other
// programs hold on the same file.
type fcntlLock struct {
	f  *os.File
	fd uintptr
}

var _ Locker = (*fcntlLock)(nil)

func openFcntl(cfg Config) (Locker, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("lock: fcntl needs a lock file path")
	}
	f, err := openLockFile(cfg.Path)
	if err != nil {
		return nil, err
	}
	return &fcntlLock{f: f, fd: f.Fd()}, nil
}

// ofd issues one F_OFD_SETLK(W) request over the whole file. The
// non-blocking form (F_OFD_SETLK) goes through RawSyscall: it cannot block, so
// it needs no hand-off to the scheduler.
func (l *fcntlLock) ofd(cmd int, typ int16) unix.Errno {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: 0, Len: 0}
	for {
		var e unix.Errno
		if cmd == unix.F_OFD_SETLKW {
			_, _, e = unix.Syscall(unix.SYS_FCNTL, l.fd, uintptr(cmd), uintptr(unsafe.Pointer(&lk)))
		} else {
			_, _, e = unix.RawSyscall(unix.SYS_FCNTL, l.fd, uintptr(cmd), uintptr(unsafe.Pointer(&lk)))
		}
		// A signal interrupts a blocking wait; the lock was not granted, so
		// asking again is the whole of the retry.
		if e != unix.EINTR {
			return e
		}
	}
}

func (l *fcntlLock) Lock(ctx context.Context) error {
	switch e := l.ofd(unix.F_OFD_SETLK, unix.F_WRLCK); e {
	case 0:
		return nil
	case unix.EAGAIN, unix.EACCES:
	default:
		return l.err("lock", e)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e := l.ofd(unix.F_OFD_SETLKW, unix.F_WRLCK); e != 0 {
		return l.err("lock", e)
	}
	return nil
}

func (l *fcntlLock) TryLock() (bool, error) {
	switch e := l.ofd(unix.F_OFD_SETLK, unix.F_WRLCK); e {
	case 0:
		return true, nil
	case unix.EAGAIN, unix.EACCES:
		return false, nil
	default:
		return false, l.err("trylock", e)
	}
}

func (l *fcntlLock) Unlock() error {
	if e := l.ofd(unix.F_OFD_SETLK, unix.F_UNLCK); e != 0 {
		return l.err("unlock", e)
	}
	return nil
}

func (l *fcntlLock) Close() error { return l.f.Close() }

func (l *fcntlLock) err(op string, e unix.Errno) error {
	return &os.PathError{Op: "fcntl " + op, Path: l.f.Name(), Err: e}
}
