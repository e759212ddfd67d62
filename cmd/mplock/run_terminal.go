package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// terminal is mplock run's controlling terminal, which it lends to the
// command for as long as the command runs.
type terminal struct {
	fd   int // stdin
	pgrp int // mplock run's own process group, the terminal's foreground
}

// foregroundTerminal returns the terminal to hand to the command, or nil to
// leave the command in a background group. It hands it over only when stdin
// is mplock run's controlling terminal, mplock run's process group is the
// terminal's foreground (it was not started with &), and nothing else in
// that group could want the terminal meanwhile: the group may hold the
// shell or script waiting for mplock run, but not, say, a pager at the end
// of a pipeline (`mplock run job -- git log | less`), which would be
// stopped reading its keys while the command filled the pipe, and neither
// would ever finish.
func foregroundTerminal() *terminal {
	fd := unix.Stdin
	pgrp := unix.Getpgrp()
	// TIOCGPGRP fails (ENOTTY) on anything but the caller's controlling
	// terminal.
	if fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || fg != pgrp {
		return nil
	}
	if !onlyAncestorsIn(pgrp) {
		return nil
	}
	return &terminal{fd: fd, pgrp: pgrp}
}

// onlyAncestorsIn reports whether every live process in process group pgrp,
// other than this one, is an ancestor of this one.
func onlyAncestorsIn(pgrp int) bool {
	ancestors := map[int]bool{}
	for pid := os.Getppid(); pid > 1 && !ancestors[pid]; {
		ancestors[pid] = true
		st, ok := procStat(pid)
		if !ok {
			break
		}
		pid = st.ppid
	}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self || ancestors[pid] {
			continue
		}
		if st, ok := procStat(pid); ok && st.pgrp == pgrp && st.state != 'Z' {
			return false
		}
	}
	return true
}

type procState struct {
	state      byte
	ppid, pgrp int
}

// procStat reads a process's state, parent and process group from
// /proc/PID/stat, whose command name (in parentheses) may hold anything.
func procStat(pid int) (procState, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procState{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procState{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return procState{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pg, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procState{}, false
	}
	return procState{state: f[0][0], ppid: ppid, pgrp: pg}, true
}

// give makes process group pgid the terminal's foreground (tcsetpgrp), if
// the terminal's foreground is now from: a group that is not the
// foreground must not take the terminal from the one that is (after the
// shell's bg, say).
func (t *terminal) give(from, pgid int) {
	if fg, err := unix.IoctlGetInt(t.fd, unix.TIOCGPGRP); err == nil && fg == from {
		unix.IoctlSetPointerInt(t.fd, unix.TIOCSPGRP, pgid)
	}
}

// suspend passes on a stop of the command (Ctrl-Z stops the terminal's
// foreground group, which is the command's), as a foreground job must:
// otherwise the terminal would stay with a stopped group and the shell
// would never get it back. mplock run takes the terminal back and stops
// itself, so its shell sees the job stopped, and returns when the shell
// continues it (fg, bg); the caller then resumes the command, or does not.
// If no shell could continue mplock run (its process group is orphaned),
// the kernel discards the SIGTSTP and suspend returns at once.
func (t *terminal) suspend(pgid int) {
	t.give(pgid, t.pgrp)
	// Sent to this thread, the signal stops the process before Tgkill
	// returns; sent to the process, another thread might take it while
	// this one went on to continue the command.
	runtime.LockOSThread()
	unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGTSTP)
	runtime.UnlockOSThread()
}

// resume lends the terminal to the command again and continues it, after
// suspend. Continued in the foreground (fg), mplock run has the terminal
// to lend; continued in the background (bg), it does not, and the command
// is stopped again if it reads it.
func (t *terminal) resume(pgid int) {
	t.give(t.pgrp, pgid)
	syscall.Kill(-pgid, syscall.SIGCONT)
}
