// Package lock provides inter-process locks of every kind a Linux program can
// reach for, behind one Locker interface, and a registry of the kinds by name.
//
//	none    no lock at all: the read-modify-write race
//	flock   BSD flock(2) on a lock file, kept open by each process
//	fcntl   open-file-description record lock, F_OFD_SETLKW
//	sem     a binary semaphore on a futex word in shared memory, with
//	        recovery when its holder dies
//	sysv    a System V semaphore (semop with SEM_UNDO)
//	spin    a compare-and-swap spinlock in shared memory, yielding when long
//	atomic  no lock: one atomic add does the whole update (the lock-free bound)
//
// A Locker is one process's handle on a lock that several processes share.
// What they share is described by a Config: a lock file path (flock, fcntl),
// a semaphore set id (sysv) or a 32-bit word in a shared region (sem, spin).
// Each process opens its own Locker with Open.
//
// When a holder dies, the kernel releases flock, fcntl and sysv locks (the
// last through SEM_UNDO). The sem and spin locks record the holder's pid in
// their word; a waiter that sees no progress checks whether that process is
// alive and, if it is not, takes the lock over and reports the recovery
// through Config.OnRecover.
package lock
