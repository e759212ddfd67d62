package reexec

import "syscall"

// self names the running executable through procfs: it stays valid when the
// binary on disk is replaced or removed during a run (go run, upgrades).
func self() string { return "/proc/self/exe" }

func sysProcAttr(opts Options) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true}
	if !opts.Survive {
		attr.Pdeathsig = syscall.SIGKILL
	}
	return attr
}
