// Package coordinator plans and supervises mplock's runs of real processes:
// it creates what the workers share, starts them through a start barrier,
// watches the deadline, Ctrl-C and the death of any worker, collects what they
// did, and releases every resource on every exit path.
//
// One file set per run kind: bank*.go for `mplock bank`. Shared machinery:
// children.go (starting and reaping worker processes) and resources.go (the
// private run directory and the janitor that cleans up after a SIGKILL).
package coordinator
