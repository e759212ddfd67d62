// Package shm provides the shared-memory region that mplock's worker processes
// share: created with memfd_create (or as a named file under /dev/shm, so other
// tools can inspect it), mapped MAP_SHARED, and laid out as a versioned header
// followed by cache-line-padded records read and written with atomics.
//
// A Region is the raw mapping; a layout (Bank) gives it typed fields. Every
// layout starts with a Header whose magic, version and layout id a process
// checks before it trusts the rest: a worker refuses a region it does not know.
//
// Futex wait and wake on words of a region are in futex_linux.go. They use the
// shared (not _PRIVATE) futex operations, because the waiters are in different
// processes.
package shm
