// Package reexec starts the running binary again as a child process under a
// hidden command. Go cannot fork without exec, so this is how mplock gets real
// worker processes: the same executable, entered through `mplock worker ...`.
//
// The pattern is the one of moby/sys reexec: the child is started from
// /proc/self/exe (still valid when the file on disk was replaced or removed),
// with argv[0] set to Name, so that ps shows "mplock worker ...", and so that
// a test binary that dispatches on argv[0] (rogpeppe/go-internal/testscript)
// runs the mplock command in its children too.
package reexec

import "os/exec"

// Name is every child's argv[0].
const Name = "mplock"

// Options adjust how a child is started. The zero value is what workers want.
type Options struct {
	// Survive, when set, leaves out the parent-death signal: the child keeps
	// running when the parent dies. The janitor, whose job starts at the
	// parent's death, uses it, and so does the init of mplock run's command
	// when it cannot have a PID namespace (it cleans up when its control
	// pipe closes).
	Survive bool

	// PIDNamespace, when set, starts the child as the init (pid 1) of a new
	// PID namespace: when it dies, however it dies, the kernel kills every
	// process in the namespace, whatever their process groups or sessions
	// (pid_namespaces(7)). As root this is CLONE_NEWPID alone; otherwise the
	// child gets a user namespace too, in which the caller's uid and gid map
	// to themselves, so that its files and permissions stay the caller's
	// (and setuid programs gain nothing there). Start fails (EPERM, EINVAL,
	// ENOSPC, ...) where the kernel, a sysctl or a sandbox refuses
	// namespaces: callers fall back to running without. Ignored on
	// systems other than Linux.
	//
	// Such a child gets no parent-death signal from Command, Survive or
	// not: Go's check that the parent is still alive after setting one
	// compares getppid() with the parent's pid, and across the namespace
	// boundary getppid() is 0, so the child would kill itself. It must set
	// one itself (prctl PR_SET_PDEATHSIG on a thread that lives as long as
	// it does) and learn whether its parent died before that from a pipe
	// whose write end only the parent holds (util-linux unshare, bst).
	PIDNamespace bool
}

// Command returns a command that runs this executable with args (the hidden
// command and its flags, not argv[0]).
//
// Unless opts.Survive is set, the child receives SIGKILL when the parent
// dies, however the parent dies (Pdeathsig). Linux delivers that signal when
// the parent *thread* that forked the child exits; the Go runtime does not end
// its threads except when a goroutine locked to one returns, which mplock
// never does around a child's start. In the child, the setting belongs to its
// first thread only (threads the Go runtime starts later do not inherit it),
// which suffices while the child runs: the kernel signals the process if any
// of its threads has it. But a child that execs another program from another
// thread hands that program a process without it; such a child must exec
// from its first thread (runtime.LockOSThread from the start) or set it again
// on the thread that execs. mplock run's old trampoline did neither, and its
// command outlived a SIGKILLed mplock run in 49 tries of 50.
//
// The child is put in its own process group, so that a terminal's Ctrl-C
// (SIGINT to the foreground group) reaches only the parent, which then stops
// its children in order and can still report what they did.
func Command(opts Options, args ...string) *exec.Cmd {
	cmd := exec.Command(self(), args...)
	cmd.Args[0] = Name
	cmd.SysProcAttr = sysProcAttr(opts)
	return cmd
}
