package lock

import (
	"context"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System V IPC constants that golang.org/x/sys/unix does not define.
const (
	semUndo   = 0x1000 // SEM_UNDO
	semGetPid = 11     // GETPID: pid of the last semop
	semGetVal = 12     // GETVAL
	semSetVal = 16     // SETVAL
)

type sembuf struct {
	num uint16
	op  int16
	flg int16
}

// sysvLock is a System V semaphore with value 1 when free. Every operation
// carries SEM_UNDO, so the kernel reverts a dead holder's -1 and the lock
// returns by itself.
type sysvLock struct {
	id int
}

var _ Locker = (*sysvLock)(nil)

// CreateSysV makes a private semaphore set of one semaphore with value 1,
// mode 0600, and returns its id. The caller removes it with RemoveSysV.
func CreateSysV() (int, error) {
	id, _, e := unix.RawSyscall(unix.SYS_SEMGET, unix.IPC_PRIVATE, 1, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
	if e != 0 {
		return 0, fmt.Errorf("lock: semget: %w", e)
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_SEMCTL, id, 0, semSetVal, 1, 0, 0); e != 0 {
		RemoveSysV(int(id))
		return 0, fmt.Errorf("lock: semctl SETVAL: %w", e)
	}
	return int(id), nil
}

// RemoveSysV removes semaphore set id. Processes blocked on it wake with
// EIDRM. Removing a set that is already gone is not an error.
func RemoveSysV(id int) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_RMID, 0, 0, 0)
	if e != 0 && e != unix.EINVAL && e != unix.EIDRM {
		return fmt.Errorf("lock: semctl IPC_RMID %d: %w", id, e)
	}
	return nil
}

// SysVExists reports whether semaphore set id still exists.
func SysVExists(id int) bool {
	_, _, e := unix.RawSyscall6(unix.SYS_SEMCTL, uintptr(id), 0, semGetVal, 0, 0, 0)
	return e != unix.EINVAL && e != unix.EIDRM
}

func openSysV(cfg Config) (Locker, error) {
	if !SysVExists(cfg.SemID) {
		return nil, fmt.Errorf("lock: System V semaphore %d does not exist", cfg.SemID)
	}
	return &sysvLock{id: cfg.SemID}, nil
}

// semop applies one operation. IPC_NOWAIT requests go through RawSyscall:
// they cannot block. semtimedop with no timeout is semop on every
// architecture (arm64 has no semop).
func (l *sysvLock) semop(op int16, flg int16) unix.Errno {
	sb := sembuf{num: 0, op: op, flg: flg | semUndo}
	for {
		var e unix.Errno
		if flg&unix.IPC_NOWAIT != 0 || op > 0 {
			_, _, e = unix.RawSyscall6(unix.SYS_SEMTIMEDOP, uintptr(l.id), uintptr(unsafe.Pointer(&sb)), 1, 0, 0, 0)
		} else {
			_, _, e = unix.Syscall6(unix.SYS_SEMTIMEDOP, uintptr(l.id), uintptr(unsafe.Pointer(&sb)), 1, 0, 0, 0)
		}
		// A signal interrupts a blocking semop without applying it; ask again.
		if e != unix.EINTR {
			return e
		}
	}
}

func (l *sysvLock) Lock(ctx context.Context) error {
	switch e := l.semop(-1, unix.IPC_NOWAIT); e {
	case 0:
		return nil
	case unix.EAGAIN:
	default:
		return l.err("lock", e)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if e := l.semop(-1, 0); e != 0 {
		return l.err("lock", e)
	}
	return nil
}

func (l *sysvLock) TryLock() (bool, error) {
	switch e := l.semop(-1, unix.IPC_NOWAIT); e {
	case 0:
		return true, nil
	case unix.EAGAIN:
		return false, nil
	default:
		return false, l.err("trylock", e)
	}
}

func (l *sysvLock) Unlock() error {
	if e := l.semop(1, 0); e != 0 {
		return l.err("unlock", e)
	}
	return nil
}

func (l *sysvLock) Close() error { return nil }

func (l *sysvLock) err(op string, e unix.Errno) error {
	return fmt.Errorf("lock: sysv %s (semaphore %d): %w", op, l.id, e)
}

// SysVOwner returns the owner's and the creator's uid of semaphore set id.
func SysVOwner(id int) (uid, cuid int, err error) {
	// struct semid64_ds begins with struct ipc64_perm: key, uid, gid, cuid,
	// cgid (32 bits each); the buffer is larger than the whole struct on
	// every architecture.
	var buf [256]byte
	if _, _, e := unix.RawSyscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_STAT, uintptr(unsafe.Pointer(&buf[0])), 0, 0); e != 0 {
		return 0, 0, fmt.Errorf("lock: semctl IPC_STAT %d: %w", id, e)
	}
	u32 := func(off int) int { return int(*(*uint32)(unsafe.Pointer(&buf[off]))) }
	return u32(4), u32(12), nil
}
