package reexec

import (
	"os"
	"syscall"
)

// self names the running executable through procfs: it stays valid when the
// binary on disk is replaced or removed during a run (go run, upgrades).
func self() string { return "/proc/self/exe" }

func sysProcAttr(opts Options) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if opts.PIDNamespace {
		attr.Cloneflags = syscall.CLONE_NEWPID
		if uid, gid := os.Geteuid(), os.Getegid(); uid != 0 {
			attr.Cloneflags |= syscall.CLONE_NEWUSER
			attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
			attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		}
		return attr
	}
	if !opts.Survive {
		attr.Pdeathsig = syscall.SIGKILL
	}
	return attr
}
